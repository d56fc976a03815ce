"""Option groups several stages share, declared once: the CLI builds them from its flags, the Python API takes
them as they are (`predict_file(path, reading=ReadOptions(encoding="cp949"))`). Each default here is the default."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BATCH_ROWS = 1024  # reviews per scoring batch at most (inference batches by tokens within it)


@dataclass(frozen=True)
class ReadOptions:
    """How an input file is read: its text column, encoding and sheet (None: detected)."""

    text_col: str | None = None
    """Column with the review text [default: found by its name and content]."""
    encoding: str | None = None
    """Force the encoding of a text file (cp949, utf-16) [default: UTF-8 or CP949, detected]."""
    sheet: str | None = None
    """The .xlsx sheet: its name or number (1 = first) [default: the first sheet]."""


@dataclass(frozen=True)
class WriteOptions:
    """How an output file is written."""

    escape_formulas: bool = True
    """Give a .csv/.tsv/.xlsx cell that starts with = + - @ (or tab, CR) a leading ' so a spreadsheet shows it."""


@dataclass(frozen=True)
class LabelOptions:
    """Where the gold labels are: a label column, or a star-rating column with its scale and bins (None: found)."""

    label_col: str | None = None
    """Column of labels (positive/negative/neutral, 긍정/부정/중립, pos/neg/neu, 0/1)."""
    rating_col: str | None = None
    """Column of star ratings to bin into labels."""
    rating_scale: int | None = None
    """5 or 10 [default: what the ratings state or reach]."""
    rating_bins: str | None = None
    """NEGATIVE,NEUTRAL,POSITIVE rating ranges ("1-4,,9-10": an empty one skips that class)."""


@dataclass(frozen=True)
class ScoringOptions:
    """How a model scores reviews (rs predict, rs evaluate)."""

    device: str | None = None
    """cpu or cuda [default: cuda when available]."""
    precision: str | None = None
    """fp32, bf16, fp16 or int8 (CPU) [default: bf16 on a GPU, fp32 on a CPU]."""
    batch_size: int = MAX_BATCH_ROWS
    """At most this many reviews per batch."""
    batch_tokens: int | None = None
    """Padded tokens per batch [default: 512 on a CPU, 32768 on a GPU]."""
    threads: int | None = None
    """CPU threads for the model [default: one per usable core]."""
    calibration: bool = True
    """Apply the temperature `rs finetune` fitted on the validation split (False: the model's raw scores)."""
    min_confidence: float | None = None
    """Label a row whose confidence is below this `uncertain` (its probabilities are still written)."""
    labels: tuple[str, ...] | None = None
    """The class names, in the checkpoint's class order, of a checkpoint rs did not train (when its id2label
    says LABEL_0, LABEL_1 or 0, 1) [default: read from its id2label]."""
    normalization: str | None = None
    """none or rs: the normalization applied for a checkpoint rs did not train [default: rs]."""
