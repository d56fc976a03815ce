"""Which column of a review file holds the review text: chosen by its name and by what it holds.

A name alone misleads: a file with an English `sentence` column beside the same sentences in Korean would be
trained on the English one. So the cells are looked at too (a sample from the top of the file): a column whose
texts mostly contain Hangul beats a well-named column with none, and a chosen column with little Hangul comes
with a warning that names the columns that have it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
_HANGUL = re.compile("[\uac00-\ud7a3\u3131-\u318e]")  # syllables and compatibility jamo (ㅋㅋ, ㅠㅠ)


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

    Two equally good candidates are an error rather than a guess. `hint` (a `TableSource.other_sheets_hint`)
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
    known = set(TEXT_COLUMN_NAMES)
    named = [c for c in columns if _repeated_name_base(c, columns).strip().lower() in known]
    named_korean = [c for c in named if c in korean]
    if len(named_korean) == 1:
        others = [c for c in named if c != named_korean[0]]
        reason = f"its name, and {_listed(others)} has little Korean text" if others else "its name"
        return TextColumnChoice(named_korean[0], reason, shares[named_korean[0]])
    if len(named_korean) > 1 or (len(named) > 1 and not korean):
        raise RsError(f"Several columns could hold the review text: {named}. Pass --text-col with the one to use.")
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
