"""Reading review files: format and encoding detection, CSV/TSV/TXT/JSONL/XLSX/Parquet rows as text (`TableSource`,
`read_table`)."""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import sys
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import closing
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from review_sentiment.errors import RsError
from review_sentiment.io.cells import (
    JSON_SURROGATE_ESCAPE,
    PLAIN_NUMBER,
    TypedCell,
    arrow_texts,
    excel_cell,
    json_cell,
    unescape_formula,
    without_surrogates,
)
from review_sentiment.io.columns import TEXT_COLUMN_NAMES, unique_names
from review_sentiment.io.formats import BINARY_SUFFIXES, ESCAPED_SUFFIXES, SUPPORTED_SUFFIXES, table_stem, table_suffix

READ_ENCODINGS = ("utf-8-sig", "cp949")
_HANGUL_SYLLABLES = re.compile("[\uac00-\ud7a3]")
# Python's euc-kr codec writes a syllable outside KS X 1001 (됬, 닼, 똠) as the Hangul filler and three jamo, 8 bytes
# that cp949 decodes as 'ㅤㄷㅚㅆ'.
EUC_KR_FILLER = b"\xa4\xd4"
BLOCK_SIZE = 1 << 20  # bytes decoded at a time while checking the encoding
# In a sheet's XML, a formula followed by no value (<v/>, <v></v>, or none before </c>): a cell Excel never calculated,
# or one Excel calculated to "". XML writes a "<" in text as &lt;, so no cell's text can match.
_FORMULA_WITHOUT_VALUE = re.compile(
    rb"(?:</(?:[\w.-]+:)?f>|<(?:[\w.-]+:)?f(?:\s[^<>]*)?/>)\s*(?:<(?:[\w.-]+:)?v\s*/>|<(?:[\w.-]+:)?v>\s*</|</)"
)


def read_table(
    path: str | Path, encoding: str | None = None, sheet: str | int | None = None, unescape_formulas: bool = False
) -> pd.DataFrame:
    """Read a review file with every cell as a string ("" for empty), rows and columns exactly as stored.

    CSV/TSV: the delimiter is taken from the header when a .csv uses tabs or semicolons; rows with fewer
    fields than the header are padded with "", rows with more non-empty fields are an error (never shifted).
    .xlsx and .parquet: see `TableSource` for how their values become text.
    """
    source = TableSource(path, encoding, sheet=sheet, unescape_formulas=unescape_formulas)
    with closing(source.chunks(max(source.rows, 1))) as chunks:
        return next(chunks)


class TableSource:
    """A review file opened for reading in chunks of rows, with `read_table`'s rules.

    The constructor streams through the file to pick the encoding, the format, the columns and the number of
    rows, and raises RsError for anything `read_table` would reject, so a long job fails before it starts.
    Memory grows with the chunk size, not with the file (a .jsonl's set of keys aside).

    .xlsx: one sheet (`sheet`: its name, hidden sheets included, or else a 1-based number counting only the visible
    sheets, as Excel's tabs show them; the first visible sheet by default), values as Excel last calculated them (a
    formula's cached value). A formula never calculated (no cached value: a workbook written by pandas or openpyxl,
    never opened in Excel) reads as its formula text, "=" included, and is counted in `uncalculated_formulas`: such
    a script writes a review typed as "=정말 최고예요" as a formula, and the review would otherwise vanish. The first
    non-empty row is the header; empty header cells and cells beyond the header are named column_N (N the 1-based
    column), empty rows are skipped. Values become text by `excel_cell`: TRUE/FALSE, 5 for 5.0,
    2024-01-02 00:00:00 for a date.
    .parquet: values become text by `arrow_cell`, the rule .jsonl values follow: JSON for numbers, true/false,
    lists and structs (5, 5.0, true, ["a"]), null as "", ISO 8601 for dates and times.
    .xlsx numbers, dates, times and booleans, and .parquet values Excel can hold as they are (see `_excel_holds`),
    are `TypedCell`s: their text everywhere, and their value for an .xlsx output, which so keeps their cell type.
    A column holding one has the object dtype, the others pandas' str dtype.

    `unescape_formulas`: undo `escape_formula` on every cell and column name, to read back a .csv/.tsv that
    `TableWriter` wrote; .xlsx (escaped with a cell style, the text unchanged), .jsonl and .parquet are left alone.
    `encoding` applies to text files only.
    """

    path: Path
    encoding: str  # the codec the text is read with ("utf-8" for .xlsx and .parquet)
    columns: list[str]
    rows: int  # data rows the chunks yield, for progress bars
    sheet: str | None  # the .xlsx sheet read
    # For an error about the columns ("no review text column"): the workbook's other sheets, e.g. " It is sheet '표지'
    # of report.xlsx; its other sheets: '리뷰'. Pass --sheet NAME."; "" for a single sheet or another format.
    other_sheets_hint: str
    replaced_characters: int  # lone surrogates (from a .jsonl's \ud800 escapes) replaced by U+FFFD
    title_rows: int  # .xlsx: rows above the header skipped as a title (one filled cell, a wider row below)
    uncalculated_formulas: int  # .xlsx: formula cells without a cached value, read as their formula text

    def __init__(
        self,
        path: str | Path,
        encoding: str | None = None,
        sheet: str | int | None = None,
        unescape_formulas: bool = False,
    ) -> None:
        path = Path(path)
        if not path.exists():
            raise RsError(f"No such file: {path}")
        if path.is_dir():
            raise RsError(f"{path} is a folder; pass a review file ({', '.join(SUPPORTED_SUFFIXES)}).")
        suffix = table_suffix(path)
        if suffix == ".xls":
            raise RsError(f"Cannot read {path.name}: old Excel .xls files are not supported; save it as .xlsx or .csv.")
        if suffix not in SUPPORTED_SUFFIXES:
            raise RsError(f"Cannot read {path.name}: rs reads {', '.join(SUPPORTED_SUFFIXES)} files.")
        self.path, self._suffix, self._gzip = path, suffix, path.suffix.lower() == ".gz"
        if self._gzip and suffix in BINARY_SUFFIXES:
            raise RsError(f"Cannot read {path.name}: a {suffix} file is compressed already; unpack the .gz first.")
        if sheet is not None and suffix != ".xlsx":
            raise RsError(f"{path.name} has no sheets: --sheet applies to .xlsx files only.")
        self._unescape = unescape_formulas and suffix in ESCAPED_SUFFIXES
        self.sheet, self.replaced_characters, self.other_sheets_hint, self.title_rows = None, 0, "", 0
        self.uncalculated_formulas = 0
        if suffix in BINARY_SUFFIXES:
            self.encoding = "utf-8"  # both store text as UTF-8
            if suffix == ".xlsx":
                self._scan_xlsx(sheet)
            else:
                self._scan_parquet()
            return
        self.encoding = self._detect_encoding(encoding)
        self._delimiter: str | None = None  # None: one text per line (.txt) or JSON lines
        self._quoting = csv.QUOTE_MINIMAL
        if suffix == ".jsonl":
            keys: dict[str, None] = {}  # a dict keeps the order in which keys first appear
            self.rows = 0
            for record, replaced in self._jsonl_records():
                keys.update(dict.fromkeys(record))
                self.rows += 1
                self.replaced_characters += replaced
            self._keys = list(keys)
            self.columns = self._names(self._keys)
            return
        head = [line.rstrip("\n") for line in islice(self._lines(newline=None), 200)]
        if suffix == ".txt" and not _looks_tab_separated(head):
            self.columns = self._names(["text"])
            self.rows = sum(1 for _ in self._lines(newline=None))
            return
        if suffix == ".txt":
            # A tab-separated table saved as .txt (NSMC's ratings_train.txt: id, document, label): one row per
            # line, and quotes are plain text.
            self._delimiter, self._quoting = "\t", csv.QUOTE_NONE
        else:
            self._delimiter = "\t" if suffix == ".tsv" else _csv_delimiter(head[0])
        rows = self._delimited()
        self.columns = self._names(next(rows))
        self.rows = sum(1 for _ in rows)

    def chunks(self, rows_per_chunk: int) -> Iterator[pd.DataFrame]:
        """DataFrames of at most `rows_per_chunk` rows, every cell a str, numbered on across chunks so that
        concatenating them gives the whole table; a file without rows gives one empty DataFrame."""
        if rows_per_chunk < 1:
            raise ValueError(f"rows_per_chunk must be at least 1, got {rows_per_chunk}")
        start, batch = 0, []
        for cells in self._cells(rows_per_chunk):
            batch.append([unescape_formula(cell) for cell in cells] if self._unescape else cells)
            if len(batch) == rows_per_chunk:
                yield self._frame(batch, start)
                start, batch = start + len(batch), []
        if batch or start == 0:
            yield self._frame(batch, start)

    def _frame(self, batch: list[list[str]], start: int) -> pd.DataFrame:
        index = pd.RangeIndex(start, start + len(batch))
        typed = self._typed_columns(batch) if self._suffix in BINARY_SUFFIXES else set()
        if not typed:
            return pd.DataFrame(batch, columns=self.columns, index=index, dtype=str)
        # pandas' str dtype would turn a TypedCell into a plain str, losing its value: such columns stay objects.
        frame = pd.DataFrame(batch, columns=self.columns, index=index, dtype=object)
        return frame.astype({name: str for position, name in enumerate(self.columns) if position not in typed})

    def _typed_columns(self, batch: list[list[str]]) -> set[int]:
        """The positions of the columns that hold a `TypedCell` in `batch`."""
        return {
            position for position in range(len(self.columns)) if any(type(row[position]) is TypedCell for row in batch)
        }

    def _names(self, header: list[str]) -> list[str]:
        return unique_names([unescape_formula(name) for name in header] if self._unescape else header)

    def _cells(self, rows_per_chunk: int) -> Iterator[list[str]]:
        """Each data row as a list of cells in the order of `columns`."""
        if self._suffix == ".xlsx":
            rows = self._xlsx_rows()
            for _ in range(self.title_rows + 1):  # a title above the header, and the header
                next(rows)
            for row in rows:
                yield row + [""] * (len(self.columns) - len(row))
        elif self._suffix == ".parquet":
            yield from self._parquet_rows(rows_per_chunk)
        elif self._suffix == ".jsonl":
            for record, _ in self._jsonl_records():
                yield [json_cell(record.get(key)) for key in self._keys]
        elif self._delimiter is None:
            for line in self._lines(newline=None):
                yield [line.rstrip("\n")]
        else:
            rows = self._delimited()
            next(rows)  # the header
            yield from rows

    def _scan_xlsx(self, sheet: str | int | None) -> None:
        # One opening for the sheet's name and the scan: opening parses every sheet when it lacks a stored size.
        workbook, formulas = self._open_workbook(), None
        try:
            self._sheet_index = self._find_sheet(workbook, sheet)
            self.sheet = workbook.worksheets[self._sheet_index].title
            # The formulas' text takes a second reading of the sheet, done only where the sheet's XML shows a formula
            # without a value: a workbook Excel saved holds every formula's value, most workbooks hold no formula.
            self._reads_formula_texts = _has_formula_without_value(workbook.worksheets[self._sheet_index])
            if self._reads_formula_texts:
                formulas = self._open_workbook(data_only=False)
            rows = self._sheet_rows(workbook, formulas)
            others = _sheet_list(w for w in workbook.worksheets if w.title != self.sheet)
            # The first sheet of a report is often a title page; the reviews are on another sheet.
            hint = f" Its other sheets: {others}; pass --sheet NAME." if others else ""
            if others:
                self.other_sheets_hint = (
                    f" It is sheet {self.sheet!r} of {self.path.name}; its other sheets: {others}. Pass --sheet NAME."
                )
            head = list(islice(rows, TITLE_ROWS_LOOKAHEAD))
            if not head:
                raise RsError(f"{self.path}: sheet {self.sheet!r} is empty.{hint}")
            self.title_rows = _title_rows([cells for cells, _ in head])
            header = [str(name) for name in head[self.title_rows][0]]  # names are plain text, never a TypedCell
            width, self.rows = len(header), 0
            # the header's formula texts count (they name columns); those of a title, which is skipped, do not
            self.uncalculated_formulas = head[self.title_rows][1]
            rows = chain(head[self.title_rows + 1 :], rows)
            for cells, formula_texts in rows:  # read_only dimensions can be wrong: the rows give width and count
                width, self.rows = max(width, len(cells)), self.rows + 1
                self.uncalculated_formulas += formula_texts
            if not self.rows and sheet is None and others:
                raise RsError(f"{self.path}: the first sheet, {self.sheet!r}, has no rows below its header.{hint}")
        finally:
            workbook.close()
            if formulas is not None:
                formulas.close()
        header += [""] * (width - len(header))
        self.columns = unique_names([name or f"column_{number}" for number, name in enumerate(header, start=1)])

    def _open_workbook(self, data_only: bool = True) -> Any:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        with open(self.path, "rb") as handle:
            magic = handle.read(8)
        if magic.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE2 container: Excel 97-2003, or an encrypted .xlsx
            raise RsError(
                f"{self.path.name} is an old .xls or a password-protected workbook; save it from Excel as .xlsx "
                "without a password, or as .csv."
            )
        try:
            with warnings.catch_warnings():
                # openpyxl warns about what it drops (data validation, unknown extensions); values are unaffected
                warnings.simplefilter("ignore")
                # data_only: a formula cell gives the value Excel last calculated (None if none); without it, the
                # formula's text ("=1+1") and never a value
                return load_workbook(self.path, read_only=True, data_only=data_only)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, SyntaxError) as error:
            raise RsError(
                f"{self.path.name} is not a valid .xlsx workbook ({error or type(error).__name__}); save it from Excel "
                "as .xlsx or .csv."
            ) from None

    def _find_sheet(self, workbook: Any, sheet: str | int | None) -> int:
        """The position of the sheet `sheet` names (any sheet, hidden ones included), or else numbers from 1
        among the visible sheets; the first visible sheet when `sheet` is None."""
        worksheets = workbook.worksheets
        names = [worksheet.title for worksheet in worksheets]
        if not names:
            raise RsError(f"{self.path.name} has no worksheets; save it from Excel as .xlsx or .csv.")
        # A hidden sheet has no tab in Excel: counting it would make --sheet 2 pick a sheet the user never sees.
        visible = [position for position, worksheet in enumerate(worksheets) if _visible(worksheet)] or [0]
        if sheet is None:
            return visible[0]
        wanted = str(sheet)
        if wanted in names:
            return names.index(wanted)
        folded = [name.casefold() for name in names]  # Excel's sheet names are case-insensitive
        if wanted.casefold() in folded:
            return folded.index(wanted.casefold())
        if re.fullmatch(r"\s*[0-9]+\s*", wanted) and 1 <= int(wanted) <= len(visible):
            return visible[int(wanted) - 1]
        uncounted = " (hidden sheets are not counted)" if len(visible) < len(names) else ""
        raise RsError(
            f"{self.path.name} has no sheet {wanted!r}. Its sheets: {_sheet_list(worksheets)}; pass --sheet with "
            f"one of those names or a number from 1 to {len(visible)}{uncounted}."
        )

    def _xlsx_rows(self) -> Iterator[list[str]]:
        workbook = self._open_workbook()
        try:
            formulas = self._open_workbook(data_only=False) if self._reads_formula_texts else None
            try:
                for cells, _ in self._sheet_rows(workbook, formulas):
                    yield cells
            finally:
                if formulas is not None:
                    formulas.close()
        finally:
            workbook.close()

    def _sheet_rows(self, workbook: Any, formulas: Any = None) -> Iterator[tuple[list[str], int]]:
        """The sheet's non-empty rows as text, trailing empty cells dropped, the header first; each with the number
        of its cells read as their formula text. `formulas`: the workbook opened again without data_only, read in
        step with `workbook` for the text of the formulas that have no cached value; None to read values only."""
        worksheet = workbook.worksheets[self._sheet_index]
        worksheet.reset_dimensions()  # the stored dimensions can be wrong, and iter_rows would cut rows to them
        try:
            if formulas is None:
                for values in worksheet.iter_rows(values_only=True):
                    cells = [excel_cell(value) for value in values]
                    while cells and not cells[-1]:
                        cells.pop()
                    if cells:
                        yield cells, 0
                return
            formula_sheet = formulas.worksheets[self._sheet_index]
            formula_sheet.reset_dimensions()
            # Both parse the same XML, so their rows and cells match one to one. Cells, not values, from `workbook`:
            # a cell's data type tells a formula Excel calculated to "" (t="str", an empty <v>) from one never
            # calculated (a number cell without a value).
            rows = zip(worksheet.iter_rows(), formula_sheet.iter_rows(values_only=True), strict=True)
            for cached, written in rows:
                cells, formula_texts = [], 0
                for cell, formula in zip(cached, written, strict=True):
                    text = _formula_text(formula) if cell.value is None and cell.data_type == "n" else None
                    cells.append(excel_cell(cell.value) if text is None else text)
                    formula_texts += text is not None
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    yield cells, formula_texts
        except (zipfile.BadZipFile, zlib.error, KeyError, OSError, ValueError, SyntaxError, EOFError) as error:
            raise RsError(
                f"{self.path.name}: sheet {self.sheet!r} cannot be read ({error or type(error).__name__}); save it "
                "from Excel as .xlsx or .csv."
            ) from None

    def _open_parquet(self) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError, ValueError) as error:
            raise RsError(f"{self.path.name} is not a valid Parquet file ({error}).") from None

    def _scan_parquet(self) -> None:
        with self._open_parquet() as parquet:
            self.columns = self._names([str(name) for name in parquet.schema_arrow.names])
            self.rows = parquet.metadata.num_rows

    def _parquet_rows(self, rows_per_chunk: int) -> Iterator[list[str]]:
        import pyarrow as pa

        with self._open_parquet() as parquet:
            try:
                # by column position: duplicate names stay apart
                for batch in parquet.iter_batches(batch_size=rows_per_chunk):
                    yield from zip(*(arrow_texts(column) for column in batch.columns), strict=True)
            except (pa.ArrowException, OSError) as error:
                raise RsError(f"{self.path.name}: cannot read its rows ({error}).") from None

    def _detect_encoding(self, forced: str | None) -> str:
        head = self._check_is_text()
        errors = []
        for candidate in (forced,) if forced else _candidate_encodings(head):
            try:
                codec = _text_codec(candidate, head)
            except LookupError:
                raise RsError(f"Unknown encoding {candidate!r}; use e.g. utf-8, cp949, euc-kr or utf-16.") from None
            failed_at, blank, filler = self._decode_check(codec)
            if failed_at is not None:
                errors.append(f"as {candidate} at byte {failed_at}")
                continue
            if blank:
                raise RsError(f"{self.path} is empty.")
            if not forced and codec == "cp949" and filler and self._decode_check("euc_kr")[0] is None:
                # cp949 would show its 8-byte syllables as 'ㅤㄷㅚㅆ'; a cp949-only syllable (its own 2-byte code)
                # or a lone filler is not euc_kr, so such a file stays cp949.
                return "euc-kr"
            if forced:
                self._check_forced_encoding(forced, codec, head)
            return codec
        if forced:
            detected = self._encoding_rs_detects()
            if detected:
                raise RsError(
                    f"{self.path} does not decode as {forced} (at byte {failed_at}), but it reads as {detected}: drop "
                    f"--encoding (rs detects it) or pass --encoding {detected}."
                )
        raise RsError(f"Cannot decode {self.path} ({'; '.join(errors)}). Pass --encoding with the file's encoding.")

    def _encoding_rs_detects(self) -> str | None:
        """The encoding rs detects for this file, named as one passes it to --encoding (utf-8 for a file without a
        byte-order mark); None when no candidate decodes it."""
        try:
            codec = self._detect_encoding(None)
        except RsError:
            return None
        if codec == "utf-8-sig":
            with self._open_bytes() as handle:
                return codec if handle.read(3) == codecs.BOM_UTF8 else "utf-8"
        return "utf-16" if codec.startswith("utf-16") else codec

    def _check_forced_encoding(self, forced: str, codec: str, head: bytes) -> None:
        """Refuse a forced encoding that turns a Korean file into mojibake (latin-1 on UTF-8) or into one long line
        (utf-16 on UTF-8) when the encoding rs would detect reads it as Korean text, line by line."""
        with self._open_bytes() as handle:
            sample = handle.read(1 << 16)
        forced_text = codecs.getincrementaldecoder(codec)(errors="replace").decode(sample)
        for candidate in _candidate_encodings(head):
            try:
                detected_text = codecs.getincrementaldecoder(_text_codec(candidate, head))().decode(sample)
            except UnicodeDecodeError:
                continue
            hangul = len(_HANGUL_SYLLABLES.findall(detected_text))
            if not hangul or _text_codec(candidate, head) == codec:
                return
            lines_lost = detected_text.count("\n") > 1 and forced_text.count("\n") <= 1
            if lines_lost or len(_HANGUL_SYLLABLES.findall(forced_text)) < hangul / 2:
                raise RsError(
                    f"--encoding {forced} does not read {self.path.name} as Korean text, but "
                    f"{candidate} does: drop --encoding (rs detects it) or pass the file's real encoding."
                )
            return

    def _check_is_text(self) -> bytes:
        """The file's first bytes; RsError for an empty file, or for a compressed or binary file under a text
        file's name, which would otherwise fail as text in no known encoding."""
        name, stem = self.path.name, table_stem(self.path)
        with open(self.path, "rb") as handle:
            raw = handle.read(4)
        if self._gzip and raw and not raw.startswith(b"\x1f\x8b"):
            raise RsError(f"{name} is not gzip-compressed: drop the .gz from its name and rs reads it.")
        with self._open_bytes() as handle:
            try:
                head = handle.read(4)
            except (OSError, EOFError, zlib.error) as error:
                raise RsError(f"{name} is a damaged gzip file ({error}); compress it again.") from None
        if not head:
            raise RsError(f"{self.path} is empty.")
        # In a .gz, the unpacked bytes: what is inside needs unpacking first.
        holds, to = ("holds", "unpack it to") if self._gzip else ("is", "rename it to")
        if head.startswith(b"\x1f\x8b") and not self._gzip:
            raise RsError(f"{name} is gzip-compressed: name it {name}.gz and rs reads it.")
        if head.startswith(b"PK\x03\x04"):
            if not self._gzip and _is_workbook(self.path):
                raise RsError(f"{name} is an Excel workbook, not text: rename it to {stem}.xlsx and rs reads it.")
            raise RsError(
                f"{name} {holds} a zip file, not text: if it is an Excel workbook, {to} {stem}.xlsx and rs reads "
                "it; if it is an archive, unzip it and pass the file inside."
            )
        if head.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE2 container: Excel 97-2003, or an encrypted .xlsx
            raise RsError(
                f"{name} {holds} an old Excel .xls (or a password-protected) workbook, not text: save it from Excel "
                "as .xlsx without a password, or as .csv."
            )
        if head == b"PAR1":
            raise RsError(f"{name} {holds} a Parquet file, not text: {to} {stem}.parquet and rs reads it.")
        return head

    def _decode_check(self, codec: str) -> tuple[int | None, bool, bool]:
        """Decode the whole file block by block: the byte offset of the first error (None if it decodes), whether
        the text is only whitespace, and whether the bytes hold EUC_KR_FILLER."""
        decoder = codecs.getincrementaldecoder(codec)()
        offset, started, blank, filler, last = 0, False, True, False, b""
        with self._open_bytes() as handle:
            try:
                while block := handle.read(BLOCK_SIZE):
                    offset += len(block)
                    filler = filler or EUC_KR_FILLER in last + block  # `last`: a filler split between blocks
                    last = block[-1:]
                    text = decoder.decode(block)
                    if blank and text:
                        if not started:  # a byte-order mark the codec kept is not content
                            text, started = text.removeprefix("\ufeff"), True
                        blank = not text.strip()
                text = decoder.decode(b"", final=True)
                blank = blank and not text.strip()
            except UnicodeDecodeError as error:
                # error.object is the input the codec was decoding when it failed: this block plus the bytes
                # it held over from the previous one, minus a utf-8-sig BOM it skipped. It ends at `offset`.
                return offset - len(error.object) + error.start, blank, filler
        return None, blank, filler

    def _open_bytes(self) -> BinaryIO:
        return gzip.open(self.path, "rb") if self._gzip else open(self.path, "rb")

    def _lines(self, newline: str | None) -> Iterator[str]:
        """The text's lines, ends kept, split as open() does for `newline`; a byte-order mark that the encoding
        kept (a forced utf-8 on a utf-8-sig file) is dropped."""
        if self._gzip:
            handle = gzip.open(self.path, "rt", encoding=self.encoding, newline=newline)
        else:
            handle = open(self.path, encoding=self.encoding, newline=newline)
        with handle:
            first = handle.readline()
            if first:
                yield first.removeprefix("\ufeff")
                yield from handle

    def _delimited(self) -> Iterator[list[str]]:
        """The header row, then each row padded with "" to the header's length; blank lines skipped."""
        csv.field_size_limit(2**31 - 1)  # reviews of any length
        # newline="": the csv module handles line ends itself, inside quoted fields included. strict: a quote that
        # never closes, or text after a closing quote, is an error; otherwise the reader silently merges every
        # following row into one cell, or drops the quotes.
        reader = csv.reader(self._lines(newline=""), delimiter=self._delimiter, quoting=self._quoting, strict=True)
        header: list[str] | None = None
        while True:
            start = reader.line_num + 1  # where the next row starts; a quoted field may take it over several lines
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise self._csv_error(error, start, reader.line_num) from None
            if header is None:
                header = row
                yield header
                continue
            if not row:
                continue  # a blank line is not a row
            if len(row) > len(header):
                if any(field.strip() for field in row[len(header) :]):
                    raise self._too_many_fields(len(row), len(header), start, reader.line_num)
                row = row[: len(header)]  # trailing empty fields, e.g. a comma at the end of every line
            yield row + [""] * (len(header) - len(row))

    def _too_many_fields(self, fields: int, wanted: int, start: int, end: int) -> RsError:
        shown = {"\t": "tab", ",": "comma"}.get(self._delimiter, self._delimiter)
        if start == end:
            return RsError(
                f"{self.path}, line {end}: {fields} fields but the header has {wanted} (delimiter: {shown}). Quote "
                "texts that contain the delimiter, or fix that line."
            )
        # A row over several lines is a quoted field holding line breaks, or a stray quote that closed only at a
        # later quote and merged the rows between.
        return RsError(
            f"{self.path}, lines {start}-{end}: {fields} fields but the header has {wanted} (delimiter: {shown}); a "
            f"quote opened on line {start} may be missing its closing quote. Close it, or fix those lines."
        )

    def _csv_error(self, error: csv.Error, start: int, end: int) -> RsError:
        """`error` as an RsError naming the line where the broken row starts and where parsing stopped."""
        message = str(error)
        if "unexpected end of data" in message:  # what the csv module says on EOF inside a quoted field
            return RsError(
                f"{self.path}, line {start}: a quoted field opened here never closes (read to line {end}). Close "
                "the quote or remove it."
            )
        if "expected after" in message:  # "',' expected after '\"'": text after a closing quote
            if start == end:
                return RsError(
                    f"{self.path}, line {start}: text follows the closing quote of a quoted field. Write a quote "
                    'inside a quoted field as two ("") or remove it.'
                )
            return RsError(
                f"{self.path}, lines {start}-{end}: text follows a closing quote on line {end}; a quote opened on "
                f"line {start} may be missing its closing quote. Close it, or write a quote inside a quoted field "
                'as two ("").'
            )
        return RsError(f"Cannot parse {self.path} near line {end}: {error}")

    def _jsonl_records(self) -> Iterator[tuple[dict, int]]:
        """Each JSON object, with the number of lone surrogates in it replaced by U+FFFD: a \\ud800 escape decodes
        to one, which no UTF-8 output (nor pandas' Arrow-backed strings) can hold."""
        # Lines end at "\n" only, as JSON Lines says; a "\r" before it is whitespace to json.loads.
        for number, line in enumerate(self._lines(newline="\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise RsError(f"{self.path}, line {number}: not valid JSON ({error.msg}).") from None
            if not isinstance(record, dict):
                raise RsError(
                    f"{self.path}, line {number}: each line must be a JSON object, got {type(record).__name__}."
                )
            replaced = 0
            if JSON_SURROGATE_ESCAPE.search(line):
                record, replaced = without_surrogates(record)
            yield record, replaced


def _is_workbook(path: Path) -> bool:
    """Whether the zip file at `path` is an .xlsx workbook."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _has_formula_without_value(worksheet: Any) -> bool:
    """Whether a read-only worksheet's XML holds a formula without a cached value (`_FORMULA_WITHOUT_VALUE`),
    decompressed and searched a block at a time: far cheaper than openpyxl's parsing, so that only such a sheet is
    read a second time for its formulas' text. True when the XML cannot be reached this way: the reading then
    decides (and reports a damaged sheet)."""
    overlap = 1024  # longer than a formula's end, its attributes included, and an empty value
    try:
        source = worksheet._get_source()  # openpyxl's own: the sheet's part of the zip archive, opened to stream
    except (AttributeError, KeyError, OSError, zipfile.BadZipFile):
        return True
    previous = b""
    try:
        with source:
            while block := source.read(BLOCK_SIZE):
                if _FORMULA_WITHOUT_VALUE.search(previous + block):
                    return True
                previous = block[-overlap:]
    except (OSError, zlib.error, zipfile.BadZipFile, EOFError):
        return True
    return False


def _formula_text(value: Any) -> str | None:
    """A formula's text with its "=" ("=1+1", "=정말 최고예요") from a workbook read without data_only; None for a
    value that is not a formula, or a data table formula, which has no text."""
    from openpyxl.worksheet.formula import ArrayFormula

    if isinstance(value, ArrayFormula):
        value = value.text
    return value if isinstance(value, str) and len(value) > 1 and value.startswith("=") else None


def _visible(worksheet: Any) -> bool:
    return worksheet.sheet_state == "visible"  # not "hidden" or "veryHidden"


def _sheet_list(worksheets: Iterable[Any]) -> str:
    """Sheet names for a message, hidden ones marked: 'a', '숨김' (hidden), 'b'."""
    return ", ".join(repr(w.title) + ("" if _visible(w) else " (hidden)") for w in worksheets)


TITLE_ROWS_LOOKAHEAD = 4


def _title_rows(head: list[list[str]]) -> int:
    """How many of a sheet's first non-empty rows are a title above the header: back-office exports often start
    with a line such as "2024년 3분기 리뷰" (one filled cell) above the real header. The header is then the first
    row with two or more filled cells, none of them a number, within the first three; a first row that is itself
    a known text-column name (a one-column header) is never a title."""
    first = [cell for cell in head[0] if cell]
    if len(first) != 1 or first[0].strip().lower() in TEXT_COLUMN_NAMES:
        return 0
    for position, row in enumerate(head[:4]):
        filled = [cell for cell in row if cell]
        if len(filled) >= 2:
            return position if not any(PLAIN_NUMBER.fullmatch(cell.strip()) for cell in filled) else 0
    return 0


def _text_codec(name: str, head: bytes) -> str:
    """The codec to decode with for the encoding `name`; LookupError if it is unknown or not a text encoding."""
    codec = codecs.lookup(name).name
    try:
        b"\0".decode(name)  # bytes-to-bytes codecs such as base64 raise LookupError here
    except UnicodeDecodeError:
        pass
    boms = {"utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE), "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)}
    if codec in boms and not head.startswith(boms[codec]):
        # bytes.decode("utf-16") reads a file without a byte-order mark in the machine's byte order, where the
        # incremental decoder refuses it.
        return f"{codec}-{'le' if sys.byteorder == 'little' else 'be'}"
    return name


def _candidate_encodings(raw: bytes) -> tuple[str, ...]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" is UTF-16 with a byte-order mark
        return ("utf-16",)
    return READ_ENCODINGS


def _csv_delimiter(header: str) -> str:
    """ "," unless the header has no comma but tabs, semicolons or pipes (exports from some tools)."""
    if "," in header:
        return ","
    counts = {delimiter: header.count(delimiter) for delimiter in ("\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _looks_tab_separated(lines: list[str]) -> bool:
    """A .txt is a table when its header has tabs and nearly all of its first lines have as many."""
    head = [line for line in lines[:200] if line]
    if len(head) < 2 or "\t" not in head[0]:
        return False
    same = sum(line.count("\t") == head[0].count("\t") for line in head)
    return same >= 0.9 * len(head)
