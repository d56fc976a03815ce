"""Reading and writing review files: every cell kept as text, outputs written atomically."""

from __future__ import annotations

import csv
import io
import json
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
WRITE_SUFFIXES = (".csv", ".tsv", ".jsonl")  # .txt would lose the added columns


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
    path = Path(path)
    if not path.exists():
        raise RsError(f"No such file: {path}")
    if path.is_dir():
        raise RsError(f"{path} is a folder; pass a review file ({', '.join(SUPPORTED_SUFFIXES)}).")
    suffix = _suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise RsError(f"Cannot read {path.name}: rs reads {', '.join(SUPPORTED_SUFFIXES)} files.")
    raw = _read_bytes(path)
    errors = []
    for candidate in (encoding,) if encoding else _candidate_encodings(raw):
        try:
            text = raw.decode(candidate)
        except UnicodeDecodeError as error:
            errors.append(f"as {candidate} at byte {error.start}")
            continue
        except LookupError:
            raise RsError(f"Unknown encoding {candidate!r}; use e.g. utf-8, cp949, euc-kr or utf-16.") from None
        return _parse_table(path, suffix, text.removeprefix("\ufeff"))
    raise RsError(f"Cannot decode {path} ({'; '.join(errors)}). Pass --encoding with the file's encoding.")


def _read_bytes(path: Path) -> bytes:
    if path.suffix.lower() == ".gz":
        import gzip

        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def _candidate_encodings(raw: bytes) -> tuple[str, ...]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" is UTF-16 with a byte-order mark
        return ("utf-16",)
    return READ_ENCODINGS


def _parse_table(path: Path, suffix: str, text: str) -> pd.DataFrame:
    if not text.strip():
        raise RsError(f"{path} is empty.")
    if suffix == ".jsonl":
        return _parse_jsonl(path, text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    if suffix == ".txt":
        if not _looks_tab_separated(lines):
            return pd.DataFrame({"text": lines}, dtype=str)
        # A tab-separated table saved as .txt (NSMC's ratings_train.txt: id, document, label): one row per
        # line, and quotes are plain text.
        return _parse_delimited(path, text, "\t", quoting=csv.QUOTE_NONE)
    delimiter = "\t" if suffix == ".tsv" else _csv_delimiter(lines[0])
    return _parse_delimited(path, text, delimiter, quoting=csv.QUOTE_MINIMAL)


def _csv_delimiter(header: str) -> str:
    """ "," unless the header has no comma but tabs, semicolons or pipes (exports from some tools)."""
    if "," in header:
        return ","
    counts = {delimiter: header.count(delimiter) for delimiter in ("\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _parse_delimited(path: Path, text: str, delimiter: str, quoting: int) -> pd.DataFrame:
    csv.field_size_limit(2**31 - 1)  # reviews of any length
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader)
        rows = []
        for row in reader:
            if not row:
                continue  # a blank line is not a row
            if len(row) > len(header):
                if any(field.strip() for field in row[len(header) :]):
                    shown = {"\t": "tab", ",": "comma"}.get(delimiter, delimiter)
                    raise RsError(
                        f"{path}, line {reader.line_num}: {len(row)} fields but the header has {len(header)} "
                        f"(delimiter: {shown}). Quote texts that contain the delimiter, or fix that line."
                    )
                row = row[: len(header)]  # trailing empty fields, e.g. a comma at the end of every line
            rows.append(row + [""] * (len(header) - len(row)))
    except csv.Error as error:
        raise RsError(f"Cannot parse {path} near line {reader.line_num}: {error}") from None
    return pd.DataFrame(rows, columns=_unique_names(header), dtype=str)


def _unique_names(header: list[str]) -> list[str]:
    """Column names made unique the way pandas does it (review, review.1)."""
    seen: dict[str, int] = {}
    names = []
    for name in header:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}.{count}")
    return names


def _parse_jsonl(path: Path, text: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise RsError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise RsError(f"{path}, line {number}: each line must be a JSON object, got {type(record).__name__}.")
        records.append(record)
    columns = list(dict.fromkeys(key for record in records for key in record))

    def cell(value) -> str:
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return pd.DataFrame([[cell(r.get(c)) for c in columns] for r in records], columns=columns, dtype=str)


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
    path = check_output_path(path)
    suffix = _suffix(path)
    compression = "gzip" if path.suffix.lower() == ".gz" else None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        if suffix == ".jsonl":
            table.to_json(temporary, orient="records", lines=True, force_ascii=False, compression=compression)
        else:
            table.to_csv(
                temporary,
                sep="\t" if suffix == ".tsv" else ",",
                index=False,
                encoding=CSV_WRITE_ENCODING,
                compression=compression,
            )
        make_shareable(Path(temporary))
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
