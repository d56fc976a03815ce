"""rs evaluate: how good a model is on labeled reviews it has not seen.

Reports accuracy, macro-F1 (the headline: neutral is usually rare, and accuracy hides a model that never
says it), per-class precision / recall / F1 / support and the confusion matrix; writes `metrics.json`,
`confusion_matrix.png` and `misclassified.csv` (sorted by confidence, most confident mistakes first).

When the data has fewer classes than the model (a three-class model on positive/negative data), the plain
scores count every "neutral" as an error; the *restricted* scores take the argmax over the classes present
in the data only. Both are reported and labeled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from review_sentiment.console import row_progress
from review_sentiment.errors import RsError
from review_sentiment.inference import MAX_BATCH_ROWS
from review_sentiment.labels import read_gold_labels, sort_labels
from review_sentiment.modelstore import newest_model_dir
from review_sentiment.predict import Predictor
from review_sentiment.preprocess import read_reviews
from review_sentiment.tables import table_stem, write_table

METRICS_FILE = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"
MISCLASSIFIED_FILE = "misclassified.csv"


def classification_scores(gold: list[str], predicted: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: gold)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)), 4),
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
        "confusion_matrix": confusion_matrix(gold, predicted, labels=labels).tolist(),
    }


def restricted_argmax(probabilities: np.ndarray, model_labels: list[str], allowed: list[str]) -> list[str]:
    """The most probable label among `allowed` only (e.g. positive/negative for two-class data)."""
    columns = [model_labels.index(label) for label in allowed]
    return [allowed[i] for i in probabilities[:, columns].argmax(axis=1)]


@dataclass
class EvaluationReport:
    data_path: str
    model_dir: str
    rows: int
    evaluated: int
    skipped_unlabeled: int
    skipped_empty: int
    label_source: str
    model_labels: list[str]
    data_labels: list[str]
    scores: dict
    restricted_scores: dict | None = None
    output_dir: str = ""
    files: dict[str, str] = field(default_factory=dict)


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    counts = np.array(matrix)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(1.6 * len(labels) + 2, 1.4 * len(labels) + 1.6), dpi=120)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title, fontsize=9)
    for row in range(len(labels)):
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
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def evaluate_file(
    data_path: str | Path,
    model_dir: str | Path | None = None,
    *,
    output_dir: str | Path | None = None,
    models_dir: str | Path = "models",
    text_col: str | None = None,
    label_col: str | None = None,
    rating_col: str | None = None,
    rating_scale: int | None = None,
    rating_bins: str | None = None,
    batch_size: int = MAX_BATCH_ROWS,
    precision: str | None = None,
    device: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    escape_formulas: bool = True,
) -> EvaluationReport:
    """Score a model on a labeled file and write metrics.json, confusion_matrix.png and misclassified.csv."""
    data_path = Path(data_path)
    model_dir = Path(model_dir) if model_dir else newest_model_dir(models_dir)
    table = read_reviews(data_path, encoding, sheet)
    gold = read_gold_labels(table, label_col, rating_col, rating_scale, rating_bins)
    predictor = Predictor(model_dir, device=device, batch_size=batch_size, precision=precision)
    trained_scale = predictor.meta.get("data", {}).get("rating_scale")
    if gold.rating_bins and rating_scale is None and rating_bins is None and trained_scale != gold.rating_bins.scale:
        if trained_scale in (5, 10):
            # The scale guessed from this file's ratings (all 1-5, say) is not the one the model learned from.
            gold = read_gold_labels(table, label_col, gold.column, trained_scale)
            gold.source += ", the model's scale"
    text_column = predictor.text_column(list(table.columns), text_col)
    unknown = sorted({label for label in gold.labels if label and label not in predictor.labels})
    if unknown:
        raise RsError(f"The data has labels {unknown} that the model {model_dir} does not know ({predictor.labels}).")

    labeled = [i for i, label in enumerate(gold.labels) if label is not None]
    with row_progress("Evaluating", len(labeled)) as advance:
        probabilities = predictor.probabilities(table[text_column].iloc[labeled].tolist(), on_batch=advance)
    scored_mask = ~np.isnan(probabilities).any(axis=1)
    rows = [row for row, ok in zip(labeled, scored_mask, strict=True) if ok]
    probabilities = probabilities[scored_mask]
    if not rows:
        raise RsError(f"{data_path} has no labeled rows with text to evaluate ({gold.source}).")
    gold_labels = [gold.labels[i] for i in rows]
    predicted = [predictor.labels[i] for i in probabilities.argmax(axis=1)]
    data_labels = sort_labels(gold_labels)
    scores = classification_scores(gold_labels, predicted, predictor.labels)
    restricted = None
    if len(data_labels) < len(predictor.labels) and len(data_labels) >= 2:
        restricted_predicted = restricted_argmax(probabilities, predictor.labels, data_labels)
        restricted = classification_scores(gold_labels, restricted_predicted, data_labels)

    output_dir = Path(output_dir) if output_dir else model_dir / "evaluations" / table_stem(data_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "metrics": str(output_dir / METRICS_FILE),
        "confusion_matrix": str(output_dir / CONFUSION_PNG),
        "misclassified": str(output_dir / MISCLASSIFIED_FILE),
    }
    confidence = probabilities.max(axis=1)
    wrong = [j for j in range(len(rows)) if predicted[j] != gold_labels[j]]
    wrong.sort(key=lambda j: -confidence[j])
    misclassified = pd.DataFrame(
        {
            "row": [rows[j] + 1 for j in wrong],  # position of the review in the file, 1 = first data row
            "text": [table[text_column].iloc[rows[j]] for j in wrong],
            "gold": [gold_labels[j] for j in wrong],
            "predicted": [predicted[j] for j in wrong],
            "confidence": [round(float(confidence[j]), 4) for j in wrong],
        }
    )
    write_table(misclassified, files["misclassified"], escape_formulas)
    plot_confusion_matrix(
        scores["confusion_matrix"],
        predictor.labels,
        Path(files["confusion_matrix"]),
        f"{model_dir.name} on {data_path.name}: accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}",
    )
    report = EvaluationReport(
        data_path=str(data_path),
        model_dir=str(model_dir),
        rows=len(table),
        evaluated=len(rows),
        skipped_unlabeled=len(table) - len(labeled),
        skipped_empty=len(labeled) - len(rows),
        label_source=gold.source,
        model_labels=predictor.labels,
        data_labels=data_labels,
        scores=scores,
        restricted_scores=restricted,
        output_dir=str(output_dir),
        files=files,
    )
    Path(files["metrics"]).write_text(json.dumps(asdict(report), ensure_ascii=False, indent=2), encoding="utf-8")
    return report
