"""review_sentiment.io.cells: formula escaping and TypedCell."""

import json
import pickle
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from review_sentiment.io import (
    cells,
    escape_formula,
    unescape_formula,
)


def test_a_typed_cell_is_its_text():
    cell = cells.TypedCell("5", 5)
    assert cell == "5" and hash(cell) == hash("5") and "5" in {cell} and {cell: 1}["5"] == 1
    assert type(str(cell)) is str and type(cell.strip()) is str and repr(cell) == "'5'"
    assert json.dumps([cell]) == '["5"]' and cell.encode() == b"5"
    copied = pickle.loads(pickle.dumps(cell))
    assert (type(copied), copied, copied.value) == (cells.TypedCell, "5", 5)
    assert cells.excel_cell("text") == "text" and type(cells.excel_cell("text")) is str


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+82 10", "'+82 10"),
        ("-_-;; 별로", "'-_-;; 별로"),
        ("@user", "'@user"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=already quoted", "''=already quoted"),
        ("-1", "-1"),
        ("+82", "+82"),
        ("-3.5", "-3.5"),
        ("-.5e-3", "-.5e-3"),
        ("1+1", "1+1"),
        ("좋아요 =)", "좋아요 =)"),
        ("'plain quote", "'plain quote"),
        ("", ""),
        ("-", "'-"),
    ],
)
def test_escape_formula(text, escaped):
    assert escape_formula(text) == escaped
    assert unescape_formula(escaped) == text


@given(st.one_of(st.text(), st.text(alphabet="'=+-@\t\r0123456789.eE x")))
def test_unescape_undoes_escape(text):
    escaped = escape_formula(text)
    assert unescape_formula(escaped) == text
    # what a spreadsheet sees never starts a formula, plain numbers aside
    assert not re.match(r"[=+\-@\t\r]", escaped) or re.fullmatch(r"[+-][0-9.eE+-]+", escaped)
