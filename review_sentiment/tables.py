"""Reading and writing review files: every cell kept as text, outputs written atomically."""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import BinaryIO, TextIO

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
WRITE_SUFFIXES = (".csv", ".tsv", ".jsonl")  # .txt would lose the added columns
BLOCK_SIZE = 1 << 20  # bytes decoded at a time while checking the encoding


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
    """Read a review file with every cell as a string ("" for empty), rows and columns exactly as stored.

    CSV/TSV: the delimiter is taken from the header when a .csv uses tabs or semicolons; rows with fewer
    fields than the header are padded with "", rows with more non-empty fields are an error (never shifted).
    """
    source = TableSource(path, encoding)
    with closing(source.chunks(max(source.rows, 1))) as chunks:
        return next(chunks)


class TableSource:
    """A review file opened for reading in chunks of rows, with `read_table`'s rules.

    The constructor streams through the file to pick the encoding, the format, the columns and the number of
    rows, and raises RsError for anything `read_table` would reject, so a long job fails before it starts.
    Memory grows with the chunk size, not with the file (a .jsonl's set of keys aside).
    """

    path: Path
    encoding: str  # the codec the text is read with
    columns: list[str]
    rows: int  # data rows the chunks yield, for progress bars

    def __init__(self, path: str | Path, encoding: str | None = None) -> None:
        path = Path(path)
        if not path.exists():
            raise RsError(f"No such file: {path}")
        if path.is_dir():
            raise RsError(f"{path} is a folder; pass a review file ({', '.join(SUPPORTED_SUFFIXES)}).")
        suffix = _suffix(path)
        if suffix not in SUPPORTED_SUFFIXES:
            raise RsError(f"Cannot read {path.name}: rs reads {', '.join(SUPPORTED_SUFFIXES)} files.")
        self.path, self._suffix, self._gzip = path, suffix, path.suffix.lower() == ".gz"
        self.encoding = self._detect_encoding(encoding)
        self._delimiter: str | None = None  # None: one text per line (.txt) or JSON lines
        self._quoting = csv.QUOTE_MINIMAL
        if suffix == ".jsonl":
            keys: dict[str, None] = {}  # a dict keeps the order in which keys first appear
            self.rows = 0
            for record in self._jsonl_records():
                keys.update(dict.fromkeys(record))
                self.rows += 1
            self.columns = list(keys)
            return
        head = [line.rstrip("\n") for line in islice(self._lines(newline=None), 200)]
        if suffix == ".txt" and not _looks_tab_separated(head):
            self.columns = ["text"]
            self.rows = sum(1 for _ in self._lines(newline=None))
            return
        if suffix == ".txt":
            # A tab-separated table saved as .txt (NSMC's ratings_train.txt: id, document, label): one row per
            # line, and quotes are plain text.
            self._delimiter, self._quoting = "\t", csv.QUOTE_NONE
        else:
            self._delimiter = "\t" if suffix == ".tsv" else _csv_delimiter(head[0])
        rows = self._delimited()
        self.columns = _unique_names(next(rows))
        self.rows = sum(1 for _ in rows)

    def chunks(self, rows_per_chunk: int) -> Iterator[pd.DataFrame]:
        """DataFrames of at most `rows_per_chunk` rows, every cell a str, numbered on across chunks so that
        concatenating them gives the whole table; a file without rows gives one empty DataFrame."""
        if rows_per_chunk < 1:
            raise ValueError(f"rows_per_chunk must be at least 1, got {rows_per_chunk}")
        start, batch = 0, []
        for cells in self._cells():
            batch.append(cells)
            if len(batch) == rows_per_chunk:
                yield self._frame(batch, start)
                start, batch = start + len(batch), []
        if batch or start == 0:
            yield self._frame(batch, start)

    def _frame(self, batch: list[list[str]], start: int) -> pd.DataFrame:
        index = pd.RangeIndex(start, start + len(batch))
        return pd.DataFrame(batch, columns=self.columns, index=index, dtype=str)

    def _cells(self) -> Iterator[list[str]]:
        """Each data row as a list of cells in the order of `columns`."""
        if self._suffix == ".jsonl":
            for record in self._jsonl_records():
                yield [_json_cell(record.get(column)) for column in self.columns]
        elif self._delimiter is None:
            for line in self._lines(newline=None):
                yield [line.rstrip("\n")]
        else:
            rows = self._delimited()
            next(rows)  # the header
            yield from rows

    def _detect_encoding(self, forced: str | None) -> str:
        with self._open_bytes() as handle:
            head = handle.read(4)
        if not head:
            raise RsError(f"{self.path} is empty.")
        errors = []
        for candidate in (forced,) if forced else _candidate_encodings(head):
            try:
                codec = _text_codec(candidate, head)
            except LookupError:
                raise RsError(f"Unknown encoding {candidate!r}; use e.g. utf-8, cp949, euc-kr or utf-16.") from None
            failed_at, blank = self._decode_check(codec)
            if failed_at is not None:
                errors.append(f"as {candidate} at byte {failed_at}")
                continue
            if blank:
                raise RsError(f"{self.path} is empty.")
            return codec
        raise RsError(f"Cannot decode {self.path} ({'; '.join(errors)}). Pass --encoding with the file's encoding.")

    def _decode_check(self, codec: str) -> tuple[int | None, bool]:
        """Decode the whole file block by block: the byte offset of the first error (None if it decodes), and
        whether the text is only whitespace."""
        decoder = codecs.getincrementaldecoder(codec)()
        offset, started, blank = 0, False, True
        with self._open_bytes() as handle:
            try:
                while block := handle.read(BLOCK_SIZE):
                    offset += len(block)
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
                return offset - len(error.object) + error.start, blank
        return None, blank

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
        # newline="": the csv module handles line ends itself, inside quoted fields included.
        reader = csv.reader(self._lines(newline=""), delimiter=self._delimiter, quoting=self._quoting)
        try:
            header = next(reader)
            yield header
            for row in reader:
                if not row:
                    continue  # a blank line is not a row
                if len(row) > len(header):
                    if any(field.strip() for field in row[len(header) :]):
                        shown = {"\t": "tab", ",": "comma"}.get(self._delimiter, self._delimiter)
                        raise RsError(
                            f"{self.path}, line {reader.line_num}: {len(row)} fields but the header has "
                            f"{len(header)} (delimiter: {shown}). Quote texts that contain the delimiter, or fix "
                            "that line."
                        )
                    row = row[: len(header)]  # trailing empty fields, e.g. a comma at the end of every line
                yield row + [""] * (len(header) - len(row))
        except csv.Error as error:
            raise RsError(f"Cannot parse {self.path} near line {reader.line_num}: {error}") from None

    def _jsonl_records(self) -> Iterator[dict]:
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
            yield record


def _json_cell(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


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


def _unique_names(header: list[str]) -> list[str]:
    """Column names made unique the way pandas does it (review, review.1)."""
    seen: dict[str, int] = {}
    names = []
    for name in header:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}.{count}")
    return names


def _looks_tab_separated(lines: list[str]) -> bool:
    """A .txt is a table when its header has tabs and nearly all of its first lines have as many."""
    head = [line for line in lines[:200] if line]
    if len(head) < 2 or "\t" not in head[0]:
        return False
    same = sum(line.count("\t") == head[0].count("\t") for line in head)
    return same >= 0.9 * len(head)


def check_output_path(path: str | Path) -> Path:
    """Refuse an output path rs cannot write, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise RsError(f"{path} is a folder; pass a file name such as {path / 'labeled.csv'}.")
    if _suffix(path) not in WRITE_SUFFIXES:
        raise RsError(
            f"Cannot write {path.name}: rs writes {', '.join(WRITE_SUFFIXES)} files (chosen by the extension)."
        )
    return path


def make_shareable(path: Path) -> None:
    """Give a file (or a folder and its contents) the umask's usual permissions: mkstemp and mkdtemp make
    them private to their creator, but outputs and models are meant to be read by others."""
    mask = os.umask(0)
    os.umask(mask)
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~mask)


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table atomically: a temporary file beside the target, renamed over it when complete."""
    with TableWriter(path) as writer:
        writer.write(table)
    return writer.path


class TableWriter:
    """Write a table chunk by chunk, atomically: `with TableWriter(path) as writer: writer.write(chunk)`.

    The rows go to a temporary file beside `path`, renamed over it when the `with` block ends normally; on any
    exception (Ctrl-C included) the temporary file is removed and `path` is left as it was. CSV/TSV get the
    header once, from the first chunk or, when no rows come, from `columns`.
    """

    def __init__(self, path: str | Path, columns: Sequence[str] | None = None) -> None:
        self.path = check_output_path(path)
        self._suffix = _suffix(self.path)
        self._columns = None if columns is None else list(columns)
        self._temporary: Path | None = None
        self._handle: TextIO | None = None
        self._started = False  # the CSV header has been written

    def __enter__(self) -> TableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        os.close(handle)
        self._temporary = Path(temporary)
        # JSON Lines is UTF-8 by definition; CSV gets a BOM so that Excel shows Hangul.
        encoding = "utf-8" if self._suffix == ".jsonl" else CSV_WRITE_ENCODING
        try:
            if self.path.suffix.lower() == ".gz":
                self._handle = gzip.open(temporary, "wt", encoding=encoding, newline="")
            else:
                self._handle = open(temporary, "w", encoding=encoding, newline="")
        except BaseException:
            self._temporary.unlink(missing_ok=True)
            raise
        return self

    def write(self, chunk: pd.DataFrame) -> None:
        """Append the rows of `chunk` (its index is not written)."""
        if self._handle is None:
            raise RuntimeError("TableWriter.write is only available inside its with block")
        if self._suffix == ".jsonl":
            if len(chunk):  # pandas writes a blank line for a frame without rows
                chunk.to_json(self._handle, orient="records", lines=True, force_ascii=False)
            return
        if self._columns is None:
            self._columns = list(chunk.columns)
        elif list(chunk.columns) != self._columns:
            # A CSV has one header: other columns would land under the wrong names.
            raise ValueError(f"chunk columns {list(chunk.columns)} differ from the table's {self._columns}")
        sep = "\t" if self._suffix == ".tsv" else ","
        chunk.to_csv(self._handle, sep=sep, index=False, header=not self._started)
        self._started = True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        assert self._handle is not None and self._temporary is not None, "TableWriter used outside a with block"
        replaced = False
        try:
            try:
                if kind is None and not self._started:
                    self.write(pd.DataFrame(columns=self._columns or []))  # the header of a table without rows
            finally:
                self._handle.close()
                self._handle = None
            if kind is None:
                make_shareable(self._temporary)
                os.replace(self._temporary, self.path)
                replaced = True
        finally:
            if not replaced:
                self._temporary.unlink(missing_ok=True)


def _column_names(table: pd.DataFrame | Sequence[str]) -> list[str]:
    return list(table.columns if isinstance(table, pd.DataFrame) else table)


def find_text_column(table: pd.DataFrame | Sequence[str], text_col: str | None = None) -> str:
    """The review-text column: `text_col` if given, else the first known name (review, text, 리뷰, 내용...).
    `table` may be a DataFrame or its column names."""
    columns = _column_names(table)
    if text_col is not None:
        if text_col not in columns:
            raise RsError(f"--text-col {text_col!r} is not a column of the file. Columns: {columns}.")
        return text_col
    by_lower = {str(c).strip().lower(): c for c in columns}
    for name in TEXT_COLUMN_NAMES:
        if name in by_lower:
            return by_lower[name]
    if len(columns) == 1:
        return columns[0]
    raise RsError(f"Cannot tell which column holds the review text. Columns: {columns}. Pass --text-col NAME.")


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


def same_file(first: str | Path, second: str | Path) -> bool:
    first, second = Path(first), Path(second)
    if first.exists() and second.exists():
        return os.path.samefile(first, second)
    return first.resolve() == second.resolve()


DEFAULT_CHUNK_ROWS = 10_000  # rows read, processed and written at a time by predict and preprocess


def prefetched(items: Iterable, work: Callable) -> Iterator:
    """(item, work(item)) for each item, in order, with the next item read and worked on in a background thread
    meanwhile. kiwipiepy, the tokenizer and torch release the GIL, so the next chunk is normalized and tokenized
    while the model scores this one (on a GPU the model then never waits for the CPU)."""
    from concurrent.futures import ThreadPoolExecutor

    iterator = iter(items)
    done = object()

    def next_result():
        item = next(iterator, done)
        return done if item is done else (item, work(item))

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rs-prefetch")
    try:
        future = pool.submit(next_result)
        while (result := future.result()) is not done:
            future = pool.submit(next_result)
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
