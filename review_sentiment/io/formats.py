"""Table formats rs reads and writes, told apart by the file's extension (a trailing .gz aside)."""

from __future__ import annotations

from pathlib import Path

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".xlsx", ".parquet")
WRITE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".xlsx", ".parquet")  # .txt would lose the added columns
BINARY_SUFFIXES = (".xlsx", ".parquet")  # compressed already: never .gz, and no text encoding
# Formats whose text a spreadsheet opens as cells, so formula-like text is escaped when written: a leading "'" in
# text files (undone on reading with unescape_formulas), Excel's quotePrefix cell style in .xlsx, which keeps the text
# exact. .jsonl and .parquet keep their text exactly.
ESCAPED_SUFFIXES = (".csv", ".tsv", ".txt")
FORMULA_SAFE_SUFFIXES = (*ESCAPED_SUFFIXES, ".xlsx")
EXCEL_MAX_ROWS = 1_048_576  # rows of an Excel sheet, the header included
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_CELL = 32_767  # characters in one cell, counted in UTF-16 code units as Excel does


def table_suffix(path: Path) -> str:
    """The format's suffix, lower-cased, a trailing .gz aside: reviews.CSV.gz → .csv ("" for none)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def table_stem(path: str | Path) -> str:
    """The file name without its table extensions: reviews.csv.gz → reviews."""
    name = Path(path).name
    for suffix in (".gz", *SUPPORTED_SUFFIXES):
        if name.lower().endswith(suffix):  # REVIEWS.CSV too
            name = name[: -len(suffix)]
    return name
