"""rs evaluate: how good a model is on labeled reviews it has not seen.

Reports accuracy, macro-F1 (the headline: neutral is usually rare, and accuracy hides a model that never
says it), per-class precision / recall / F1 / support and the confusion matrix; writes `metrics.json`,
`confusion_matrix.png` and `misclassified.csv` (sorted by confidence, most confident mistakes first).

It also measures how far the confidence can be trusted (calibration.py): ECE over 15 equal-mass bins, Brier
score and NLL of the raw probabilities and of the calibrated ones (the model's temperature), drawn in
`reliability.png`; and the accuracy of the reviews kept when those below a confidence are set aside
(`coverage.png`, and a table), which is how to choose `rs predict --min-confidence`.

When the data has fewer classes than the model (a three-class model on positive/negative data), the plain
scores count every "neutral" as an error; the *restricted* scores take the argmax over the classes present
in the data only. Both are reported and labeled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from review_sentiment.calibration import (
    BINNING,
    by_predicted_label,
    calibration_scores,
    coverage_table,
    kept_scores,
    plot_coverage,
    plot_reliability,
)
from review_sentiment.errors import RsError
from review_sentiment.io import SAMPLE_ROWS, TextColumnChoice, read_reviews, table_stem, write_table
from review_sentiment.labels import CANONICAL_LABELS, RatingBins, find_rating_column, read_gold_labels, sort_labels
from review_sentiment.metrics import classification_scores, plot_confusion_matrices, restricted_argmax
from review_sentiment.modelstore import describe_checkpoint, model_type_of, newest_model_dir
from review_sentiment.options import LabelOptions, ReadOptions, ScoringOptions, WriteOptions
from review_sentiment.reporting import SILENT, Reporter, per_second
from review_sentiment.scoring import Predictor, shown_confidence

METRICS_FILE = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"
MISCLASSIFIED_FILE = "misclassified.csv"
RELIABILITY_PNG = "reliability.png"
COVERAGE_PNG = "coverage.png"


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
    skipped_outside_bins: dict[str, int] = field(default_factory=dict)  # rating → rows in no bin (of skipped_unlabeled)
    trained_on_this_file: bool = False  # the file the model was trained on: the scores are inflated
    unlabeled_note: str = ""  # e.g. "3 without a label, 90 ratings in no bin (6 ×90; ...)"
    seconds: float = 0.0
    startup_seconds: float = 0.0  # loading the file, the model and kiwipiepy, before the first review
    scoring_seconds: float = 0.0  # normalizing and scoring (not start-up, nor writing the reports)
    calibration: dict = field(default_factory=dict)  # ECE, Brier and NLL of the raw and calibrated probabilities
    coverage: list[dict] = field(default_factory=list)  # per confidence threshold: share of reviews kept, accuracy
    min_confidence: dict | None = None  # --min-confidence: the reviews kept and their scores

    @property
    def reviews_per_second(self) -> float | None:
        """Reviews normalized and scored per second (None when that took too little time to tell)."""
        return per_second(self.evaluated, self.scoring_seconds)


@dataclass
class EvaluatePlan:
    """What an evaluation will do, known before the first review is scored (for the command to print)."""

    model_dir: str
    model_is_default: bool
    model_type: str
    labels: list[str]
    device: str
    text_column: TextColumnChoice
    label_source: str
    rows: int
    labeled: int
    warnings: list[str]
    normalization: str = ""  # which normalization the texts get (modelstore.describe_normalization)
    checkpoint: str = ""  # for a checkpoint rs did not train, how its classes are named; "" for an rs model
    calibration: str = ""  # whether the confidences are calibrated, and with which temperature


def model_gold_labels(table: pd.DataFrame, meta: dict, options: LabelOptions = LabelOptions()):
    """The table's gold labels; star ratings binned as the model's were (its stored bins, else its scale) unless
    --rating-scale or --rating-bins say otherwise.

    Ratings that fit the model's scale are binned on it, with a warning when the file's values alone suggested
    another (all <= 5 against a 10-point model); a file that states its own scale (4/5, ★★★☆☆) keeps it; ratings
    above the model's scale are an error that suggests the options for the file's own scale."""
    label_col, rating_col, rating_scale, rating_bins = astuple(options)
    if rating_scale is not None or rating_bins is not None:
        return read_gold_labels(table, label_col, rating_col, rating_scale, rating_bins)
    data, model_labels = meta.get("data", {}), meta.get("labels", list(CANONICAL_LABELS))
    stored = RatingBins.from_dict(data["rating_bins"]) if data.get("rating_bins") else None
    learned = stored or (RatingBins.default(data["rating_scale"]) if data.get("rating_scale") in (5, 10) else None)
    try:
        gold = read_gold_labels(table, label_col, rating_col)
    except RsError:
        # A scale rs cannot guess (ratings up to 100, say) may be the one the model was trained with.
        if learned is None or learned.scale in (5, 10) or label_col is not None:
            raise
        gold = read_gold_labels(table, None, rating_col or find_rating_column(table.columns), None, learned)
        gold.source += ", the model's bins"
        return gold
    if not gold.rating_bins or learned is None:
        return gold
    found, column = gold.rating_bins, gold.column
    if not gold.scale_inferred and found.scale != learned.scale:
        # The file's own scale, in the model's classes only (a binary model has no neutral to bin into).
        own = _for_classes(RatingBins.default(found.scale), model_labels)
        gold = read_gold_labels(table, label_col, column, None, own)
        gold.warnings.append(
            f"The ratings in {column!r} state a {found.scale}-point scale, the model learned {learned.scale}-point "
            f"ratings: they are binned on the file's own scale ({own.describe()})."
        )
        return gold
    if gold.highest > learned.scale:
        suggestion = _for_classes(RatingBins.default(found.scale), model_labels).spec()
        raise RsError(
            f"Ratings in {column!r} go up to {gold.highest:g}, above the top of the scale the model learned "
            f"({learned.describe()}). If they are {found.scale}-point ratings, pass --rating-scale {found.scale} "
            f"--rating-bins {suggestion} (or other ranges for the model's classes)."
        )
    guessed = gold.scale_inferred and found.scale != learned.scale
    gold = read_gold_labels(table, label_col, column, None, learned)
    gold.source += ", the model's bins" if stored else ", the model's scale"
    if guessed:
        gold.warnings.append(
            f"The ratings in {column!r} (up to {gold.highest:g}) do not say their scale: binned on the model's "
            f"{learned.scale}-point scale. If they are {found.scale}-point, pass --rating-scale {found.scale} "
            f"--rating-bins {_for_classes(RatingBins.default(found.scale), model_labels).spec()}."
        )
    return gold


def _for_classes(bins: RatingBins, labels: list[str]) -> RatingBins:
    """`bins` with the ranges of classes not in `labels` left empty (a binary model has no neutral)."""
    ranges = (bins.negative, bins.neutral, bins.positive)
    return RatingBins(
        bins.scale,
        *(bounds if label in labels else None for label, bounds in zip(CANONICAL_LABELS, ranges, strict=True)),
    )


def _unknown_labels_error(unknown: list[str], gold, model_dir: Path, model_labels: list[str]) -> RsError:
    message = f"The data has labels {unknown} that the model {model_dir} does not know ({model_labels})."
    if gold.rating_bins:
        return RsError(
            f"{message} Bin the ratings into the model's classes only, e.g. --rating-bins "
            f"{_for_classes(gold.rating_bins, model_labels).spec()} (an empty range skips that class; its ratings "
            "are left out)."
        )
    return RsError(f"{message} Leave those rows out, or evaluate a model trained with those classes.")


def evaluate_file(
    data_path: str | Path,
    model_dir: str | Path | None = None,
    *,
    output_dir: str | Path | None = None,
    models_dir: str | Path = "models",
    reading: ReadOptions = ReadOptions(),
    labels: LabelOptions = LabelOptions(),
    scoring: ScoringOptions = ScoringOptions(),
    writing: WriteOptions = WriteOptions(),
    on_start: Callable[[EvaluatePlan], None] | None = None,
    reporter: Reporter = SILENT,
) -> EvaluationReport:
    """Score a model on a labeled file and write metrics.json, confusion_matrix.png and misclassified.csv.
    `on_start(plan)` is called once the model is loaded and the columns chosen, before any review is scored;
    `reporter` gets the progress."""
    started = time.perf_counter()
    data_path = Path(data_path)
    model_is_default = model_dir is None
    model_dir = model_dir or newest_model_dir(models_dir)  # a str may be a hub id (Path() would drop a leading ./)
    table = read_reviews(data_path, reading.encoding, reading.sheet)
    predictor = Predictor.from_options(model_dir, scoring)
    gold = model_gold_labels(table, predictor.meta, labels)
    choice = predictor.text_column(list(table.columns), table.head(SAMPLE_ROWS), reading.text_col)
    text_column = choice.name
    unknown = sorted({label for label in gold.labels if label and label not in predictor.labels})
    if unknown:
        raise _unknown_labels_error(unknown, gold, model_dir, predictor.labels)

    labeled = [i for i, label in enumerate(gold.labels) if label is not None]
    if not labeled:  # before kiwipiepy and the model are warmed up for nothing
        raise RsError(f"{data_path} has no labeled rows to evaluate ({gold.source}; {gold.describe_unlabeled()}).")
    trained_on_this_file = str(data_path.resolve()) == predictor.meta.get("data", {}).get("path")
    if trained_on_this_file:
        gold.warnings.append(
            f"The model was trained on {data_path} (its validation split is part of it): these scores are inflated. "
            "Evaluate on reviews it has not seen."
        )
    if on_start:
        on_start(
            EvaluatePlan(
                model_dir=str(model_dir),
                model_is_default=model_is_default,
                model_type=model_type_of(predictor.meta),
                labels=predictor.labels,
                device=predictor.device,
                text_column=choice,
                label_source=gold.source,
                rows=len(table),
                labeled=len(labeled),
                warnings=[*choice.warnings, *gold.warnings],
                normalization=predictor.normalization,
                checkpoint=describe_checkpoint(predictor.meta),
                calibration=predictor.calibration_note,
            )
        )
    predictor.normalizer.load()
    startup_seconds = time.perf_counter() - started
    rows, raw = _score_rows(predictor, table[text_column], labeled, reporter)
    probabilities = predictor.calibrate(raw)  # what rs predict shows
    scoring_seconds = time.perf_counter() - started - startup_seconds
    if not rows:
        raise RsError(f"{data_path} has no labeled rows with text to evaluate ({gold.source}).")
    gold_labels = [gold.labels[i] for i in rows]
    gold_classes = np.array([predictor.labels.index(label) for label in gold_labels])
    predicted = [predictor.labels[i] for i in probabilities.argmax(axis=1)]
    data_labels = sort_labels(gold_labels)
    scores = classification_scores(gold_labels, predicted, predictor.labels)
    restricted = _restricted_scores(probabilities, gold_labels, predictor.labels, data_labels)

    output_dir = Path(output_dir) if output_dir else evaluations_folder(predictor) / table_stem(data_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "metrics": str(output_dir / METRICS_FILE),
        "confusion_matrix": str(output_dir / CONFUSION_PNG),
        "misclassified": str(output_dir / MISCLASSIFIED_FILE),
        "reliability": str(output_dir / RELIABILITY_PNG),
        "coverage": str(output_dir / COVERAGE_PNG),
    }
    misclassified = _misclassified(table[text_column], rows, gold_labels, predicted, probabilities.max(axis=1))
    write_table(misclassified, files["misclassified"], writing.escape_formulas)
    panels = [(scores, f"all {len(predictor.labels)} model classes")]
    if restricted:
        panels.append((restricted, f"restricted to the data's classes ({', '.join(data_labels)})"))
    title = f"{Path(model_dir).name} on {data_path.name}"
    plot_confusion_matrices(panels, Path(files["confusion_matrix"]), title)
    curves = [("raw", raw)] + (
        [(f"temperature {predictor.temperature.value:g}", probabilities)] if predictor.temperature else []
    )
    plot_reliability(curves, gold_classes, Path(files["reliability"]), title)
    plot_coverage(probabilities, gold_classes, Path(files["coverage"]), title)
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
        skipped_outside_bins=gold.outside_bins,
        trained_on_this_file=trained_on_this_file,
        unlabeled_note=gold.describe_unlabeled(),
        startup_seconds=round(startup_seconds, 2),
        scoring_seconds=round(scoring_seconds, 2),
        calibration=_calibration(predictor, raw, probabilities, gold_classes),
        coverage=coverage_table(probabilities, gold_classes),
        min_confidence=_kept(probabilities, gold_labels, predictor.labels, scoring.min_confidence),
    )
    report.seconds = round(time.perf_counter() - started, 2)
    Path(files["metrics"]).write_text(json.dumps(asdict(report), ensure_ascii=False, indent=2), encoding="utf-8")
    return report


def evaluations_folder(predictor: Predictor) -> Path:
    """Where evaluations go by default: MODEL/evaluations; for a hub checkpoint, whose folder is a snapshot in the
    Hugging Face cache, evaluations/OWNER--NAME here."""
    hub_id = (predictor.meta.get("source") or {}).get("hub_id")
    return Path("evaluations", hub_id.replace("/", "--")) if hub_id else predictor.model_dir / "evaluations"


def _score_rows(
    predictor: Predictor, texts: pd.Series, labeled: list[int], reporter: Reporter
) -> tuple[list[int], np.ndarray]:
    """The labeled rows with text to score (positions in `texts`), and their raw class probabilities."""
    with reporter.stages(["Normalizing", "Scoring"], len(labeled)) as (normalized, scored):
        prepared = predictor.prepare(texts.iloc[labeled].tolist(), on_progress=normalized)
        probabilities = predictor.score(prepared, on_batch=scored, calibrated=False)
        scored(prepared.rows - len(prepared.scored))
    scored_mask = ~np.isnan(probabilities).any(axis=1)
    return [row for row, ok in zip(labeled, scored_mask, strict=True) if ok], probabilities[scored_mask]


def _calibration(predictor: Predictor, raw: np.ndarray, shown: np.ndarray, gold: np.ndarray) -> dict:
    """How well the confidences match the accuracy, before and after the model's temperature."""
    temperature = predictor.temperature
    return {
        "binning": BINNING,
        "temperature": None if temperature is None else temperature.value,
        "applied": predictor.calibration_note,
        "raw": calibration_scores(raw, gold),
        "calibrated": None if temperature is None else calibration_scores(shown, gold),
        "by_predicted_label": by_predicted_label(shown, gold, predictor.labels),
    }


def _kept(
    probabilities: np.ndarray, gold_labels: list[str], model_labels: list[str], min_confidence: float | None
) -> dict | None:
    """With --min-confidence: the reviews at or above it (the rest rs predict labels uncertain) and their scores."""
    if min_confidence is None:
        return None
    confidence = shown_confidence(probabilities)
    predicted = [model_labels[i] for i in probabilities.argmax(axis=1)]
    correct = np.array(predicted) == np.array(gold_labels)
    kept = kept_scores(confidence, correct, min_confidence)
    rows = np.flatnonzero(confidence >= min_confidence)
    kept["uncertain"] = len(gold_labels) - kept["kept"]
    kept["scores"] = (
        classification_scores([gold_labels[i] for i in rows], [predicted[i] for i in rows], model_labels)
        if len(rows)
        else None
    )
    return kept


def _restricted_scores(
    probabilities: np.ndarray, gold_labels: list[str], model_labels: list[str], data_labels: list[str]
) -> dict | None:
    """The scores with the argmax over the data's classes only, when the data has fewer (but two or more)."""
    if len(data_labels) < len(model_labels) and len(data_labels) >= 2:
        restricted_predicted = restricted_argmax(probabilities, model_labels, data_labels)
        return classification_scores(gold_labels, restricted_predicted, data_labels)
    return None


def _misclassified(
    texts: pd.Series, rows: list[int], gold_labels: list[str], predicted: list[str], confidence: np.ndarray
) -> pd.DataFrame:
    """The mistakes, most confident first: row (1 = the first data row), text, gold, predicted, confidence."""
    wrong = [j for j in range(len(rows)) if predicted[j] != gold_labels[j]]
    wrong.sort(key=lambda j: -confidence[j])
    return pd.DataFrame(
        {
            "row": [rows[j] + 1 for j in wrong],  # position of the review in the file, 1 = first data row
            "text": [texts.iloc[rows[j]] for j in wrong],
            "gold": [gold_labels[j] for j in wrong],
            "predicted": [predicted[j] for j in wrong],
            "confidence": [round(float(confidence[j]), 4) for j in wrong],
        }
    )
