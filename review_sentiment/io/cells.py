"""Cell text: formula escaping for spreadsheets, Excel's _xHHHH_ escapes, lone surrogates, and `TypedCell`, the
text of a typed value (an .xlsx number or date, a .parquet value) that keeps the value for an .xlsx output."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import numpy as np

SURROGATE = re.compile("[\ud800-\udfff]")
_OOXML_ESCAPE = re.compile("_x([0-9A-Fa-f]{4})_")
_OOXML_LITERAL = re.compile("_(?=x[0-9A-Fa-f]{4}_)")  # the start of text that reads as an escape
JSON_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a line whose JSON may decode to a lone surrogate
# What a spreadsheet runs as a formula: =, +, -, @, tab or CR first; after quotes too, so that escaping stays
# reversible. Plain numbers such as -1 or +82 are left alone.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED_FORMULA = re.compile(r"'+[=+\-@\t\r]")
PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def json_cell(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def without_surrogates(value: Any) -> tuple[Any, int]:
    """`value` (a decoded JSON value) with lone surrogates in its strings and keys replaced by U+FFFD, and how
    many were replaced."""
    if isinstance(value, str):
        return SURROGATE.subn("\ufffd", value)
    if isinstance(value, list):
        items = [without_surrogates(item) for item in value]
        return [item for item, _ in items], sum(count for _, count in items)
    if isinstance(value, dict):
        result, total = {}, 0
        for key, item in value.items():
            (key, key_count), (item, item_count) = without_surrogates(key), without_surrogates(item)
            result[key] = item
            total += key_count + item_count
        return result, total
    return value, 0


class TypedCell(str):
    """A cell read from a typed value (an .xlsx number, date or bool; a .parquet number, bool, date or timestamp
    that Excel can hold): a str equal to the cell's text, with its hash, so that normalizing, hashing, comparing
    and text outputs see the text exactly as before; `value` keeps the original for `TableWriter`, which writes it
    to .xlsx so that a number cell stays a number and a date a date. Operations on it (strip, +) give plain str.

    pandas' str dtype stores plain str, so a column holding one is an object column (`TableSource._frame`);
    assigning columns, selecting rows (chunk[keep]) and pd.concat keep it. No __slots__: a str subclass can have
    none but empty ones, so `value` lives in the instance's __dict__."""

    value: Any

    def __new__(cls, text: str, value: Any) -> TypedCell:
        cell = super().__new__(cls, text)
        cell.value = value
        return cell

    def __reduce__(self) -> tuple:
        # pickle and copy would otherwise call TypedCell(text) and fail: __new__ takes the value too
        return (TypedCell, (str(self), self.value))


def excel_cell(value: object) -> str:
    """An .xlsx value as text, as Excel shows it unformatted: TRUE/FALSE, 5 for a whole number (Excel stores 5 as
    5.0; from 1e16 on, 1e+16), 0.1 for other numbers (Python's shortest repr), ISO 8601 for dates and times
    (2024-01-02 13:45:00; Excel has no date without a time, so a date cell gives 2024-01-02 00:00:00). Any value but
    text is a `TypedCell` holding it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _ooxml_unescape(value) if "_x" in value else value
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        text = str(int(value))
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, (dt.date, dt.time)):
        text = value.isoformat()
    else:
        text = str(value)
    return TypedCell(text, value)


def _excel_holds(value: object) -> bool:
    """Whether Excel holds `value` (from a .parquet) as it is: a bool, a whole number of up to 15 digits (Excel keeps
    15 significant digits, so a longer ID would be rounded), a finite float, a date, time or timestamp without a
    time zone (Excel has none) from 1900 on (Excel's first date). Others stay text in an .xlsx output."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) < 10**15
    if isinstance(value, float):
        return np.isfinite(value)
    if isinstance(value, (dt.datetime, dt.time)) and value.tzinfo is not None:
        return False
    if isinstance(value, dt.date):  # datetimes included
        return value.year >= 1900
    return isinstance(value, dt.time)


def _ooxml_unescape(text: str) -> str:
    """Decode the _xHHHH_ escapes with which .xlsx text holds characters XML cannot (Excel writes a carriage
    return as _x000D_, a literal _x0041_ as _x005F_x0041_); openpyxl leaves them as they are."""

    def character(match: re.Match) -> str:
        code = int(match.group(1), 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)

    return _OOXML_ESCAPE.sub(character, text)


def ooxml_escape(text: str) -> str:
    """`_ooxml_unescape`'s inverse, for what openpyxl writes: XML would turn a carriage return into a line feed."""
    if "_x" in text:
        text = _OOXML_LITERAL.sub("_x005F_", text)
    return text.replace("\r", "_x000D_")


def arrow_texts(column: Any) -> list[str]:
    """The values of a pyarrow array as text, by `arrow_cell`."""
    import pyarrow as pa

    try:
        values = column.to_pylist()
    except UnicodeDecodeError:  # a string column holding bytes that are not UTF-8
        values = [
            None if value is None else value.decode("utf-8", errors="replace")
            for value in column.cast(pa.binary()).to_pylist()
        ]
    if pa.types.is_floating(column.type) and column.type.bit_width < 64:
        # to_pylist widens float32's 0.1 to 0.10000000149011612; its own shortest repr is 0.1
        narrow = np.float32 if column.type.bit_width == 32 else np.float16
        values = [None if value is None else float(str(narrow(value))) for value in values]
    return [arrow_cell(value) for value in values]


def arrow_cell(value: object) -> str:
    """A .parquet value as text, by .jsonl's rule: strings as they are, null as "", other values as JSON
    (5, 5.0, true, NaN, ["a", 1], {"k": 1}; a map with unique string keys as an object), and what JSON lacks as
    text: ISO 8601 for dates, times and timestamps (2024-01-02 13:45:00+09:00), decimals exactly (1.20), bytes
    decoded as UTF-8 (undecodable bytes as U+FFFD), durations as 1 day, 2:00:00. A value `_excel_holds` is a
    `TypedCell` holding it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    plain = _jsonable(value)
    text = plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False, default=str)
    return TypedCell(text, value) if _excel_holds(value) else text


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dt.datetime):  # pd.Timestamp (nanosecond timestamps) included
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (Decimal, dt.timedelta)):
        return str(value)
    if isinstance(value, dict):
        return {key if isinstance(key, str) else arrow_cell(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list) and value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
        # a map: to_pylist gives its entries as (key, value) tuples
        keys = [key for key, _ in value]
        if all(isinstance(key, str) for key in keys) and len(set(keys)) == len(keys):
            return {key: _jsonable(item) for key, item in value}
        return [[_jsonable(key), _jsonable(item)] for key, item in value]
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def escape_formula(text: str) -> str:
    """`text` with one "'" put before it if a spreadsheet would run it as a formula: it starts with =, +, -, @, a
    tab or a carriage return (after any quotes, so that `unescape_formula` can undo it) and is not a plain
    number such as -1, +82 or -3.5e2; `text` itself otherwise. For .csv/.tsv; .xlsx cells get a cell style instead
    (see `TableWriter`)."""
    if _FORMULA.match(text) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def unescape_formula(text: str) -> str:
    """Undo `escape_formula`: one leading "'" removed where quotes come before =, +, -, @, a tab or a CR."""
    return text[1:] if _ESCAPED_FORMULA.match(text) else text


XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # openpyxl's ILLEGAL_CHARACTERS_RE, + XML's
