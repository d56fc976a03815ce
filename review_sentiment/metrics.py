"""Scores of predicted labels against gold ones: accuracy, macro-F1, per-class scores, the confusion matrix and its
chart. `rs evaluate` reports them; `rs finetune` selects epochs by them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def classification_scores(
    gold: list[str], predicted: list[str], labels: list[str], counts: list[int] | None = None
) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: gold).
    `counts`: how many rows each (gold, predicted) pair stands for (rs report counts pairs as it streams)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0, sample_weight=counts
    )
    matrix = confusion_matrix(gold, predicted, labels=labels, sample_weight=counts)
    return {
        "accuracy": round(float(accuracy_score(gold, predicted, sample_weight=counts)), 4),
        "macro_f1": round(
            float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0, sample_weight=counts)),
            4,
        ),
        "per_class": {
            label: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "labels": labels,
        "confusion_matrix": matrix.astype(int).tolist(),
    }


def restricted_argmax(probabilities: np.ndarray, model_labels: list[str], allowed: list[str]) -> list[str]:
    """The most probable label among `allowed` only (e.g. positive/negative for two-class data)."""
    columns = [model_labels.index(label) for label in allowed]
    return [allowed[i] for i in probabilities[:, columns].argmax(axis=1)]


def plot_confusion_matrices(panels: list[tuple[dict, str]], path: Path, title: str) -> Path:
    """One confusion-matrix panel per (scores, subtitle), side by side: counts, and each count as a share of its
    gold row (so a row's shares are that class's recall and add up to 100 %)."""
    from review_sentiment.charts import korean_pyplot

    plt = korean_pyplot()  # a Korean file name in the title would show boxes otherwise
    sizes = [len(scores["labels"]) for scores, _ in panels]
    width = max(sum(1.6 * n + 2 for n in sizes), 7.5)  # room for the footer under a single 2 x 2 panel
    height = 1.4 * max(sizes) + 2.2
    figure, axes_row = plt.subplots(
        1, len(panels), figsize=(width, height), dpi=120, gridspec_kw={"width_ratios": sizes}, squeeze=False
    )
    for axes, (scores, subtitle) in zip(axes_row[0], panels, strict=True):
        labels = scores["labels"]
        counts = np.array(scores["confusion_matrix"])
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        axes.set_xticks(range(len(labels)), labels)
        axes.set_yticks(range(len(labels)), labels)
        axes.set_xlabel("predicted")
        axes.set_ylabel("gold")
        absent = [label for label, row in scores["per_class"].items() if not row["support"]]
        caveat = f"\n(macro-F1 averages in {', '.join(absent)}, with no gold rows)" if absent else ""
        headline = f"accuracy {scores['accuracy']:.3f} · macro-F1 {scores['macro_f1']:.3f}"
        axes.set_title(f"{subtitle}\n{headline}{caveat}", fontsize=9)
        for row in range(len(labels)):
            if not counts[row].sum():  # a class the data lacks: no shares to show
                axes.text(len(labels) / 2 - 0.5, row, "no gold rows", ha="center", va="center", fontsize=9)
                continue
            for column in range(len(labels)):
                color = "white" if shares[row, column] > 0.5 else "black"
                axes.text(
                    column,
                    row,
                    f"{counts[row, column]}\n{shares[row, column]:.0%}",
                    ha="center",
                    va="center",
                    color=color,
                    fontsize=9,
                )
    figure.suptitle(title, fontsize=9)
    figure.text(
        0.5,
        0.01,
        "Each cell: reviews, and their share of the gold row (the row's shares add up to 100 %; the diagonal is "
        "recall).",
        ha="center",
        fontsize=8,
    )
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path)
    plt.close(figure)
    return path
