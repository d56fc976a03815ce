"""Reading and writing review files: every cell kept as text, outputs written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
READ_ENCODINGS = ("utf-8-sig", "cp949")
# UTF-8 with a byte-order mark: Excel (Korean Windows included) then shows Hangul correctly.
CSV_WRITE_ENCODING = "utf-8-sig"
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl")


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def table_stem(path: str | Path) -> str:
    """The file name without its table extensions: reviews.csv.gz → reviews."""
    name = Path(path).name
    for suffix in (".gz", *SUPPORTED_SUFFIXES):
        name = name.removesuffix(suffix)
    return name


def read_table(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """Read a review file with every cell as a string ("" for empty), rows and columns exactly as stored."""
    path = Path(path)
    if not path.exists():
        raise RsError(f"No such file: {path}")
    if path.is_dir():
        raise RsError(f"{path} is a folder; pass a review file (.csv, .tsv, .txt, .jsonl).")
    suffix = _suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise RsError(f"Cannot read {path.name}: rs reads {', '.join(SUPPORTED_SUFFIXES)} files.")
    errors = []
    for candidate in (encoding,) if encoding else READ_ENCODINGS:
        try:
            return _read_with_encoding(path, suffix, candidate)
        except UnicodeDecodeError as error:
            errors.append(f"{candidate}: byte {error.start}")
        except pd.errors.ParserError as error:
            raise RsError(f"Cannot parse {path}: {error}") from None
        except pd.errors.EmptyDataError:
            raise RsError(f"{path} is empty.") from None
    raise RsError(f"Cannot decode {path} ({'; '.join(errors)}). Pass --encoding with the file's encoding.")


def _read_with_encoding(path: Path, suffix: str, encoding: str) -> pd.DataFrame:
    if suffix == ".jsonl":
        table = pd.read_json(path, lines=True, dtype=False, encoding=encoding)
        return table.astype(object).where(table.notna(), "").astype(str)
    if suffix == ".txt":
        with open(path, encoding=encoding, newline="") as handle:
            lines = handle.read().splitlines()
        if not _looks_tab_separated(lines):
            return pd.DataFrame({"text": lines}, dtype=str)
        # A tab-separated table saved as .txt (NSMC's ratings_train.txt: id, document, label). Such files
        # are one row per line with quotes as plain text, so split lines rather than parse CSV quoting.
        header, *rows = [line.split("\t") for line in lines if line]
        ragged = [number for number, row in enumerate(rows, start=2) if len(row) != len(header)]
        if ragged:
            raise RsError(
                f"{path} looks tab-separated, but line {ragged[0]} has {len(rows[ragged[0] - 2])} "
                f"fields where the header has {len(header)}."
            )
        return pd.DataFrame(rows, columns=header, dtype=str)
    return pd.read_csv(
        path,
        sep="\t" if suffix == ".tsv" else ",",
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding=encoding,
    )


def _looks_tab_separated(lines: list[str]) -> bool:
    """A .txt whose first lines all have the same number (≥ 1) of tabs is a table, not one review per line."""
    head = [line for line in lines[:200] if line]
    tabs = {line.count("\t") for line in head}
    return len(head) >= 2 and len(tabs) == 1 and tabs != {0}


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table atomically: a temporary file beside the target, renamed over it when complete."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise RsError(f"Cannot write {path.name}: rs writes {', '.join(SUPPORTED_SUFFIXES)} files.")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        if suffix == ".jsonl":
            table.to_json(temporary, orient="records", lines=True, force_ascii=False)
        elif suffix == ".txt":
            raise RsError("A .txt output would lose the added columns; write .csv, .tsv or .jsonl instead.")
        else:
            table.to_csv(temporary, sep="\t" if suffix == ".tsv" else ",", index=False, encoding=CSV_WRITE_ENCODING)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def find_text_column(table: pd.DataFrame, text_col: str | None = None) -> str:
    """The review-text column: `text_col` if given, else the first known name (review, text, 리뷰, 내용...)."""
    columns = list(table.columns)
    if text_col is not None:
        if text_col not in table.columns:
            raise RsError(f"--text-col {text_col!r} is not a column of the file. Columns: {columns}.")
        return text_col
    by_lower = {str(c).strip().lower(): c for c in columns}
    for name in TEXT_COLUMN_NAMES:
        if name in by_lower:
            return by_lower[name]
    if len(columns) == 1:
        return columns[0]
    raise RsError(f"Cannot tell which column holds the review text. Columns: {columns}. Pass --text-col NAME.")


def unique_column_name(table: pd.DataFrame, wanted: str) -> str:
    """`wanted`, or `wanted_rs`, `wanted_rs2`... so that an existing column is never overwritten."""
    if wanted not in table.columns:
        return wanted
    candidate, number = f"{wanted}_rs", 1
    while candidate in table.columns:
        number += 1
        candidate = f"{wanted}_rs{number}"
    return candidate


def same_file(first: str | Path, second: str | Path) -> bool:
    first, second = Path(first), Path(second)
    if first.exists() and second.exists():
        return os.path.samefile(first, second)
    return first.resolve() == second.resolve()
