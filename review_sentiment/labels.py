"""Label schemes: label columns in English or Korean, 0/1 columns, and star ratings binned into classes."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from review_sentiment.errors import RsError

NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"
CANONICAL_LABELS = (NEGATIVE, NEUTRAL, POSITIVE)

LABEL_SYNONYMS = {
    NEGATIVE: {"negative", "neg", "n", "bad", "부정", "부정적", "나쁨", "불만"},
    NEUTRAL: {"neutral", "neu", "neut", "mixed", "중립", "중립적", "보통"},
    POSITIVE: {"positive", "pos", "p", "good", "긍정", "긍정적", "좋음", "만족"},
}
_SYNONYM_TO_LABEL = {word: label for label, words in LABEL_SYNONYMS.items() for word in words}

LABEL_COLUMN_NAMES = (
    "label",
    "labels",
    "sentiment",
    "polarity",
    "class",
    "감성",
    "감정",
    "라벨",
    "레이블",
    "극성",
)
RATING_COLUMN_NAMES = ("rating", "ratings", "star", "stars", "score", "stars_rating", "별점", "평점", "점수")

_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?))?\s*$")


def sort_labels(labels) -> list[str]:
    """Labels in canonical order (negative, neutral, positive)."""
    return [label for label in CANONICAL_LABELS if label in set(labels)]


@dataclass(frozen=True)
class RatingBins:
    """Inclusive rating ranges for each class; a rating in no range is left unlabeled."""

    scale: int
    negative: tuple[float, float] | None
    neutral: tuple[float, float] | None
    positive: tuple[float, float] | None

    @classmethod
    def default(cls, scale: int) -> RatingBins:
        if scale == 5:
            return cls(5, (1, 2), (3, 3), (4, 5))
        if scale == 10:
            return cls(10, (1, 4), (5, 8), (9, 10))
        raise RsError(f"Rating scale must be 5 or 10, got {scale}. Pass --rating-bins to bin other scales.")

    @classmethod
    def parse(cls, spec: str, scale: int) -> RatingBins:
        """Parse "NEG,NEU,POS" ranges such as "1-2,3,4-5" or "1-4,,9-10" (empty: no such class)."""
        parts = spec.split(",")
        if len(parts) != 3:
            raise RsError(
                f"--rating-bins takes three comma-separated ranges NEGATIVE,NEUTRAL,POSITIVE such as "
                f"'1-2,3,4-5' (leave one empty to skip it: '1-4,,9-10'); got {spec!r}."
            )
        ranges = []
        for part in parts:
            if not part.strip():
                ranges.append(None)
                continue
            match = _RANGE.match(part)
            if not match:
                raise RsError(f"Cannot read the rating range {part!r} in --rating-bins {spec!r}; use e.g. 1-2.")
            low = float(match.group(1))
            high = float(match.group(2) or match.group(1))
            if low > high:
                raise RsError(f"The rating range {part!r} runs backwards; write it low-high.")
            ranges.append((low, high))
        bins = cls(scale, *ranges)
        bins._check_disjoint()
        return bins

    def _check_disjoint(self) -> None:
        ordered = [r for r in (self.negative, self.neutral, self.positive) if r]
        if len(ordered) < 2:
            raise RsError("--rating-bins needs at least two classes.")
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if earlier[1] >= later[0]:
                raise RsError(f"Rating ranges overlap or are out of order: {earlier} and {later}.")

    def label_for(self, rating: float) -> str | None:
        for label, bounds in ((NEGATIVE, self.negative), (NEUTRAL, self.neutral), (POSITIVE, self.positive)):
            if bounds and bounds[0] <= rating <= bounds[1]:
                return label
        return None

    def describe(self) -> str:
        def fmt(bounds):
            if not bounds:
                return "-"
            low, high = (f"{b:g}" for b in bounds)
            return low if low == high else f"{low}-{high}"

        return (
            f"{self.scale}-point: negative {fmt(self.negative)}, neutral {fmt(self.neutral)}, "
            f"positive {fmt(self.positive)}"
        )


@dataclass
class LabeledColumn:
    """Gold labels read from a table: one entry per row (None where unlabeled) and where they came from."""

    labels: list[str | None]
    source: str  # e.g. "label column 'label'" or "rating column 'stars' (5-point: ...)"
    column: str
    rating_bins: RatingBins | None = None
    outside_bins: dict[str, int] = field(default_factory=dict)  # rating value → rows in no bin

    @property
    def n_unlabeled(self) -> int:
        return sum(label is None for label in self.labels)

    def describe_unlabeled(self) -> str:
        """E.g. "12 without a label, 34 ratings in no bin (2.5 ×20, 0.5 ×14; --rating-bins can include them)"."""
        outside = sum(self.outside_bins.values())
        text = f"{self.n_unlabeled - outside} without a label"
        if outside:
            values = ", ".join(f"{value} ×{n}" for value, n in list(self.outside_bins.items())[:6])
            text += f", {outside} ratings in no bin ({values}; --rating-bins can include them)"
        return text

    def counts(self) -> dict[str, int]:
        counter = Counter(label for label in self.labels if label is not None)
        return {label: counter[label] for label in sort_labels(counter)}


def _find_column(columns, wanted: tuple[str, ...]) -> str | None:
    by_lower = {str(c).strip().lower(): c for c in columns}
    for name in wanted:
        if name in by_lower:
            return by_lower[name]
    return None


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def parse_label_values(values, column: str) -> list[str | None]:
    """Map label cells to canonical labels. Empty cells are unlabeled; unknown values are an error."""
    cells = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in values]
    non_empty = {c for c in cells if c}
    numbers = {c: _as_number(c) for c in non_empty}
    if non_empty and all(n is not None for n in numbers.values()):
        distinct = {numbers[c] for c in non_empty}
        if distinct <= {0.0, 1.0}:
            mapping = {0.0: NEGATIVE, 1.0: POSITIVE}
        elif distinct <= {-1.0, 0.0, 1.0}:
            mapping = {-1.0: NEGATIVE, 0.0: NEUTRAL, 1.0: POSITIVE}
        else:
            shown = ", ".join(f"{n:g}" for n in sorted(distinct)[:10])
            raise RsError(
                f"The label column {column!r} holds numbers ({shown}) that are not 0/1 (negative/positive) "
                f"or -1/0/1. If they are star ratings, pass --rating-col {column}."
            )
        return [mapping[numbers[c]] if c else None for c in cells]
    unknown = sorted({c for c in non_empty if c.lower() not in _SYNONYM_TO_LABEL})
    if unknown:
        shown, hint = ", ".join(repr(u) for u in unknown[:10]), _header_hint(cells, column)
        if all(_as_number(u) is not None for u in unknown):
            raise RsError(
                f"The label column {column!r} mixes numbers ({shown}) with words; use one convention: "
                f"positive/negative/neutral (or 긍정/부정/중립, pos/neg/neu), or 0/1, or -1/0/1.{hint}"
            )
        raise RsError(
            f"The label column {column!r} has values rs does not know: {shown}. Use positive/negative/neutral "
            f"(or 긍정/부정/중립, pos/neg/neu, 0/1), or pass --rating-col for star ratings.{hint}"
        )
    return [_SYNONYM_TO_LABEL[c.lower()] if c else None for c in cells]


def _header_hint(cells: list[str], column: str) -> str:
    """Where a column holds its own name: the file repeats its header line (exports pasted together)."""
    rows = [str(i + 1) for i, cell in enumerate(cells) if cell == column]
    if not rows:
        return ""
    return (
        f" Data row(s) {', '.join(rows[:5])} hold {column!r} itself: the file repeats its header line there "
        "(several exports pasted together?); delete those lines."
    )


def detect_rating_scale(ratings: list[float]) -> int:
    highest = max(ratings)
    if highest <= 5:
        return 5
    if highest <= 10:
        return 10
    raise RsError(
        f"Ratings go up to {highest:g}; rs knows 5- and 10-point scales. Pass --rating-scale and --rating-bins."
    )


def parse_ratings(values, column: str, scale: int | None = None, bins_spec: str | None = None) -> LabeledColumn:
    """Bin star ratings into classes; empty or out-of-bin ratings are unlabeled, non-numbers an error."""
    cells = ["" if v is None else str(v).strip() for v in values]
    numbers = [_as_number(c) if c else None for c in cells]
    bad = sorted({c for c, n in zip(cells, numbers, strict=True) if c and n is None})
    if bad:
        shown = ", ".join(repr(b) for b in bad[:10])
        raise RsError(
            f"The rating column {column!r} has values that are not numbers: {shown}.{_header_hint(cells, column)}"
        )
    present = [n for n in numbers if n is not None]
    if not present:
        raise RsError(f"The rating column {column!r} is empty.")
    scale = scale or detect_rating_scale(present)
    bins = RatingBins.parse(bins_spec, scale) if bins_spec else RatingBins.default(scale)
    labels = [bins.label_for(n) if n is not None else None for n in numbers]
    outside = Counter(f"{n:g}" for n, label in zip(numbers, labels, strict=True) if n is not None and label is None)
    return LabeledColumn(
        labels, f"rating column {column!r} ({bins.describe()})", column, bins, dict(outside.most_common())
    )


def read_gold_labels(
    table: pd.DataFrame,
    label_col: str | None = None,
    rating_col: str | None = None,
    rating_scale: int | None = None,
    rating_bins: str | None = None,
) -> LabeledColumn:
    """Find and parse the labels of a table: an explicit column, else a label column, else a rating column."""
    for option, name in (("--label-col", label_col), ("--rating-col", rating_col)):
        if name is not None and name not in table.columns:
            raise RsError(f"{option} {name!r} is not a column of the file. Columns: {list(table.columns)}.")
    if label_col is None and rating_col is None:
        # Rating options mean the user wants ratings even when a label column exists too.
        wants_ratings = rating_scale is not None or rating_bins is not None
        if not wants_ratings:
            label_col = _find_column(table.columns, LABEL_COLUMN_NAMES)
        if label_col is None:
            rating_col = _find_column(table.columns, RATING_COLUMN_NAMES)
    if label_col is not None:
        labels = parse_label_values(table[label_col].tolist(), label_col)
        return LabeledColumn(labels, f"label column {label_col!r}", label_col)
    if rating_col is not None:
        return parse_ratings(table[rating_col].tolist(), rating_col, rating_scale, rating_bins)
    raise RsError(
        f"No label or rating column found. Columns: {list(table.columns)}. Name one with --label-col "
        f"(positive/negative/neutral, 긍정/부정/중립, 0/1) or --rating-col (1-5 or 1-10 stars)."
    )
