"""Writing tables atomically, chunk by chunk (`TableWriter`, `write_table`), and checking an output path first."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import pandas as pd

from review_sentiment.errors import RsError
from review_sentiment.io.cells import SURROGATE, XML_ILLEGAL, TypedCell, escape_formula, ooxml_escape
from review_sentiment.io.files import AtomicPath
from review_sentiment.io.formats import (
    BINARY_SUFFIXES,
    EXCEL_MAX_CELL,
    EXCEL_MAX_COLUMNS,
    EXCEL_MAX_ROWS,
    FORMULA_SAFE_SUFFIXES,
    WRITE_SUFFIXES,
    table_suffix,
)

if TYPE_CHECKING:
    from review_sentiment.io.reading import TableSource

# UTF-8 with a byte-order mark: Excel (Korean Windows included) then shows Hangul correctly.
CSV_WRITE_ENCODING = "utf-8-sig"


def check_output_path(path: str | Path, rows: int | None = None) -> Path:
    """Refuse an output path rs cannot write, before any work is done; `rows`, when known, is checked against
    what an .xlsx sheet holds."""
    path = Path(path)
    if path.is_dir():
        raise RsError(f"{path} is a folder; pass a file name such as {path / 'labeled.csv'}.")
    above = next((parent for parent in path.parents if parent.exists()), None)
    if above is not None and not above.is_dir():
        raise RsError(f"Cannot write {path}: {above} is a file, not a folder.")
    suffix = table_suffix(path)
    if suffix not in WRITE_SUFFIXES:
        raise RsError(
            f"Cannot write {path.name}: rs writes {', '.join(WRITE_SUFFIXES)} files (chosen by the extension)."
        )
    if suffix in BINARY_SUFFIXES and path.suffix.lower() == ".gz":
        raise RsError(f"Cannot write {path.name}: a {suffix} file is compressed already; drop the .gz.")
    if suffix == ".xlsx" and rows is not None and rows + 1 > EXCEL_MAX_ROWS:
        raise _too_many_rows(path, rows)
    return path


def _too_many_rows(path: Path, rows: int) -> RsError:
    return RsError(
        f"Cannot write {path.name}: {rows:,} rows do not fit in an Excel sheet ({EXCEL_MAX_ROWS - 1:,} at most); "
        "write .csv or .parquet instead."
    )


def write_table(table: pd.DataFrame, path: str | Path, escape_formulas: bool = True) -> Path:
    """Write a table atomically: a temporary file beside the target, renamed over it when complete."""
    with TableWriter(path, escape_formulas=escape_formulas) as writer:
        writer.write(table)
    return writer.path


class TableWriter:
    """Write a table chunk by chunk, atomically: `with TableWriter(path) as writer: writer.write(chunk)`.

    The rows go to a temporary file beside `path`, renamed over it when the `with` block ends normally; on any
    exception (Ctrl-C included) the temporary file is removed and `path` is left as it was. CSV/TSV/XLSX get the
    header once, from the first chunk or, when no rows come, from `columns`.

    Text is changed only where the format cannot hold it, and counted for the caller to report:
    - `replaced_characters`: lone surrogates (any format) become U+FFFD; in .xlsx, control characters that XML
      forbids are removed.
    - `escaped_cells`: with `escape_formulas`, text cells and column names that a spreadsheet would run as formulas
      (`escape_formula`): in .csv/.tsv they get a leading "'" (`TableSource(unescape_formulas=True)` undoes it); in
      .xlsx they keep their text and get Excel's quotePrefix style, as when one types '=1+1 in Excel. .jsonl and
      .parquet keep text exactly.
    - `clipped_cells`: .xlsx text cells cut to Excel's 32,767 characters.
    .xlsx: numeric columns are written as numbers (NaN as an empty cell), booleans as TRUE/FALSE, text as text
    (never as a formula), a `TypedCell` as the value it was read from (a number, a date with a date format);
    more than 1,048,575 rows is an RsError. .parquet: the first chunk fixes the schema (bool, int64, float64,
    timestamp, else string; a TypedCell column is text, as a later chunk may hold text in it) and each chunk is a
    row group; NaN and None are null.
    """

    def __init__(
        self,
        path: str | Path,
        columns: Sequence[str] | None = None,
        escape_formulas: bool = True,
        temporary_dir: Path | None = None,
    ) -> None:
        self.path = check_output_path(path)
        # predict keeps its temporary file in its resume folder, so that a kill -9 leaves nothing else behind;
        # it must be on the target's file system for the final rename.
        self._temporary_dir = temporary_dir or self.path.parent
        self._suffix = table_suffix(self.path)
        self._columns = None if columns is None else list(columns)
        self._escape = escape_formulas and self._suffix in FORMULA_SAFE_SUFFIXES
        self.escaped_cells = self.clipped_cells = self.replaced_characters = 0
        self._output: AtomicPath | None = None  # the temporary file, inside the with block
        self._temporary: Path | None = None  # its path
        self._handle: TextIO | None = None
        self._workbook: Any = None  # .xlsx
        self._sheet: Any = None
        self._parquet: Any = None  # .parquet: its writer, made by the first chunk
        self._schema: Any = None
        self._names: dict[tuple, list] = {}  # column names as written, by the chunk's column names
        self._rows = 0  # rows written to an .xlsx sheet, the header included
        self._started = False  # the header has been written

    def __enter__(self) -> TableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._output = AtomicPath(self.path, folder=self._temporary_dir, suffix=".part")
        self._temporary = temporary = self._output.path
        try:
            if self._suffix == ".xlsx":
                from openpyxl import Workbook

                # write_only: rows stream to disk (inline strings, no shared-string table in memory)
                self._workbook = Workbook(write_only=True)
                self._sheet = self._workbook.create_sheet("Sheet1")
            elif self._suffix != ".parquet":
                # JSON Lines is UTF-8 by definition; CSV gets a BOM so that Excel shows Hangul.
                encoding = "utf-8" if self._suffix == ".jsonl" else CSV_WRITE_ENCODING
                if self.path.suffix.lower() == ".gz":
                    self._handle = gzip.open(temporary, "wt", encoding=encoding, newline="")
                else:
                    self._handle = open(temporary, "w", encoding=encoding, newline="")
        except BaseException:
            self._output.discard()
            raise
        return self

    def write(self, chunk: pd.DataFrame) -> None:
        """Append the rows of `chunk` (its index is not written)."""
        if self._temporary is None:
            raise RuntimeError("TableWriter.write is only available inside its with block")
        if self._suffix == ".jsonl":
            if len(chunk):  # pandas writes a blank line for a frame without rows
                self._cleaned(chunk).to_json(self._handle, orient="records", lines=True, force_ascii=False)
            return
        if self._columns is None:
            self._columns = list(chunk.columns)
        elif list(chunk.columns) != self._columns:
            # A table has one header: other columns would land under the wrong names.
            raise ValueError(f"chunk columns {list(chunk.columns)} differ from the table's {self._columns}")
        if self._suffix == ".xlsx":
            self._write_xlsx(chunk)
        elif self._suffix == ".parquet":
            self._write_parquet(chunk)
        else:
            sep = "\t" if self._suffix == ".tsv" else ","
            # CRLF line ends, as RFC 4180 and Excel have them: the csv module then quotes a field holding a lone
            # "\r" too (with "\n" ends it does not, and the field would be read back as two rows).
            self._cleaned(chunk).to_csv(
                self._handle, sep=sep, index=False, header=not self._started, lineterminator="\r\n"
            )
        self._started = True

    def _text(self, text: str) -> str:
        """A text cell or column name as this format can hold it, the changes counted; a formula escaped with "'"
        except in .xlsx, where `_xlsx_value` marks the cell instead."""
        text, replaced = SURROGATE.subn("\ufffd", text)
        if self._suffix == ".xlsx":
            text, removed = XML_ILLEGAL.subn("", text)
            replaced += removed
        self.replaced_characters += replaced
        if self._escape and self._suffix != ".xlsx":
            escaped = escape_formula(text)
            if escaped is not text:
                self.escaped_cells += 1
                text = escaped
        if self._suffix == ".xlsx" and len(text) > EXCEL_MAX_CELL // 2:
            # Excel counts UTF-16 code units: an emoji takes two. errors="ignore" drops a pair cut in half.
            encoded = text.encode("utf-16-le")
            if len(encoded) > 2 * EXCEL_MAX_CELL:
                text = encoded[: 2 * EXCEL_MAX_CELL].decode("utf-16-le", errors="ignore")
                self.clipped_cells += 1
        return text

    def _column_names(self, chunk: pd.DataFrame) -> list:
        """The chunk's column names as written; each set of names is cleaned (and counted) once."""
        key = tuple(chunk.columns)
        if key not in self._names:
            self._names[key] = [self._text(name) if isinstance(name, str) else name for name in key]
        return self._names[key]

    def _cleaned(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """`chunk` with its text cells and names passed through `_text`: `chunk` itself when nothing changes."""
        names = self._column_names(chunk)
        columns, changed = [], names != list(chunk.columns)
        for position in range(chunk.shape[1]):
            column = chunk.iloc[:, position]
            if _is_text_column(column):
                values = column.tolist()
                cleaned = [self._text(value) if isinstance(value, str) else value for value in values]
                if any(new != old for new, old in zip(cleaned, values, strict=True)):
                    changed = True
                    columns.append(np.array(cleaned, dtype=object))
                    continue
            columns.append(column.array)
        if not changed:
            return chunk
        # Arrays, not Series: a Series would be aligned on the index, which may repeat.
        cleaned = pd.DataFrame(dict(enumerate(columns)), index=chunk.index)
        cleaned.columns = names
        return cleaned

    def _write_xlsx(self, chunk: pd.DataFrame) -> None:
        if not self._started:
            if chunk.shape[1] > EXCEL_MAX_COLUMNS:
                raise RsError(
                    f"Cannot write {self.path.name}: {chunk.shape[1]:,} columns do not fit in an Excel sheet "
                    f"({EXCEL_MAX_COLUMNS:,} at most); write .csv or .parquet instead."
                )
            self._sheet.append([self._xlsx_value(str(name)) for name in chunk.columns])  # names as text
            self._rows = 1
        if self._rows + len(chunk) > EXCEL_MAX_ROWS:
            raise _too_many_rows(self.path, self._rows - 1 + len(chunk))
        columns = [
            [self._xlsx_value(value) for value in chunk.iloc[:, position].tolist()]
            for position in range(chunk.shape[1])
        ]
        for row in zip(*columns, strict=True):
            self._sheet.append(row)
        self._rows += len(chunk)

    def _xlsx_value(self, value: Any) -> Any:
        """What to append for one cell: None for an empty one, a number, a bool, a date or a text cell."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ERROR_CODES

        if isinstance(value, TypedCell):
            # An input's number, date or bool cell, read as text: written as it was, not as its text.
            typed = value.value
            if isinstance(typed, dt.datetime) and typed.time() == dt.time():
                # Excel has no date without a time: a date cell reads as midnight, and openpyxl's datetime format
                # would show it as 2024-01-02 0:00:00.
                cell = WriteOnlyCell(self._sheet, typed)
                cell.number_format = "yyyy-mm-dd"
                return cell
            return typed
        if _missing(value):
            return None
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            if np.isfinite(value):
                return float(value)
            value = str(float(value))  # Excel has no infinity: inf, -inf as text
        text = self._text(value if isinstance(value, str) else str(value))
        if not text:
            return None
        quoted = self._escape and escape_formula(text) is not text
        if quoted:
            self.escaped_cells += 1
        text = ooxml_escape(text)
        if quoted or text.startswith("=") or text in ERROR_CODES:
            # openpyxl would store these as a formula or an error value; they are text
            cell = WriteOnlyCell(self._sheet, text)
            cell.data_type = "s"
            if quoted:
                # Excel's own escape, set when one types '=1+1: the cell shows its text exactly (a "'" added to
                # the text would show) and stays text when edited.
                cell.quotePrefix = True
            return cell
        return text

    def _write_parquet(self, chunk: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._schema is None:
            names = [str(name) for name in self._column_names(chunk)]
            types = [_arrow_type(chunk.iloc[:, position]) for position in range(chunk.shape[1])]
            self._schema = pa.schema([pa.field(name, kind) for name, kind in zip(names, types, strict=True)])
            self._parquet = pq.ParquetWriter(self._temporary, self._schema)
        if not len(chunk):
            return
        arrays = []
        for position, field in enumerate(self._schema):
            column = chunk.iloc[:, position]
            if pa.types.is_string(field.type):
                texts = [
                    None if _missing(value) else self._text(value if isinstance(value, str) else str(value))
                    for value in column.tolist()
                ]
                arrays.append(pa.array(texts, type=pa.string()))
                continue
            try:
                arrays.append(pa.array(column, type=field.type, from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
                raise ValueError(
                    f"column {field.name!r} does not fit the type {field.type} the first chunk gave it: {error}"
                ) from None
        self._parquet.write_table(pa.Table.from_arrays(arrays, schema=self._schema))  # one row group

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        assert self._temporary is not None, "TableWriter used outside a with block"
        try:
            try:
                if kind is None and not self._started:
                    self.write(pd.DataFrame(columns=self._columns or []))  # the header of a table without rows
                if kind is None and self._workbook is not None:
                    self._workbook.save(self._temporary)
                    self._workbook = None
            finally:
                self._close()
        except BaseException:
            self._output.discard()
            raise
        finally:
            self._temporary = None
        self._output.__exit__(kind, error, traceback)  # renamed into place, or removed after an exception

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._workbook is not None:  # not saved: a failure
            # openpyxl streams a write-only sheet to a file of its own in the system's temporary folder
            with suppress(Exception):
                self._sheet.close()
                self._sheet._writer.cleanup()
            self._workbook = None


def _missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, (float, np.floating)) and value != value)
    )


def _is_text_column(column: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(column.dtype)
        or pd.api.types.is_bool_dtype(column.dtype)
        or pd.api.types.is_datetime64_any_dtype(column.dtype)
    )


def _arrow_type(column: pd.Series) -> Any:
    """The Parquet column type for a pandas column: bool, int64, float64 and timestamps as they are, anything
    else (str, object, category) as text."""
    import pyarrow as pa

    if pd.api.types.is_bool_dtype(column.dtype):
        return pa.bool_()
    if pd.api.types.is_integer_dtype(column.dtype):
        return pa.uint64() if pd.api.types.is_unsigned_integer_dtype(column.dtype) else pa.int64()
    if pd.api.types.is_float_dtype(column.dtype):
        return pa.float64()
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return pa.Array.from_pandas(column.iloc[:0]).type
    return pa.string()


def output_changes(source: TableSource | None, writer: TableWriter) -> dict[str, int]:
    """What reading and writing had to change, for the command to report (only the non-zero counts)."""
    escaped = (
        "formula-like cells escaped with Excel's quote prefix, their text unchanged (--no-escape-formulas leaves it "
        "off)"
        if writer.path.suffix.lower() == ".xlsx"
        else "formula-like cells escaped with a leading ' (--no-escape-formulas keeps them as they are)"
    )
    counts = {
        escaped: writer.escaped_cells,
        "cells cut to Excel's 32,767 characters (write .csv or .parquet to keep them whole)": writer.clipped_cells,
        "characters the output format cannot hold replaced or removed": writer.replaced_characters,
        "row(s) above the sheet's header skipped as its title (one filled cell above the header row)": (
            source.title_rows if source else 0
        ),
        "formula cell(s) without a calculated value read as their formula text (a file written by a script, never "
        "opened in Excel)": source.uncalculated_formulas if source else 0,
        "invalid characters (lone surrogates) in the input replaced by U+FFFD": (
            source.replaced_characters if source else 0
        ),
    }
    return {what: count for what, count in counts.items() if count}
