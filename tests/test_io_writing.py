"""review_sentiment.io.writing: atomic, chunked outputs in every format, escaping and what is counted."""

import datetime as dt
import gzip
from decimal import Decimal

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from review_sentiment.errors import RsError
from review_sentiment.io import (
    TableSource,
    TableWriter,
    cells,
    check_output_path,
    read_table,
    table_stem,
    write_table,
    writing,
)
from tests.conftest import parquet_bytes


def test_write_roundtrip_is_atomic_and_excel_friendly(tmp_path):
    table = pd.DataFrame({"review": ["좋아요", "=SUM(A1)"], "label": ["positive", ""]})
    path = write_table(table, tmp_path / "out.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    assert read_table(path)["review"].tolist() == ["좋아요", "'=SUM(A1)"]  # Excel shows the text, runs nothing
    assert read_table(path, unescape_formulas=True).equals(table)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left


def test_failed_write_leaves_no_file(tmp_path):
    class Exploding(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_table(Exploding({"a": [1]}), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_checked_before_work_and_readable_by_others(tmp_path):
    from review_sentiment.io import check_output_path

    for bad in ("out.xls", "out.txt", "noext"):
        with pytest.raises(RsError, match="rs writes .csv, .tsv, .jsonl, .xlsx, .parquet"):
            check_output_path(tmp_path / bad)
    with pytest.raises(RsError, match="is a folder"):
        check_output_path(tmp_path)
    path = write_table(pd.DataFrame({"a": ["1"]}), tmp_path / "out.csv.gz")
    assert read_table(path)["a"].tolist() == ["1"]
    assert path.stat().st_mode & 0o044  # not private to the writer


WRITTEN = pd.DataFrame(
    {
        "id": ["007", "008", "009", "010", "011"],
        "review": ['say "hi", 좋아요', "줄\n바꿈", "tab\there", "", "=SUM(A1)"],
        "stars": [5, 1, 3, 2, 4],
    }
)


@pytest.mark.parametrize("name", ["out.csv", "out.tsv", "out.jsonl", "out.csv.gz"])
def test_writer_in_chunks_writes_what_write_table_writes(tmp_path, name):
    def content(path):
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()

    expected = content(write_table(WRITTEN, tmp_path / "whole" / name))
    for size in (1, 2, 3):
        with TableWriter(tmp_path / str(size) / name) as writer:
            for start in range(0, len(WRITTEN), size):
                writer.write(WRITTEN.iloc[start : start + size])
                writer.write(WRITTEN.iloc[:0])  # an empty chunk adds nothing, not even a blank line
        assert content(writer.path) == expected
    assert sorted(p.name for p in (tmp_path / "1").iterdir()) == [name]


def test_writer_without_rows_writes_the_header(tmp_path):
    with TableWriter(tmp_path / "out.csv", columns=["review", "label"]):
        pass
    assert (tmp_path / "out.csv").read_bytes() == b"\xef\xbb\xbfreview,label\r\n"
    with TableWriter(tmp_path / "out.jsonl") as writer:
        writer.write(WRITTEN.iloc[:0])
    assert (tmp_path / "out.jsonl").read_bytes() == b""


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_interrupted_writer_leaves_the_target_alone(tmp_path, interruption):
    (tmp_path / "out.csv").write_text("old")
    with pytest.raises(interruption):
        with TableWriter(tmp_path / "out.csv") as writer:
            writer.write(WRITTEN.iloc[:2])
            raise interruption()
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left
    assert (tmp_path / "out.csv").read_text() == "old"


MIXED = pd.DataFrame(
    {
        "id": ["007", "008", "009"],
        "review": ["좋아요", "", "줄\n바꿈"],
        "label": ["positive", "negative", ""],
        "confidence": [0.9876, np.nan, 0.5],
        "count": [1, 2, 3],
        "empty": [False, True, False],
    }
)


@pytest.mark.parametrize("name", ["out.xlsx", "out.parquet"])
def test_xlsx_and_parquet_outputs_read_back(tmp_path, name):
    path = write_table(MIXED, tmp_path / "whole" / name)
    assert path.stat().st_mode & 0o044  # not private to the writer
    back = read_table(path)
    assert back.columns.tolist() == MIXED.columns.tolist()
    assert back[["id", "review", "label"]].equals(MIXED[["id", "review", "label"]])
    xlsx = name.endswith(".xlsx")
    assert back["confidence"].tolist() == ["0.9876", "", "0.5"]
    assert back["count"].tolist() == ["1", "2", "3"]
    assert back["empty"].tolist() == (["FALSE", "TRUE", "FALSE"] if xlsx else ["false", "true", "false"])
    for size in (1, 2):
        with TableWriter(tmp_path / str(size) / name) as writer:
            for start in range(0, len(MIXED), size):
                writer.write(MIXED.iloc[start : start + size])
                writer.write(MIXED.iloc[:0])
        assert read_table(writer.path).equals(back)
        assert sorted(p.name for p in writer.path.parent.iterdir()) == [name]  # no temporary file left
    if not xlsx:
        assert pq.ParquetFile(tmp_path / "1" / "out.parquet").num_row_groups == 3  # a row group per chunk


def test_xlsx_output_keeps_types(tmp_path):
    path = write_table(MIXED, tmp_path / "out.xlsx")
    rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
    assert rows[0] == tuple(MIXED.columns)
    assert rows[1] == ("007", "좋아요", "positive", 0.9876, 1, False)  # numbers as numbers, text as text
    assert rows[2] == ("008", None, "negative", None, 2, True)  # NaN and "" as empty cells


def test_parquet_output_schema(tmp_path):
    path = write_table(MIXED, tmp_path / "out.parquet")
    schema = pq.read_schema(path)
    assert [str(field.type) for field in schema] == ["string", "string", "string", "double", "int64", "bool"]
    assert pq.read_table(path).column("confidence").to_pylist() == [0.9876, None, 0.5]  # NaN is null
    assert pd.read_parquet(path)["review"].tolist() == ["좋아요", "", "줄\n바꿈"]
    with TableWriter(tmp_path / "later.parquet") as writer:
        writer.write(MIXED.iloc[:1])
        # later chunks are cast to the first chunk's schema
        writer.write(MIXED.iloc[1:].astype({"count": "float64"}))
    assert pq.read_table(writer.path).column("count").to_pylist() == [1, 2, 3]


TYPED_ROW = [5, 4.5, dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2, 13, 45), True, "좋아요", dt.time(9, 30)]


def test_xlsx_output_keeps_the_input_cell_types(tmp_path):
    path = tmp_path / "reviews.xlsx"
    header = ["id", "price", "작성일", "작성시각", "verified", "review", "time"]
    workbook = openpyxl.Workbook()
    for row in (header, TYPED_ROW, [6, 3.0, dt.datetime(2024, 1, 3), None, False, "별로예요", None]):
        workbook.active.append(row)
    workbook.active["C2"].number_format = workbook.active["C3"].number_format = "yyyy-mm-dd"  # a date cell
    workbook.save(path)
    source = TableSource(path)
    chunks = list(source.chunks(1))
    # what predict and preprocess do to a chunk: add columns, keep some rows, and read back in one frame
    for chunk in chunks:
        chunk["label"] = ["positive"]
        chunk["confidence"] = np.array([0.9])
    table = pd.concat([chunk[np.ones(len(chunk), dtype=bool)] for chunk in chunks])
    price = table["price"].iloc[0]
    assert type(price) is cells.TypedCell and price.value == 4.5
    assert table["review"].dtype == "str" and table["price"].dtype == object  # text columns as before
    assert table[header].to_dict("list") == {
        "id": ["5", "6"],
        "price": ["4.5", "3"],
        "작성일": ["2024-01-02 00:00:00", "2024-01-03 00:00:00"],
        "작성시각": ["2024-01-02 13:45:00", ""],
        "verified": ["TRUE", "FALSE"],
        "review": ["좋아요", "별로예요"],
        "time": ["09:30:00", ""],
    }
    write_table(table, tmp_path / "out.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").active
    assert [cell.value for cell in sheet[2]] == [*TYPED_ROW, "positive", 0.9]
    assert [cell.value for cell in sheet[3]][:5] == [6, 3, dt.datetime(2024, 1, 3), None, False]
    assert [type(cell.value) for cell in sheet[2]][:5] == [int, float, dt.datetime, dt.datetime, bool]
    assert (sheet["C2"].number_format, sheet["D2"].number_format) == ("yyyy-mm-dd", "yyyy-mm-dd h:mm:ss")
    # text outputs are what the text alone gave
    as_text = table.astype({name: str for name in header})
    assert type(as_text["price"].iloc[0]) is str
    for name in ("out.csv", "out.jsonl", "out.tsv"):
        typed, plain = write_table(table, tmp_path / name), write_table(as_text, tmp_path / "plain" / name)
        assert typed.read_bytes() == plain.read_bytes()
    # .parquet keeps text: its first chunk fixes a column's type, and a later chunk may hold text in it
    assert {str(field.type) for field in pq.read_schema(write_table(table, tmp_path / "out.parquet"))} == {
        "string",
        "double",
    }
    assert pq.read_table(tmp_path / "out.parquet").column("price").to_pylist() == ["4.5", "3"]


def test_parquet_values_excel_holds_keep_their_type_in_xlsx(tmp_path):
    columns = {
        "review": pa.array(["좋아요", "별로"]),
        "stars": pa.array([5, None]),
        "id": pa.array([1234567890123456789, 1]),  # more digits than Excel keeps
        "score": pa.array([0.5, float("nan")]),  # Excel has no NaN
        "ok": pa.array([True, False]),
        "when": pa.array([dt.datetime(2024, 1, 2, 13, 45), dt.datetime(1800, 1, 1)]),  # Excel's dates start in 1900
        "day": pa.array([dt.date(2024, 1, 2), None]),
        "utc": pa.array([dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc), None]),  # Excel has no time zones
        "price": pa.array([Decimal("1.20"), None]),
    }
    path = tmp_path / "r.parquet"
    path.write_bytes(parquet_bytes(pa.table(columns)))
    table = read_table(path)
    assert table.to_dict("list")["score"] == ["0.5", "NaN"]  # the text as before
    write_table(table, tmp_path / "out.xlsx")
    rows = list(openpyxl.load_workbook(tmp_path / "out.xlsx").active.iter_rows(min_row=2, values_only=True))
    assert rows == [
        (
            "좋아요",
            5,
            "1234567890123456789",
            0.5,
            True,
            dt.datetime(2024, 1, 2, 13, 45),
            dt.datetime(2024, 1, 2),
            "2024-01-02 00:00:00+00:00",
            "1.20",
        ),
        ("별로", None, 1, "NaN", False, "1800-01-01 00:00:00", None, None, None),
    ]


@pytest.mark.parametrize("name", ["out.xlsx", "out.parquet"])
def test_outputs_without_rows_keep_the_columns(tmp_path, name):
    with TableWriter(tmp_path / name, columns=["review", "label"]):
        pass
    source = TableSource(tmp_path / name)
    assert (source.columns, source.rows) == (["review", "label"], 0)
    write_table(MIXED.iloc[:0], tmp_path / "empty" / name)
    assert TableSource(tmp_path / "empty" / name).columns == MIXED.columns.tolist()


@pytest.mark.parametrize("name", ["out.xlsx", "out.parquet"])
@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_interrupted_xlsx_and_parquet_writers_leave_the_target_alone(tmp_path, name, interruption):
    (tmp_path / name).write_text("old")
    with pytest.raises(interruption):
        with TableWriter(tmp_path / name) as writer:
            writer.write(MIXED)
            raise interruption()
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_text() == "old"
    with pytest.raises(RuntimeError):
        with TableWriter(tmp_path / "new" / name) as writer:
            raise RuntimeError()
    assert list((tmp_path / "new").iterdir()) == []


def test_xlsx_limits(tmp_path, monkeypatch):
    long_text = "가" * 40_000
    emoji_text = "😀" * 20_000  # 40,000 UTF-16 code units, as Excel counts
    table = pd.DataFrame({"review": [long_text, emoji_text, "짧다"]})
    with TableWriter(tmp_path / "long.xlsx") as writer:
        writer.write(table)
    assert writer.clipped_cells == 2
    back = read_table(writer.path)["review"].tolist()
    assert back == ["가" * 32_767, "😀" * 16_383, "짧다"]  # a pair is never cut in half
    with TableWriter(tmp_path / "long.csv") as writer:
        writer.write(table)
    assert writer.clipped_cells == 0 and read_table(writer.path)["review"].tolist() == table["review"].tolist()

    with pytest.raises(RsError, match=r"do not fit in an Excel sheet \(1,048,575 at most\); write .csv or .parquet"):
        check_output_path(tmp_path / "big.xlsx", rows=1_048_576)
    assert check_output_path(tmp_path / "big.xlsx", rows=1_048_575) == tmp_path / "big.xlsx"
    assert check_output_path(tmp_path / "big.csv", rows=10**7) == tmp_path / "big.csv"
    monkeypatch.setattr(writing, "EXCEL_MAX_ROWS", 4)  # the header and 3 rows
    with TableWriter(tmp_path / "full.xlsx") as writer:
        writer.write(MIXED)
    with pytest.raises(RsError, match="4 rows do not fit in an Excel sheet"):
        with TableWriter(tmp_path / "over.xlsx") as writer:
            writer.write(MIXED.iloc[:2])
            writer.write(MIXED.iloc[:2])
    assert not (tmp_path / "over.xlsx").exists()


def test_characters_xlsx_cannot_hold_are_removed_and_counted(tmp_path):
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    refused = [chr(code) for code in range(0x20000) if ILLEGAL_CHARACTERS_RE.match(chr(code))]
    assert refused and all(cells.XML_ILLEGAL.match(character) for character in refused)
    table = pd.DataFrame({"review\x01": ["벨\x07소리", "탭\t줄\n바꿈\r", "\x00=1+1", "a\ufffe"]})
    with TableWriter(tmp_path / "out.xlsx") as writer:
        writer.write(table)
    assert writer.replaced_characters == 4 and writer.escaped_cells == 1
    back = read_table(writer.path)
    assert back.columns.tolist() == ["review"]
    # control characters go; tabs and line breaks stay; a formula the removal uncovers is still escaped
    assert back["review"].tolist() == ["벨소리", "탭\t줄\n바꿈\r", "=1+1", "a"]
    assert openpyxl.load_workbook(writer.path).active["A4"].quotePrefix
    with TableWriter(tmp_path / "out.csv") as writer:  # text formats keep them
        writer.write(table)
    assert writer.replaced_characters == 0
    assert read_table(writer.path)["review\x01"].tolist()[0] == "벨\x07소리"


def test_table_stems_and_compressed_binary_outputs(tmp_path):
    assert table_stem("reviews.xlsx") == table_stem("reviews.parquet") == table_stem("reviews.csv.gz") == "reviews"
    for name in ("out.xlsx.gz", "out.parquet.gz"):
        with pytest.raises(RsError, match="compressed already; drop the .gz"):
            check_output_path(tmp_path / name)


@pytest.mark.parametrize("name", ["out.csv", "out.tsv", "out.jsonl", "out.xlsx", "out.parquet", "out.csv.gz"])
def test_lone_surrogates_are_replaced_in_every_format(tmp_path, name):
    # object columns: pandas' Arrow-backed str columns cannot even hold a lone surrogate
    names = pd.Index(["review\ud800", "n"], dtype=object)
    table = pd.DataFrame({0: pd.Series(["a\ud800b", "\udfff", "😀 ok"], dtype=object), 1: [1, 2, 3]})
    table.columns = names
    with TableWriter(tmp_path / name) as writer:
        writer.write(table)
    assert writer.replaced_characters == 3
    back = read_table(writer.path)
    assert back.columns.tolist() == ["review\ufffd", "n"]
    assert back["review\ufffd"].tolist() == ["a\ufffdb", "\ufffd", "😀 ok"]


FORMULAS = pd.DataFrame({"=name": ['=HYPERLINK("x")', "-1", "+82", "@a", "'=b", "ok"], "n": [-1.5, 2, 3, 4, 5, 6]})


@pytest.mark.parametrize("name", ["out.csv", "out.tsv", "out.csv.gz"])
def test_formulas_are_escaped_for_spreadsheets(tmp_path, name):
    with TableWriter(tmp_path / name) as writer:
        writer.write(FORMULAS)
    assert writer.escaped_cells == 4  # the name, =HYPERLINK, @a and '=b; numbers are left alone
    back = read_table(writer.path)
    assert back.columns.tolist() == ["'=name", "n"]
    assert back["'=name"].tolist() == ['\'=HYPERLINK("x")', "-1", "+82", "'@a", "''=b", "ok"]
    assert back["n"].tolist() == ["-1.5", "2.0", "3.0", "4.0", "5.0", "6.0"]  # a negative number is not escaped
    assert read_table(writer.path, unescape_formulas=True)["=name"].tolist() == FORMULAS["=name"].tolist()


def test_xlsx_formulas_get_excels_quote_prefix_not_a_quote(tmp_path):
    # A "'" added to a text cell would show in Excel ("'-_- 별로"); the quotePrefix style is what Excel sets when one
    # types '=1+1: the cell shows =1+1 and stays text when edited.
    with TableWriter(tmp_path / "out.xlsx") as writer:
        writer.write(FORMULAS)
    assert writer.escaped_cells == 4  # the name, =HYPERLINK, @a and '=b; numbers are left alone
    changes = writing.output_changes(None, writer)
    assert [count for what, count in changes.items() if "formula-like cells escaped with Excel's quote" in what] == [4]
    sheet = openpyxl.load_workbook(writer.path).active
    cells = [row[0] for row in sheet.iter_rows()]
    assert [cell.value for cell in cells] == ["=name", *FORMULAS["=name"]]  # the text exactly
    assert [cell.data_type for cell in cells] == ["s"] * 7  # text, never a formula
    assert [cell.quotePrefix for cell in cells] == [True, True, False, False, True, True, False]
    assert [cell.value for cell in sheet["B"][1:]] == [-1.5, 2, 3, 4, 5, 6]  # numbers stay numbers
    # nothing to undo: a leading "'" in an .xlsx cell is the user's own
    for unescape in (False, True):
        back = read_table(writer.path, unescape_formulas=unescape)
        assert back["=name"].tolist() == FORMULAS["=name"].tolist()
    with TableWriter(tmp_path / "raw.xlsx", escape_formulas=False) as writer:
        writer.write(FORMULAS)
    assert writer.escaped_cells == 0 and not writing.output_changes(None, writer)
    cells = [row[0] for row in openpyxl.load_workbook(writer.path).active.iter_rows()]
    assert not any(cell.quotePrefix for cell in cells)
    assert [cell.value for cell in cells] == ["=name", *FORMULAS["=name"]]


@pytest.mark.parametrize("name", ["out.jsonl", "out.parquet"])
def test_formulas_are_not_escaped_in_data_formats(tmp_path, name):
    with TableWriter(tmp_path / name) as writer:
        writer.write(FORMULAS)
    assert writer.escaped_cells == 0
    assert read_table(writer.path)["=name"].tolist() == FORMULAS["=name"].tolist()
    # nothing to undo: unescaping leaves the raw text alone
    assert read_table(writer.path, unescape_formulas=True)["=name"].tolist() == FORMULAS["=name"].tolist()


def test_escaping_can_be_turned_off(tmp_path):
    table = pd.DataFrame({"review": ["=1+1", "#N/A", "-x"]})
    write_table(table, tmp_path / "out.csv", escape_formulas=False)
    assert read_table(tmp_path / "out.csv").equals(table)
    with TableWriter(tmp_path / "out.xlsx", escape_formulas=False) as writer:
        writer.write(table)
    assert writer.escaped_cells == 0
    cells = [row[0] for row in openpyxl.load_workbook(writer.path).active.iter_rows(min_row=2)]
    assert [(cell.value, cell.data_type) for cell in cells] == [("=1+1", "s"), ("#N/A", "s"), ("-x", "s")]
    assert not any(cell.quotePrefix for cell in cells)
    assert read_table(writer.path).equals(table)  # stored as text, never as a formula or an error value


def test_escaped_csv_reads_back_as_the_original_table(tmp_path):
    table = pd.DataFrame(
        {
            "@id": ["-", "''+1", "'", "=\n줄", "\t탭", "\r\n윈도 줄바꿈"],
            "review": ["좋아요", "-1e5", "'-x", "+", "@@", "_x0041_ 그대로"],
        }
    )
    for name in ("out.csv", "out.tsv", "out.xlsx"):
        path = write_table(table, tmp_path / name)
        assert read_table(path).equals(table) == name.endswith(".xlsx")  # .xlsx escapes with a style, not a "'"
        assert read_table(path, unescape_formulas=True).equals(table)
