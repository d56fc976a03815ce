"""Column names: which column holds the review text (by its name and by what it holds), columns found by their
name (labels, ratings), and names made unique.

A name alone misleads: a file with an English `sentence` column beside the same sentences in Korean would be
trained on the English one. So the cells are looked at too (a sample from the top of the file): a column whose
texts mostly contain Hangul beats a well-named column with none, and a chosen column with little Hangul comes
with a warning that names the columns that have it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from review_sentiment.errors import RsError

TEXT_COLUMN_NAMES = (
    "review",
    "reviews",
    "text",
    "document",
    "content",
    "contents",
    "comment",
    "comments",
    "body",
    "sentence",
    "review_text",
    "리뷰",
    "내용",
    "후기",
    "리뷰내용",
    "리뷰 내용",
    "본문",
    "댓글",
    "문장",
    "텍스트",
)
SAMPLE_ROWS = 1000  # rows looked at to judge what a column holds
MOSTLY_HANGUL = 0.5  # share of a column's non-empty sampled cells with Hangul for it to count as Korean text
LITTLE_HANGUL = 0.1  # below this share a well-named column gives way to a Korean one (an English translation)
# Syllables, compatibility jamo (ㅋㅋ, ㅠㅠ) and conjoining jamo: macOS exports are NFD, where 리뷰 is 6 of them.
_HANGUL = re.compile("[\uac00-\ud7a3\u3131-\u318e\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff]")


@dataclass
class TextColumnChoice:
    """The chosen text column, why it was chosen, and what a user should hear about it."""

    name: str
    reason: str  # e.g. "--text-col", "its name", "the only column with Korean text"
    hangul_share: float | None  # share of its sampled non-empty cells that contain Hangul (None: no rows)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        share = "" if self.hangul_share is None else f"; Hangul in {self.hangul_share:.0%} of sampled texts"
        return f"'{self.name}' ({self.reason}{share})"


def hangul_shares(sample: pd.DataFrame | None, columns: Sequence[str]) -> dict[str, float | None]:
    """For each column, the share of its non-empty sampled cells that contain Hangul (None: no such cell)."""
    shares: dict[str, float | None] = {}
    for column in columns:
        if sample is None or column not in sample.columns:
            shares[column] = None
            continue
        cells = [str(cell) for cell in sample[column].head(SAMPLE_ROWS).tolist() if _filled(cell)]
        shares[column] = sum(1 for cell in cells if _HANGUL.search(cell)) / len(cells) if cells else None
    return shares


def _filled(cell: object) -> bool:
    return not (cell is None or (pd.api.types.is_scalar(cell) and pd.isna(cell))) and str(cell).strip() != ""


def choose_text_column(
    columns: Sequence[str],
    sample: pd.DataFrame | None = None,
    text_col: str | None = None,
    trained_on: str | None = None,
    hint: str = "",
) -> TextColumnChoice:
    """The review-text column: `text_col` if given, else `trained_on` (the model's column) when the file has it,
    else by name (review, text, 리뷰, 내용...) and content (`sample`, the first rows: Korean text beats none).

    Two equally good candidates are an error rather than a guess (the policy of `find_named_column`, after what
    the cells hold has had its say). `hint` (a `TableSource.other_sheets_hint`)
    ends the errors a wrong sheet may cause."""
    columns = [str(c) for c in columns]
    shares = hangul_shares(sample, columns)
    korean = [c for c in columns if (shares[c] or 0) >= MOSTLY_HANGUL]
    if text_col is not None:
        if text_col not in columns:
            raise RsError(f"--text-col {text_col!r} is not a column of the file. Columns: {columns}.{hint}")
        return _checked(TextColumnChoice(text_col, "--text-col", shares[text_col]), korean)
    if trained_on is not None and trained_on in columns:
        return _checked(TextColumnChoice(trained_on, "the column the model was trained on", shares[trained_on]), korean)
    named = columns_named(columns, TEXT_COLUMN_NAMES)
    named_korean = [c for c in named if c in korean]
    if len(named_korean) == 1:
        others = [c for c in named if c != named_korean[0]]
        reason = f"its name, and {_listed(others)} has little Korean text" if others else "its name"
        return TextColumnChoice(named_korean[0], reason, shares[named_korean[0]])
    if len(named_korean) > 1 or (len(named) > 1 and not korean):
        raise ambiguous_columns(named, "the review text", "--text-col")
    # Only a named column with next to no Hangul in its sampled texts gives way (an English `sentence` beside its
    # Korean translation); one with some Hangul, or with no sampled text, keeps its name's claim, with a warning.
    unnamed_korean = [c for c in korean if c not in named]
    if named and not all(shares[c] is not None and shares[c] < LITTLE_HANGUL for c in named):
        unnamed_korean = []
    if named and len(unnamed_korean) == 1:
        reason = f"the only column with Korean text, where {_listed(named)} has little"
        return TextColumnChoice(unnamed_korean[0], reason, shares[unnamed_korean[0]])
    if named and unnamed_korean:
        raise RsError(
            f"{_listed(named)} has little Korean text, and several columns have some: {unnamed_korean}. Pass "
            "--text-col with the one that holds the reviews."
        )
    if len(named) == 1:
        return _checked(TextColumnChoice(named[0], "its name", shares[named[0]]), korean)
    if len(columns) == 1:
        return _checked(TextColumnChoice(columns[0], "the only column", shares[columns[0]]), korean)
    suggestion = f" Columns with Korean text: {korean}." if korean else ""
    raise RsError(
        f"Cannot tell which column holds the review text. Columns: {columns}.{suggestion} Pass --text-col NAME.{hint}"
    )


def _checked(choice: TextColumnChoice, korean: list[str]) -> TextColumnChoice:
    """Warn when the chosen column has little Hangul: rs models learned Korean, so such a column is usually a
    mistake (an English column, ids, a translation), and its labels would be noise."""
    if choice.hangul_share is None or choice.hangul_share >= MOSTLY_HANGUL:
        return choice
    others = [c for c in korean if c != choice.name]
    fix = (
        f" Columns with Korean text: {others}; pass --text-col {others[0]} to use one."
        if others
        else " No column of the file has mostly Korean text."
    )
    choice.warnings.append(
        f"Only {choice.hangul_share:.0%} of the sampled texts in the text column '{choice.name}' contain Hangul; "
        f"rs models read Korean.{fix}"
    )
    return choice


def _listed(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _repeated_name_base(name: str, columns: list[str]) -> str:
    """ "review" for "review.1" when the file also has "review" (a repeated header made unique on reading)."""
    match = re.fullmatch(r"(.+)\.\d+", str(name))
    return match.group(1) if match and match.group(1) in columns else str(name)


def columns_named(columns: Sequence, names: Iterable[str]) -> list:
    """The columns whose name, stripped, lower-cased and in NFC (a macOS export's 리뷰 is NFD), is one of
    `names`, in the file's order; the copies of a repeated header (review.1 beside review) count as that name
    too."""
    known = set(names)
    texts = [unicodedata.normalize("NFC", str(column)) for column in columns]
    return [
        column
        for column, text in zip(columns, texts, strict=True)
        if _repeated_name_base(text, texts).strip().lower() in known
    ]


def find_named_column(columns: Sequence, names: Iterable[str], what: str, option: str) -> str | None:
    """The one column named as in `names` (`columns_named`), or None when no column is.

    The policy for every column rs finds by its name: several candidates are an error that lists them and names
    `option`, the option that picks one; rs never takes the first and goes on. (`choose_text_column` first lets the
    cells' Korean text decide between candidates; label and rating columns have no such tie-breaker.)"""
    named = columns_named(columns, names)
    if len(named) > 1:
        raise ambiguous_columns(named, what, option)
    return named[0] if named else None


def ambiguous_columns(named: list, what: str, option: str) -> RsError:
    return RsError(f"Several columns could hold {what}: {named}. Pass {option} with the one to use.")


def unique_names(header: list[str]) -> list[str]:
    """Column names made unique the way pandas does it (review, review.1)."""
    seen: dict[str, int] = {}
    names = []
    for name in header:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}.{count}")
    return names


def _column_names(table: pd.DataFrame | Sequence[str]) -> list[str]:
    return list(table.columns if isinstance(table, pd.DataFrame) else table)


def find_text_column(table: pd.DataFrame | Sequence[str], text_col: str | None = None, hint: str = "") -> str:
    """The review-text column's name, chosen by `choose_text_column` (by name, and by content when
    `table` is a DataFrame rather than its column names)."""
    sample = table if isinstance(table, pd.DataFrame) else None
    return choose_text_column(_column_names(table), sample, text_col, hint=hint).name


def unique_column_name(table: pd.DataFrame | Sequence[str], wanted: str) -> str:
    """`wanted`, or `wanted_rs`, `wanted_rs2`... so that an existing column is never overwritten. `table` may be
    a DataFrame or its column names (a TableSource's columns, before any chunk is read)."""
    columns = set(_column_names(table))
    if wanted not in columns:
        return wanted
    candidate, number = f"{wanted}_rs", 1
    while candidate in columns:
        number += 1
        candidate = f"{wanted}_rs{number}"
    return candidate
