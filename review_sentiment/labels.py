"""Label schemes: label columns in English or Korean, 0/1 columns, and star ratings binned into classes."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from review_sentiment.errors import RsError
from review_sentiment.io.columns import find_named_column

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


def known_label(name: str) -> str | None:
    """The canonical label a label name stands for (긍정 → positive, NEG → negative), as in a label column; None
    for a name rs does not know (LABEL_0, 1, very good)."""
    return _SYNONYM_TO_LABEL.get(unicodedata.normalize("NFC", name).strip().lower())


def sort_labels(labels) -> list[str]:
    """Labels in canonical order (negative, neutral, positive)."""
    return [label for label in CANONICAL_LABELS if label in set(labels)]


def _star_text(value: float) -> str:
    """A range end as --rating-bins writes it: 4 rather than 4.0, and every digit of 2.25 (no rounding)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _no_whole_star_between(high: float, next_low: float) -> bool:
    """True for 3 and 4 or 2.5 and 3 (ranges that touch); False for 4 and 9 (1-4,,9-10 leaves 5-8 out on purpose)."""
    return math.floor(high) + 1 >= next_low


@dataclass(frozen=True)
class RatingBins:
    """Inclusive rating ranges for each class (None: no such class), and which class a rating between them gets.

    Half stars and other ratings between two ranges count in the lower range's class when no whole star lies
    between the ranges: each class starts at its range's lowest value, so on 1-2,3,4-5 a 3.5 is neutral and a 2.5
    negative ("4 stars or more is positive"). A rating under a lowest range that starts at 1 star (0.5 on 1-2)
    counts in the lowest class. Ranges that leave whole stars out (1-4,,9-10 leaves out 5-8) leave every rating in
    the gap unlabeled, as are ratings above the top range and 0 or less: those are "in no bin", listed with their
    values. `label_for` is the one place that applies this.
    """

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

    def to_dict(self) -> dict:
        """JSON-able form for a model's metadata: {"scale": 5, "negative": [1, 2], "neutral": [3, 3], ...}."""
        return {"scale": self.scale, **{label: list(bounds) if bounds else None for label, bounds in self._classes()}}

    @classmethod
    def from_dict(cls, stored: dict) -> RatingBins:
        """The inverse of `to_dict`; stored bins that were edited into nonsense are an error, not a silent default."""

        def is_number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        problem = f"Stored rating bins {stored!r} are not readable"
        if not isinstance(stored, dict) or set(stored) != {"scale", *CANONICAL_LABELS}:
            raise RsError(f"{problem}: expected the keys scale, {', '.join(CANONICAL_LABELS)}.")
        scale = stored["scale"]
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise RsError(f"{problem}: the scale must be a whole number such as 5 or 10.")
        ranges = []
        for label in CANONICAL_LABELS:
            bounds = stored[label]
            if bounds is None:
                ranges.append(None)
                continue
            if not isinstance(bounds, (list, tuple)) or len(bounds) != 2 or not all(map(is_number, bounds)):
                raise RsError(f"{problem}: {label} must be [low, high] or null.")
            if bounds[0] > bounds[1]:
                raise RsError(f"{problem}: the {label} range runs backwards.")
            ranges.append(tuple(bounds))
        bins = cls(scale, *ranges)
        bins._check_disjoint()
        return bins

    def spec(self) -> str:
        """The --rating-bins form of these bins ("1-2,3,4-5", "1-4,,9-10"), for messages that say what to pass."""
        return ",".join(self._range_text(bounds, empty="") for _, bounds in self._classes())

    def _classes(self) -> tuple[tuple[str, tuple[float, float] | None], ...]:
        return ((NEGATIVE, self.negative), (NEUTRAL, self.neutral), (POSITIVE, self.positive))

    @staticmethod
    def _range_text(bounds: tuple[float, float] | None, empty: str) -> str:
        if not bounds:
            return empty
        low, high = (_star_text(b) for b in bounds)
        return low if low == high else f"{low}-{high}"

    def _check_disjoint(self) -> None:
        ordered = [r for r in (self.negative, self.neutral, self.positive) if r]
        if len(ordered) < 2:
            raise RsError("--rating-bins needs at least two classes.")
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if earlier[1] >= later[0]:
                raise RsError(f"Rating ranges overlap or are out of order: {earlier} and {later}.")

    def label_for(self, rating: float) -> str | None:
        """The class of one rating under the rule in the class docstring; None: in no bin."""
        ranges = [(label, bounds) for label, bounds in self._classes() if bounds]
        lowest_label, (lowest, _) = ranges[0]
        if 0 < rating < lowest and _no_whole_star_between(0, lowest):
            return lowest_label
        next_lows = [bounds[0] for _, bounds in ranges[1:]] + [None]
        for (label, (low, high)), next_low in zip(ranges, next_lows, strict=True):
            if low <= rating <= high:
                return label
            if next_low is not None and high < rating < next_low and _no_whole_star_between(high, next_low):
                return label
        return None

    def describe(self) -> str:
        """E.g. "10-point: negative 1-4, neutral 5-8, positive 9-10"; a skipped class is named as such."""
        named = list(zip(CANONICAL_LABELS, (self.negative, self.neutral, self.positive), strict=True))
        shown = [f"{label} {self._range_text(bounds, '-')}" for label, bounds in named if bounds]
        skipped = [f"no {label}" for label, bounds in named if not bounds]
        return f"{self.scale}-point: {', '.join(shown + skipped)}"


@dataclass
class LabeledColumn:
    """Gold labels read from a table: one entry per row (None where unlabeled) and where they came from."""

    labels: list[str | None]
    source: str  # e.g. "label column 'label'" or "rating column 'stars' (5-point: ...)"
    column: str
    rating_bins: RatingBins | None = None
    outside_bins: dict[str, int] = field(default_factory=dict)  # rating value → rows in no bin
    # True where no --rating-scale, stored bins or scale-carrying rating (4/5, ★★★★☆) said the scale: rs guessed it.
    scale_inferred: bool = False
    highest: float | None = None  # the highest rating in the column (None for a label column)
    warnings: list[str] = field(default_factory=list)  # for the user, e.g. that a guessed scale may be wrong

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


def find_rating_column(columns) -> str | None:
    """The column with a known rating name (rating, stars, 별점, 평점 ...), or None; several are an error."""
    return find_named_column(columns, RATING_COLUMN_NAMES, "the star ratings", "--rating-col")


def find_label_column(columns) -> str | None:
    """The column with a known label name (label, sentiment, 감성, 라벨 ...), or None; several are an error."""
    return find_named_column(columns, LABEL_COLUMN_NAMES, "the labels", "--label-col")


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


class _Rating(NamedTuple):
    value: float
    scale: int | None  # the scale the cell itself states (4/5, 10점 만점에 8점, ★★★★☆), else None


ACCEPTED_RATING_FORMS = "4, 4.5, 5점, 별 4개, 별점 4, 4/5, 8/10, 4점/5점, 10점 만점에 8점, ★★★★☆, ★★★★½"

_NUMBER = r"(\d+(?:\.\d+)?)"
_RATING_WORD = r"(?:(?:별점|평점|점수|별)\s*:?\s*)?"  # 별점 4, 평점: 4.5, 별 4개
_UNIT = r"\s*(?:점|개)?"  # 5점, 4개
_PLAIN_RATING = re.compile(rf"^{_RATING_WORD}{_NUMBER}{_UNIT}$")
_FRACTION_RATING = re.compile(rf"^{_RATING_WORD}{_NUMBER}{_UNIT}\s*/\s*{_NUMBER}{_UNIT}$")
_OUT_OF_RATING = re.compile(rf"^{_RATING_WORD}{_NUMBER}\s*점\s*만점\s*(?:에서|에|중)?\s*,?\s*{_NUMBER}{_UNIT}$")
# Filled stars, an optional half star, then empty stars; spaces and emoji variation selectors are dropped first.
_STAR_GLYPHS = re.compile(r"^([★⭐]*)(½?)(☆*)$")


def _read_rating(cell: str) -> _Rating | None:
    """One rating cell as a number and the scale it states; None where it is no rating form rs knows."""
    glyphs = re.sub(r"[\s\ufe0f]", "", cell)
    stars = _STAR_GLYPHS.match(glyphs)
    if glyphs and stars:
        filled, half, empty = (len(group) for group in stars.groups())
        return _Rating(filled + 0.5 * half, filled + half + empty if empty else None)
    text = unicodedata.normalize("NFKC", cell).strip()  # full-width ４ and ／ become 4 and /
    if out_of := _OUT_OF_RATING.match(text):
        return _rating_out_of(out_of.group(2), out_of.group(1))
    if fraction := _FRACTION_RATING.match(text):
        return _rating_out_of(fraction.group(1), fraction.group(2))
    if plain := _PLAIN_RATING.match(text):
        return _Rating(float(plain.group(1)), None)
    number = _as_number(text)  # what float() reads beyond the forms above: -1, 4., 1e0
    return _Rating(number, None) if number is not None and math.isfinite(number) else None


def _rating_out_of(value: str, scale: str) -> _Rating | None:
    """4 out of 5; a rating above its own scale or a scale such as 0 or 4.5 is no rating."""
    rating, top = float(value), float(scale)
    if not top.is_integer() or top < 1 or rating > top:
        return None
    return _Rating(rating, int(top))


def _examples(cells) -> str:
    return ", ".join(repr(cell) for cell in list(cells)[:3])


def _resolve_scale(
    column: str, ratings: dict[str, _Rating], scale: int | None, given_bins: RatingBins | None
) -> tuple[int | None, bool]:
    """The scale to bin with and whether it is only inferred: given, else stored bins', else the cells' own.

    The scale that cells such as 4/5 or ★★★★☆ state must agree with the given one and among themselves: 4 means
    something else on a 10-point scale, so a mix is an error rather than a guess.
    """
    if given_bins is not None:
        if scale is not None and scale != given_bins.scale:
            raise RsError(
                f"--rating-scale {scale} disagrees with the rating bins' {given_bins.scale}-point scale "
                f"({given_bins.describe()})."
            )
        scale = given_bins.scale
    stated: dict[int, list[str]] = {}
    for cell, rating in ratings.items():
        if rating.scale is not None:
            stated.setdefault(rating.scale, []).append(cell)
    if len(stated) > 1:
        mixed = " and ".join(f"{s}-point ({_examples(cells)})" for s, cells in sorted(stated.items()))
        raise RsError(f"The rating column {column!r} mixes rating scales: {mixed}. Use one scale per file.")
    if stated:
        ((stated_scale, cells),) = stated.items()
        if scale is not None and scale != stated_scale:
            given = "--rating-scale" if given_bins is None else "The rating bins' scale"
            raise RsError(
                f"{given} {scale} disagrees with the rating column {column!r}, whose ratings say "
                f"{stated_scale}-point ({_examples(cells)})."
            )
        return stated_scale, False
    return scale, scale is None


def parse_ratings(
    values, column: str, scale: int | None = None, rating_bins: str | RatingBins | None = None
) -> LabeledColumn:
    """Bin star ratings into classes; empty or out-of-bin ratings are unlabeled, unreadable ratings an error.

    rating_bins is a --rating-bins spec such as "1-4,,9-10" or bins stored with a model (their scale then counts
    as given); None bins by `RatingBins.default` of the scale.
    """
    cells = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in values]
    # Each distinct cell once, in file order so that error messages quote the first examples.
    ratings = {cell: _read_rating(cell) for cell in dict.fromkeys(cells) if cell}
    bad = sorted(cell for cell, rating in ratings.items() if rating is None)
    if bad:
        shown = ", ".join(repr(b) for b in bad[:10])
        raise RsError(
            f"The rating column {column!r} has values that are not ratings rs can read: {shown}. "
            f"Accepted: {ACCEPTED_RATING_FORMS} (full-width digits too).{_header_hint(cells, column)}"
        )
    if not ratings:
        raise RsError(f"The rating column {column!r} is empty.")
    given_bins = rating_bins if isinstance(rating_bins, RatingBins) else None
    scale, scale_inferred = _resolve_scale(column, ratings, scale, given_bins)
    warnings = []
    highest = max(rating.value for rating in ratings.values())
    if scale_inferred:
        scale = detect_rating_scale([highest])
        if scale == 5 and rating_bins is None:
            # Only the default bins depend on the guess; with --rating-bins the ranges decide the classes.
            warnings.append(
                f"The rating scale was taken as 5-point because no rating in {column!r} is above 5 (the highest "
                f"is {highest:g}); if it is a 10-point scale, pass --rating-scale 10."
            )
    if given_bins is not None:
        bins = given_bins
    else:
        bins = RatingBins.parse(rating_bins, scale) if rating_bins else RatingBins.default(scale)
    top = max(bounds[1] for bounds in (bins.negative, bins.neutral, bins.positive) if bounds)
    if isinstance(rating_bins, str) and top < highest <= bins.scale and top <= bins.scale / 2:
        # 1-2,3,4-5 on a 10-point file: 5-point ranges; everything above 5 would be left out without a word
        warnings.append(
            f"The --rating-bins ranges end at {top:g}, but ratings in {column!r} go up to {highest:g} on a "
            f"{bins.scale}-point scale: the rows above {top:g} are left out. Are the ranges for another scale?"
        )
    if highest > bins.scale:  # a scale that was given (--rating-scale, a model's bins) and is too small
        raise RsError(
            f"Ratings in {column!r} go up to {highest:g}, above the {bins.scale}-point scale they are binned on. "
            "Pass --rating-scale with the file's scale (5 or 10), and --rating-bins for it if needed."
        )
    label_of = {cell: bins.label_for(rating.value) for cell, rating in ratings.items()}
    labels = [label_of[cell] if cell else None for cell in cells]
    outside = Counter(f"{ratings[cell].value:g}" for cell in cells if cell and label_of[cell] is None)
    return LabeledColumn(
        labels,
        f"rating column {column!r} ({bins.describe()})",
        column,
        bins,
        dict(outside.most_common()),
        scale_inferred=scale_inferred,
        highest=highest,
        warnings=warnings,
    )


@dataclass(frozen=True)
class GoldColumn:
    name: str
    is_rating: bool  # star ratings to bin, else label values


def find_gold_column(
    columns,
    label_col: str | None = None,
    rating_col: str | None = None,
    rating_scale: int | None = None,
    rating_bins: str | RatingBins | None = None,
) -> GoldColumn | None:
    """The column `read_gold_labels` reads (by the options, else by its name), or None when there is none."""
    columns = list(columns)
    for option, name in (("--label-col", label_col), ("--rating-col", rating_col)):
        if name is not None and name not in columns:
            raise RsError(f"{option} {name!r} is not a column of the file. Columns: {columns}.")
    if label_col is None and rating_col is None:
        # Rating options mean the user wants ratings even when a label column exists too.
        wants_ratings = rating_scale is not None or rating_bins is not None
        if not wants_ratings:
            label_col = find_label_column(columns)
        if label_col is None:
            rating_col = find_rating_column(columns)
    if label_col is not None:
        return GoldColumn(label_col, is_rating=False)
    return GoldColumn(rating_col, is_rating=True) if rating_col is not None else None


def read_gold_labels(
    table: pd.DataFrame,
    label_col: str | None = None,
    rating_col: str | None = None,
    rating_scale: int | None = None,
    rating_bins: str | RatingBins | None = None,
) -> LabeledColumn:
    """Find and parse the labels of a table: an explicit column, else a label column, else a rating column.

    rating_bins: a --rating-bins spec, or the `RatingBins` a model was trained with (evaluate reuses those).
    """
    found = find_gold_column(table.columns, label_col, rating_col, rating_scale, rating_bins)
    if found is not None and not found.is_rating:
        labels = parse_label_values(table[found.name].tolist(), found.name)
        return LabeledColumn(labels, f"label column {found.name!r}", found.name)
    if found is not None:
        return parse_ratings(table[found.name].tolist(), found.name, rating_scale, rating_bins)
    raise RsError(
        f"No label or rating column found. Columns: {list(table.columns)}. Name one with --label-col "
        f"(positive/negative/neutral, 긍정/부정/중립, 0/1) or --rating-col (1-5 or 1-10 stars)."
    )
