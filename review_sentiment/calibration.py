"""Confidence that means what it says: temperature scaling, and how calibrated probabilities are.

Fine-tuned classifiers are over-confident (Guo et al. 2017, "On Calibration of Modern Neural Networks"): of the
reviews a model scores at 0.95, far fewer than 95 % are right. Temperature scaling divides the logits by one
number T fitted on held-out reviews (T > 1 softens, T < 1 sharpens). It never changes which class is the most
probable, so labels, accuracy and F1 stay as they were; only the confidence moves.

The temperature is applied to probabilities: softmax(log p / T) equals softmax(logits / T), because log p
differs from the logits by one constant per row. So the same code calibrates a transformer (also a long review
scored in parts, whose parts' probabilities are averaged first) and the TF-IDF baseline's logistic regression.

Measures (`rs evaluate`), all on the rows' full probability vectors:
- ECE: expected calibration error of the top label over 15 *equal-mass* bins (each bin holds the same number of
  reviews, sorted by confidence): the rows-weighted mean of |accuracy - mean confidence| per bin. Equal-width
  bins leave most bins nearly empty when a model says 0.99 to most reviews.
- Brier score: the squared distance between the probability vector and the one-hot gold label, summed over the
  classes (Brier's own definition; for two classes it is twice the one-class form), averaged over rows.
- NLL: the mean negative log-probability of the gold class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ECE_BINS = 15
BINNING = f"top-label confidence, {ECE_BINS} equal-mass bins"
METHOD = "temperature scaling (Guo et al. 2017), fitted on the validation split"
# Confidences at which `rs evaluate` tabulates coverage and accuracy (those below 1 / classes are skipped)
COVERAGE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
# The temperature is searched on 1/T in this range: the validation NLL is convex in 1/T, so a bounded scalar
# search finds its minimum; the bounds only matter for a split the model gets all right (1/T would grow forever).
_INVERSE_TEMPERATURE_RANGE = (0.02, 50.0)
_TINY = 1e-45  # float32 softmax can underflow to 0; the log needs a floor


@dataclass(frozen=True)
class Temperature:
    """The temperature a model was calibrated with (1.0: the raw probabilities)."""

    value: float = 1.0

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """softmax(log p / T) per row, in the input's dtype; NaN rows (texts without a label) stay NaN."""
        if self.value == 1.0:
            return probabilities
        calibrated = np.full_like(probabilities, np.nan)
        scored = ~np.isnan(probabilities).any(axis=1)
        calibrated[scored] = _tempered(probabilities[scored], 1.0 / self.value)
        return calibrated

    @classmethod
    def of_model(cls, meta: dict) -> Temperature | None:
        """The temperature stored in a model's rs_meta.json; None for a model trained before rs calibrated."""
        calibration = meta.get("calibration")
        if not isinstance(calibration, dict) or not isinstance(calibration.get("temperature"), int | float):
            return None
        return cls(float(calibration["temperature"]))


def _tempered(probabilities: np.ndarray, inverse_temperature: float) -> np.ndarray:
    logits = np.log(np.maximum(probabilities.astype(np.float64), _TINY)) * inverse_temperature
    logits -= logits.max(axis=1, keepdims=True, initial=-np.inf)
    exponentials = np.exp(logits)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, gold: list[int] | np.ndarray) -> Temperature:
    """The temperature that minimizes the negative log-likelihood of the gold classes (`gold`: class indices)."""
    from scipy.optimize import minimize_scalar

    gold = np.asarray(gold, dtype=np.int64)
    if not len(gold):
        return Temperature()
    log_p = np.log(np.maximum(probabilities.astype(np.float64), _TINY))

    def nll(inverse_temperature: float) -> float:
        logits = log_p * inverse_temperature
        top = logits.max(axis=1)
        log_normalizer = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        return float(np.mean(log_normalizer - logits[np.arange(len(gold)), gold]))

    result = minimize_scalar(nll, bounds=_INVERSE_TEMPERATURE_RANGE, method="bounded", options={"xatol": 1e-5})
    return Temperature(round(1.0 / float(result.x), 4))


def calibration_scores(probabilities: np.ndarray, gold: list[int] | np.ndarray) -> dict:
    """ECE (15 equal-mass bins of the top label's confidence), Brier score and NLL of the gold classes."""
    gold = np.asarray(gold, dtype=np.int64)
    probabilities = probabilities.astype(np.float64)
    rows = np.arange(len(gold))
    one_hot = np.zeros_like(probabilities)
    one_hot[rows, gold] = 1.0
    bins = reliability_bins(probabilities, gold)
    ece = sum(b["rows"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / max(len(gold), 1)
    return {
        "ece": round(float(ece), 4),
        "brier": round(float(np.mean(((probabilities - one_hot) ** 2).sum(axis=1))), 4),
        "nll": round(float(np.mean(-np.log(np.maximum(probabilities[rows, gold], 1e-15)))), 4),
    }


def reliability_bins(probabilities: np.ndarray, gold: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """The rows sorted by confidence and cut into `bins` groups of (nearly) equal size: each group's rows, mean
    confidence and accuracy, lowest confidence first."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == gold
    order = np.argsort(confidence, kind="stable")
    groups = [group for group in np.array_split(order, min(bins, len(order))) if len(group)]
    return [
        {
            "rows": int(len(group)),
            "confidence": float(confidence[group].mean()),
            "accuracy": float(correct[group].mean()),
        }
        for group in groups
    ]


def coverage_table(
    probabilities: np.ndarray, gold: np.ndarray, thresholds: tuple[float, ...] = COVERAGE_THRESHOLDS
) -> list[dict]:
    """For each confidence threshold above chance: the share of rows kept (confidence >= it) and their accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(gold)
    table = []
    for threshold in thresholds:
        if threshold <= 1.0 / probabilities.shape[1]:
            continue  # every row is at least this confident
        table.append(kept_scores(confidence, correct, threshold))
    return table


def kept_scores(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> dict:
    """The rows at or above `threshold`: how many, their share, and how many of them are right."""
    kept = confidence >= threshold
    return {
        "min_confidence": threshold,
        "kept": int(kept.sum()),
        "coverage": round(float(kept.mean()), 4) if len(kept) else 0.0,
        "accuracy": round(float(correct[kept].mean()), 4) if kept.any() else None,
    }


def coverage_curve(probabilities: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coverage, accuracy of the kept rows, the threshold that keeps them), keeping the most confident rows first."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(gold)).astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    kept = np.arange(1, len(order) + 1)
    return kept / len(order), np.cumsum(correct[order]) / kept, confidence[order]


def plot_reliability(curves: list[tuple[str, np.ndarray]], gold: np.ndarray, path: Path, title: str) -> Path:
    """A reliability diagram: per equal-mass bin, accuracy against mean confidence, one line per (name,
    probabilities); the diagonal is perfect calibration. Below it, how the confidences are spread."""
    from review_sentiment.charts import korean_pyplot

    plt = korean_pyplot()
    figure, (diagram, spread) = plt.subplots(
        2, 1, figsize=(6.4, 7.2), dpi=120, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    lowest = 1.0 / curves[0][1].shape[1]
    diagram.plot([lowest, 1], [lowest, 1], color="#999999", linestyle="--", linewidth=1, label="perfect calibration")
    for (name, probabilities), colour in zip(curves, ("#d6604d", "#4393c3"), strict=False):
        bins = reliability_bins(probabilities, gold)
        scores = calibration_scores(probabilities, gold)
        diagram.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color=colour,
            label=f"{name}: ECE {scores['ece']:.3f}, NLL {scores['nll']:.3f}",
        )
        spread.hist(probabilities.max(axis=1), bins=40, range=(lowest, 1), alpha=0.55, color=colour, label=name)
    diagram.set_ylabel("accuracy of the bin's reviews")
    diagram.set_ylim(min(lowest, 0.3), 1.01)
    diagram.set_title(f"{title}\n{BINNING}; below the diagonal: over-confident", fontsize=9)
    diagram.legend(fontsize=8, loc="upper left")
    diagram.grid(alpha=0.3)
    spread.set_xlabel("confidence (probability of the predicted label)")
    spread.set_ylabel("reviews")
    spread.set_xlim(lowest, 1.0)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_coverage(probabilities: np.ndarray, gold: np.ndarray, path: Path, title: str) -> Path:
    """Accuracy of the reviews kept against the share kept, when reviews below a confidence are set aside
    (`--min-confidence`), with the thresholds of `coverage_table` marked."""
    from review_sentiment.charts import korean_pyplot

    plt = korean_pyplot()
    coverage, accuracy, _ = coverage_curve(probabilities, gold)
    figure, axes = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    axes.plot(coverage * 100, accuracy * 100, color="#4393c3")
    for row in coverage_table(probabilities, gold):
        if row["kept"]:
            axes.plot(row["coverage"] * 100, row["accuracy"] * 100, "o", color="#d6604d")
            axes.annotate(
                f"{row['min_confidence']:g}",
                (row["coverage"] * 100, row["accuracy"] * 100),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    axes.set_xlabel("reviews kept (%): the rest are labeled uncertain")
    axes.set_ylabel("accuracy of the kept reviews (%)")
    axes.set_xlim(0, 101)
    axes.grid(alpha=0.3)
    axes.set_title(f"{title}\nrs predict --min-confidence P (marked) keeps the reviews at or above P", fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def calibration_record(probabilities: np.ndarray, gold: list[int] | np.ndarray) -> dict:
    """The "calibration" entry of rs_meta.json: the temperature fitted on held-out probabilities, and their ECE,
    Brier score and NLL before and after it (optimistic after: it was fitted on these rows)."""
    temperature = fit_temperature(probabilities, gold)
    return {
        "method": METHOD,
        "temperature": temperature.value,
        "fitted_on_rows": len(gold),
        "binning": BINNING,
        "validation_raw": calibration_scores(probabilities, gold),
        "validation_calibrated": calibration_scores(temperature.apply(probabilities), gold),
    }
