"""review_sentiment.io.reading: formats, encodings, delimiters, sheets and cells read as text."""

import datetime as dt
import gzip
import io
import re
import zipfile
from decimal import Decimal

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from review_sentiment.errors import RsError
from review_sentiment.io import (
    TableSource,
    TableWriter,
    find_text_column,
    read_table,
    reading,
    writing,
)
from review_sentiment.io.reading import BLOCK_SIZE
from tests.conftest import parquet_bytes


def xlsx_bytes(*sheets: tuple[str, list[list]]) -> bytes:
    """A workbook made by openpyxl with the given sheets (title, rows), as the bytes of an .xlsx file."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def patched_xlsx(path, data: bytes, sheet_xml_changes: dict[bytes, bytes]):
    """Write `data` (an .xlsx file) to `path` with bytes of its first sheet's XML replaced, each found once: for
    what openpyxl cannot write, such as a formula's calculated value."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    for old, new in sheet_xml_changes.items():
        assert parts[sheet].count(old) == 1, old
        parts[sheet] = parts[sheet].replace(old, new)
    with zipfile.ZipFile(path, "w") as archive:
        for name, part in parts.items():
            archive.writestr(name, part)
    return path


def xlsx_path(tmp_path, rows, name="book.xlsx"):
    path = tmp_path / name
    path.write_bytes(xlsx_bytes(("Sheet", rows)))
    return path


def hidden_sheet_workbook(path, first_hidden=False):
    workbook = openpyxl.Workbook()
    workbook.active.title = "표지"  # visible, empty
    workbook.create_sheet("숨김").append(["memo"])
    workbook["숨김"].append(["숨은 시트"])
    workbook["숨김"].sheet_state = "hidden"
    workbook.create_sheet("Sheet2").append(["review"])
    workbook["Sheet2"].append(["좋아요"])
    if first_hidden:
        workbook.move_sheet("숨김", offset=-1)
        workbook.active = 1
    workbook.save(path)


def _workbook(path, rows):
    import openpyxl

    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def test_cells_are_read_verbatim(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,rating,review\n007,5,"좋아요, 정말"\n008,,\n009,NA,"줄\n바꿈"\n', encoding="utf-8")
    table = read_table(path)
    assert table["id"].tolist() == ["007", "008", "009"]  # leading zeros kept
    assert table["rating"].tolist() == ["5", "", "NA"]  # NA is not turned into NaN
    assert table["review"].tolist() == ["좋아요, 정말", "", "줄\n바꿈"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_common_korean_encodings(tmp_path, encoding):
    path = tmp_path / "reviews.csv"
    path.write_bytes("review,label\n배송이 빨라요,긍정\n".encode(encoding))
    assert read_table(path).columns.tolist() == ["review", "label"]
    assert read_table(path)["review"][0] == "배송이 빨라요"


def test_euc_kr_syllables_outside_ks_x_1001_are_read_whole(tmp_path):
    # Python's euc-kr codec (pandas' to_csv(encoding="euc-kr")) writes 됬 as the Hangul filler and three jamo,
    # 8 bytes that cp949 reads as 'ㅤㄷㅚㅆ'.
    text = "review,label\n됬어요 닼 좋아,긍정\n배송이 빨라요,\n"
    assert "됬".encode("euc-kr").startswith(b"\xa4\xd4") and "됬".encode("euc-kr").decode("cp949") == "ㅤㄷㅚㅆ"
    path = tmp_path / "pandas.csv"
    path.write_bytes(text.encode("euc-kr"))
    assert TableSource(path).encoding == "euc-kr"
    assert read_table(path)["review"].tolist() == ["됬어요 닼 좋아", "배송이 빨라요"]
    # a sequence split between the blocks the encoding check reads, and among many more for the reader's buffers
    data = b"review\n" + b"a" * (BLOCK_SIZE - 8) + ("됬\n" + "닼 리뷰\n" * 5000).encode("euc-kr")
    assert data[BLOCK_SIZE - 1 : BLOCK_SIZE + 1] == b"\xa4\xd4"
    (tmp_path / "big.csv").write_bytes(data)
    assert read_table(tmp_path / "big.csv")["review"].tolist() == ["a" * (BLOCK_SIZE - 8) + "됬"] + ["닼 리뷰"] * 5000


def test_cp949_with_a_hangul_filler_stays_cp949(tmp_path):
    # 똠 has a cp949 code of its own (outside euc-kr's byte range); a real filler followed by jamo stays as it is.
    assert "똠".encode("cp949") == b"\x8c\x63"
    for text in ("review\n똠방각하 ㅤㄷㅚㅆ\n", "review\nㅤ 빈칸 문자\n", "review\n쀍 ㅤ\n"):
        path = tmp_path / "cp949.csv"
        path.write_bytes(text.encode("cp949"))
        assert b"\xa4\xd4" in path.read_bytes()
        assert TableSource(path).encoding == "cp949"
        assert read_table(path)["review"].tolist() == [text.split("\n")[1]]
    # a forced encoding is used as given
    path.write_bytes("review\n됬다\n".encode("euc-kr"))
    assert read_table(path, encoding="cp949")["review"].tolist() == ["ㅤㄷㅚㅆ다"]


def test_tsv_txt_and_jsonl(tmp_path):
    (tmp_path / "a.tsv").write_text("review\tlabel\n좋아요\t긍정\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("첫 리뷰\n\n셋째 리뷰\n", encoding="utf-8")
    (tmp_path / "c.jsonl").write_text('{"text": "좋아요", "stars": 5}\n{"text": null, "stars": 1}\n', encoding="utf-8")
    assert read_table(tmp_path / "a.tsv")["label"].tolist() == ["긍정"]
    assert read_table(tmp_path / "b.txt")["text"].tolist() == ["첫 리뷰", "", "셋째 리뷰"]
    assert read_table(tmp_path / "c.jsonl")["text"].tolist() == ["좋아요", ""]


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(RsError, match="No such file"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.docx").write_bytes(b"PK")
    with pytest.raises(RsError, match="rs reads"):
        read_table(tmp_path / "x.docx")


def test_tab_separated_txt_is_read_as_a_table(tmp_path):
    # NSMC's ratings_train.txt layout; a quote inside a review is plain text, not CSV quoting.
    path = tmp_path / "ratings_train.txt"
    path.write_text('id\tdocument\tlabel\n1\t"진짜 최고\t1\n2\t별로.. 돈 아까움\t0\n', encoding="utf-8")
    table = read_table(path)
    assert table.columns.tolist() == ["id", "document", "label"]
    assert table["document"].tolist() == ['"진짜 최고', "별로.. 돈 아까움"]


def test_trailing_delimiters_do_not_shift_columns(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("id,review,rating\n1,좋아요,5,\n2,별로예요,1,\n", encoding="utf-8")
    table = read_table(path)
    assert table.to_dict("list") == {"id": ["1", "2"], "review": ["좋아요", "별로예요"], "rating": ["5", "1"]}


def test_extra_fields_are_an_error_not_a_shift(tmp_path):
    path = tmp_path / "unquoted.csv"
    path.write_text("id,review\n1,좋아요, 정말\n", encoding="utf-8")
    with pytest.raises(RsError, match="line 2: 3 fields but the header has 2"):
        read_table(path)


def test_short_rows_are_padded(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("id,review,rating\n1,좋아요\n", encoding="utf-8")
    assert read_table(path).iloc[0].tolist() == ["1", "좋아요", ""]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_with_another_delimiter(tmp_path, delimiter):
    path = tmp_path / "export.csv"
    path.write_text(f"review{delimiter}rating\n좋아요, 정말{delimiter}5\n별로{delimiter}1\n", encoding="utf-8")
    assert read_table(path).to_dict("list") == {"review": ["좋아요, 정말", "별로"], "rating": ["5", "1"]}


def test_tab_separated_txt_with_a_bad_line_is_an_error(tmp_path):
    lines = ["id\tdocument\tlabel"] + [f"{i}\t리뷰 {i}\t1" for i in range(30)] + ["99\t탭이\t들어간 리뷰\t1"]
    (tmp_path / "ratings.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RsError, match="line 32: 4 fields"):
        read_table(tmp_path / "ratings.txt")


def test_txt_lines_split_only_at_line_breaks(tmp_path):
    (tmp_path / "p.txt").write_text("좋아요\u2028정말\n별로\x0c예요\r\n그냥\n", encoding="utf-8")
    assert read_table(tmp_path / "p.txt")["text"].tolist() == ["좋아요\u2028정말", "별로\x0c예요", "그냥"]


def test_utf16_with_bom_and_unknown_encoding(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("review,rating\n좋아요,5\n", encoding="utf-16")
    assert read_table(path)["review"].tolist() == ["좋아요"]
    with pytest.raises(RsError, match="Unknown encoding 'nonsense'"):
        read_table(path, encoding="nonsense")


def test_undecodable_file_names_the_byte(tmp_path):
    path = tmp_path / "junk.csv"
    path.write_bytes(b"review\n" + bytes([0xFF, 0xFE, 0x81, 0x00]) * 3)
    with pytest.raises(RsError, match="at byte 7.*--encoding"):
        read_table(path)


def test_jsonl_values_stay_json(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"review": "좋아요", "id": "007", "meta": {"a": 1}}\n{"review": "별로", "score": 1.5}\n')
    table = read_table(path)
    assert table.to_dict("list") == {
        "review": ["좋아요", "별로"],
        "id": ["007", ""],
        "meta": ['{"a": 1}', ""],
        "score": ["", "1.5"],
    }


STREAMED_FILES = {
    # duplicate names, a quoted CRLF, a blank line, a trailing empty field, a short row
    "r.csv": 'id,review,review\n1,"좋아요, 정말",a\n\n2,"줄\r\n바꿈",b\n3,x,y,,\n4\n5,"",\n'.encode(),
    "r.tsv": "review\tlabel\n좋아요\t1\n별로\t\n\n그냥\t0\n".encode(),
    "r.txt": "첫 리뷰\r\n\n셋째\r넷째\u2028끝\n다섯".encode(),
    "ratings.txt": 'id\tdocument\tlabel\n1\t"진짜 최고\t1\n2\t별로.. 돈\t0\n3\t"\t1\n'.encode(),
    "r.jsonl": '{"review": "좋아요", "id": "007"}\n\n{"review": null, "meta": {"a": 1}}\n{"x": 1.5}\n'.encode(),
    "r.csv.gz": gzip.compress("review,label\n좋아요,1\n별로,0\n그냥,\n".encode()),
    "utf16.csv": "review,rating\n좋아요,5\n별로,1\n그냥,3\n".encode("utf-16"),
    "cp949.csv": "review,label\n배송이 빨라요,긍정\n별로,부정\n그냥,\n".encode("cp949"),
    # an empty row, a row wider than the header, a number
    "r.xlsx": xlsx_bytes(("Sheet", [["review", "stars"], ["좋아요", 5], [], ["별로", 1, "extra"], ["그냥"]])),
    # several row groups, so that batches and chunks do not line up
    "r.parquet": parquet_bytes(
        pa.table({"review": ["좋아요", None, "그냥", "별로", "최고"], "stars": [5, 1, None, 2, 4]}), row_group_size=2
    ),
}


@pytest.mark.parametrize("name", STREAMED_FILES)
def test_chunks_concatenate_to_the_whole_table(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(STREAMED_FILES[name])
    whole = read_table(path)
    source = TableSource(path)
    assert source.rows == len(whole) >= 3
    assert source.columns == whole.columns.tolist()
    for size in (1, 2, 3, 1000):
        chunks = list(source.chunks(size))
        assert all(len(chunk) <= size for chunk in chunks) and len(chunks) == -(-len(whole) // size)
        pd.testing.assert_frame_equal(pd.concat(chunks), whole, check_exact=True, check_index_type=True)


def test_a_file_without_rows_gives_one_empty_chunk(tmp_path):
    path = tmp_path / "header.csv"
    path.write_bytes(b"\xef\xbb\xbfreview,label\n")
    source = TableSource(path, encoding="utf-8")  # a forced encoding keeps the BOM; it is not part of the name
    assert (source.rows, source.columns) == (0, ["review", "label"])
    [chunk] = source.chunks(10)
    assert chunk.empty and chunk.columns.tolist() == ["review", "label"]


def test_undecodable_byte_after_the_first_block_is_named_exactly(tmp_path):
    # "가" (EA B0 80 in UTF-8) straddles the first block boundary: UTF-8 decodes it; cp949 reads EA B0 as one
    # character and fails at the 80 after it. The 0xFF further on is where UTF-8 fails.
    data = b"review\n" + b"a" * (BLOCK_SIZE - 8) + "가".encode() + b"b" * 99 + b"\xff\n"
    assert data[BLOCK_SIZE - 1 : BLOCK_SIZE + 2] == "가".encode()
    (tmp_path / "big.csv").write_bytes(data)
    utf8_at, cp949_at = BLOCK_SIZE + 101, BLOCK_SIZE + 1
    for encoding, offset in (("utf-8", utf8_at), ("cp949", cp949_at)):
        with pytest.raises(UnicodeDecodeError) as error:
            data.decode(encoding)
        assert error.value.start == offset
    with pytest.raises(RsError, match=f"as utf-8-sig at byte {utf8_at}; as cp949 at byte {cp949_at}\\)"):
        TableSource(tmp_path / "big.csv")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfreview\n\xff\n")
    with pytest.raises(RsError, match="as utf-8-sig at byte 10;"):  # counted from the file's start, BOM included
        read_table(tmp_path / "bom.csv")


def test_utf16_without_bom_when_forced(tmp_path):
    path = tmp_path / "le.csv"
    path.write_bytes("review\n좋아요\n".encode("utf-16-le"))
    assert read_table(path, encoding="utf-16")["review"].tolist() == ["좋아요"]


def test_bad_row_in_a_later_chunk_names_its_line(tmp_path):
    rows = [f'{i},"리뷰\n{i}"' for i in range(50)]  # two lines each
    path = tmp_path / "long.csv"
    path.write_text("id,review\n" + "\n".join(rows) + "\n51," + "긴 리뷰 " * 20000 + ",oops\n", encoding="utf-8")
    with pytest.raises(RsError, match="line 102: 3 fields but the header has 2"):
        TableSource(path)
    path = tmp_path / "late.jsonl"
    path.write_text('{"a": 1}\n' * 30 + '{"a": 2\n', encoding="utf-8")
    with pytest.raises(RsError, match="line 31: not valid JSON"):
        TableSource(path)


def test_an_unclosed_quote_is_an_error_not_one_merged_row(tmp_path):
    # Without strict parsing the quoted field swallows the rest of the file: one row, exit 0.
    path = tmp_path / "reviews.csv"
    path.write_text('id,review,rating\n3,"닫히지 않은 따옴표 리뷰,3\n4,정상 리뷰,5\n5,또 정상,1\n', encoding="utf-8")
    message = "reviews.csv, line 2: a quoted field opened here never closes (read to line 4). Close the quote"
    with pytest.raises(RsError, match=re.escape(message)):
        TableSource(path)
    # after a legitimate multi-line review, the broken row's own start is named
    path.write_text('id,review\n1,"줄\n바꿈"\n2,"열린 채\n3,끝\n', encoding="utf-8")
    with pytest.raises(RsError, match="line 4: a quoted field opened here never closes \\(read to line 5\\)"):
        TableSource(path)


def test_text_after_a_closing_quote_is_an_error(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,review\n1,"좋아요"라고 했어요\n', encoding="utf-8")  # lenient parsing drops the quotes
    with pytest.raises(RsError, match=r'line 2: text follows the closing quote .* as two \(""\)'):
        TableSource(path)
    # a stray quote closes at the next quote, rows later
    path.write_text('id,review,rating\n3,"닫히지 않은 리뷰,3\n4,정상,5\n5,"또 다른",1\n', encoding="utf-8")
    message = "lines 2-4: text follows a closing quote on line 4; a quote opened on line 2 may be missing its closing"
    with pytest.raises(RsError, match=message):
        TableSource(path)


def test_too_many_fields_over_several_lines_names_where_the_row_starts(tmp_path):
    rows = [f'{i},"리뷰\n{i}"' for i in range(50)]  # two lines each: rows start on lines 2, 4, ..., 100
    stray = '51,"따옴표가 안 닫힘\n52,정상\n53,다음 따옴표",에서,닫힘\n'  # lines 102-104 merge into one row
    path = tmp_path / "long.csv"
    path.write_text("id,review\n" + "\n".join(rows) + "\n" + stray, encoding="utf-8")
    message = "lines 102-104: 4 fields but the header has 2 (delimiter: comma); a quote opened on line 102 may be"
    with pytest.raises(RsError, match=re.escape(message)):
        TableSource(path)


def test_legitimate_quotes_still_read(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text('id,review\n1,"그가 ""최고""라고,\n했다"\n2,따옴표"가 중간에\n', encoding="utf-8")
    assert read_table(path)["review"].tolist() == ['그가 "최고"라고,\n했다', '따옴표"가 중간에']


def test_xlsx_cells_become_text(tmp_path):
    path = tmp_path / "reviews.xlsx"
    rows = [
        [],  # the header is the first non-empty row
        ["review", None, "stars", "review"],  # an empty header cell, a duplicate name
        ["좋아요", "x", 5.0, True, None, "beyond the header"],
        [None, None],  # an empty row is skipped
        ["=1+1", None, 0.1, False, dt.datetime(2024, 1, 2, 13, 45), dt.date(2024, 1, 2)],
    ]
    path.write_bytes(xlsx_bytes(("첫 시트", rows), ("other", [["a"], [1]])))
    source = TableSource(path, encoding="cp949")  # an encoding is ignored for a workbook
    assert (source.sheet, source.rows) == ("첫 시트", 2)
    assert source.columns == ["review", "column_2", "stars", "review.1", "column_5", "column_6"]
    assert read_table(path).to_dict("list") == {
        # openpyxl saves no calculated value for a formula: it reads as its formula text.
        "review": ["좋아요", "=1+1"],
        "column_2": ["x", ""],
        "stars": ["5", "0.1"],  # Excel stores 5 as 5.0
        "review.1": ["TRUE", "FALSE"],
        "column_5": ["", "2024-01-02 13:45:00"],
        "column_6": ["beyond the header", "2024-01-02 00:00:00"],  # Excel has no date without a time
    }


def test_xlsx_formula_gives_its_cached_value(tmp_path):
    # A workbook Excel saved holds each formula's last value beside it; openpyxl cannot write one, so patch it in.
    path = tmp_path / "cached.xlsx"
    path.write_bytes(xlsx_bytes(("Sheet", [["review", "total"], ["좋아요", "=1+1"]])))
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    assert b"<f>1+1</f><v />" in parts[sheet]
    parts[sheet] = parts[sheet].replace(b"<f>1+1</f><v />", b"<f>1+1</f><v>2</v>")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    assert read_table(path)["total"].tolist() == ["2"]


def test_xlsx_formula_never_calculated_reads_as_its_text(tmp_path):
    # pandas and openpyxl store text that starts with "=" as a formula, and no calculated value beside it: the
    # review must not read as "".
    path = tmp_path / "script.xlsx"
    pd.DataFrame({"review": ["=정말 최고예요", "좋아요", "=1+1"], "stars": [5, 4, 3]}).to_excel(path, index=False)
    with zipfile.ZipFile(path) as archive:
        assert "<f>정말 최고예요</f><v />".encode() in archive.read("xl/worksheets/sheet1.xml")
    source = TableSource(path)
    assert (source.rows, source.uncalculated_formulas) == (3, 2)
    assert read_table(path)["review"].tolist() == ["=정말 최고예요", "좋아요", "=1+1"]
    assert pd.concat(source.chunks(1))["review"].tolist() == ["=정말 최고예요", "좋아요", "=1+1"]
    with TableWriter(tmp_path / "out.csv") as writer:
        pass
    assert writing.output_changes(source, writer) == {
        "formula cell(s) without a calculated value read as their formula text (a file written by a script, never "
        "opened in Excel)": 2
    }
    assert writing.output_changes(TableSource(xlsx_path(tmp_path, [["review"], ["좋아요"]])), writer) == {}
    # with a title above the header: the header scan and the chunks agree; the header's formula text names its
    # column and is counted
    rows = [["2024년 리뷰 export"], ["=리뷰", "별점"], ["=정말 최고예요", 5], ["좋아요", "=B3+1"]]
    source = TableSource(xlsx_path(tmp_path, rows, "titled.xlsx"))
    assert (source.title_rows, source.columns, source.rows, source.uncalculated_formulas) == (
        1,
        ["=리뷰", "별점"],
        2,
        3,
    )
    assert read_table(source.path).to_dict("list") == {"=리뷰": ["=정말 최고예요", "좋아요"], "별점": ["5", "=B3+1"]}


def test_xlsx_formulas_excel_calculated_keep_their_value(tmp_path):
    data = xlsx_bytes(("Sheet", [["review", "total", "note"], ["좋아요", "=1+1", '=IF(B2>5,"많음","")'], ["=A2"]]))
    path = patched_xlsx(
        tmp_path / "excel.xlsx",
        data,
        {
            b"<f>1+1</f><v />": b"<f>1+1</f><v>2</v>",
            # Excel stores a formula that gave "" as a string cell with an empty value
            b'<c r="C2"><f>': b'<c r="C2" t="str"><f>',
        },
    )
    source = TableSource(path)
    assert read_table(path).to_dict("list") == {"review": ["좋아요", "=A2"], "total": ["2", ""], "note": ["", ""]}
    assert source.uncalculated_formulas == 1  # =A2 alone


def test_only_a_sheet_with_a_formula_without_value_is_read_twice(tmp_path):
    def has_formula_without_value(path):
        workbook = openpyxl.load_workbook(path, read_only=True)
        try:
            return reading._has_formula_without_value(workbook.worksheets[0])
        finally:
            workbook.close()

    plain = xlsx_path(tmp_path, [["review", "stars"], ["좋아요 <f>", 5], ["</f><v/>", None]], "plain.xlsx")
    assert not has_formula_without_value(plain)  # text that looks like XML is escaped in the XML
    calculated = patched_xlsx(
        tmp_path / "calculated.xlsx",
        xlsx_bytes(("Sheet", [["review", "total"], ["좋아요", "=1+1"]])),
        {b"<f>1+1</f><v />": b"<f>1+1</f><v>2</v>"},
    )
    assert not has_formula_without_value(calculated)
    assert has_formula_without_value(xlsx_path(tmp_path, [["review"], ["=정말 최고예요"]], "formula.xlsx"))
    # a shared formula's later cells have no text of their own; a formula without any <v>; a namespace prefix
    for cell in (b'<f t="shared" si="0"/><v/>', b"<f>A1</f></c>", b"<x:f>A1</x:f>\n  <x:v></x:v>"):
        assert reading._FORMULA_WITHOUT_VALUE.search(b'<c r="A2">' + cell)
    assert not reading._FORMULA_WITHOUT_VALUE.search(b'<c r="A2"><f t="shared" si="0"/><v>3</v></c>')


def test_xlsx_sheet_by_name_or_number(tmp_path):
    path = tmp_path / "book.xlsx"
    path.write_bytes(xlsx_bytes(("리뷰", [["review"], ["첫째"]]), ("2", [["review"], ["둘째"]]), ("c", [["x"], ["y"]])))
    assert read_table(path)["review"].tolist() == ["첫째"]  # the first sheet by default
    assert read_table(path, sheet="리뷰")["review"].tolist() == ["첫째"]
    assert read_table(path, sheet="3")["x"].tolist() == ["y"]
    assert read_table(path, sheet=3)["x"].tolist() == ["y"]
    assert read_table(path, sheet="C")["x"].tolist() == ["y"]  # Excel's sheet names ignore case
    assert read_table(path, sheet="2")["review"].tolist() == ["둘째"]  # a sheet named 2 before the second sheet
    for wrong in ("nope", "4", 0):
        with pytest.raises(RsError, match=r"no sheet .* Its sheets: '리뷰', '2', 'c'; pass --sheet"):
            TableSource(path, sheet=wrong)
    (tmp_path / "r.csv").write_text("review\n좋아요\n", encoding="utf-8")
    with pytest.raises(RsError, match="--sheet applies to .xlsx files only"):
        TableSource(tmp_path / "r.csv", sheet="1")


def test_sheet_numbers_count_visible_sheets_only(tmp_path):
    # Excel shows no tab for a hidden sheet: --sheet 2 is the second tab the user sees.
    path = tmp_path / "book.xlsx"
    hidden_sheet_workbook(path)
    assert TableSource(path, sheet=2).sheet == "Sheet2"
    assert read_table(path, sheet="2")["review"].tolist() == ["좋아요"]
    assert TableSource(path, sheet="숨김").sheet == "숨김"  # a name finds any sheet
    empty = "sheet '표지' is empty. Its other sheets: '숨김' (hidden), 'Sheet2'; pass --sheet NAME."
    for sheet in (None, 1):
        with pytest.raises(RsError, match=re.escape(empty)):
            TableSource(path, sheet=sheet)
    message = "no sheet '3'. Its sheets: '표지', '숨김' (hidden), 'Sheet2'; pass --sheet with one of those names or a "
    with pytest.raises(RsError, match=re.escape(message + "number from 1 to 2 (hidden sheets are not counted).")):
        TableSource(path, sheet=3)
    hidden_sheet_workbook(path, first_hidden=True)
    assert openpyxl.load_workbook(path).sheetnames == ["숨김", "표지", "Sheet2"]
    for sheet in (None, 1):  # the default is the first visible sheet
        with pytest.raises(RsError, match="sheet '표지' is empty"):
            TableSource(path, sheet=sheet)
    assert TableSource(path, sheet=2).sheet == "Sheet2"


def test_xlsx_with_wrong_stored_dimensions_is_read_whole(tmp_path):
    # Some tools store a wrong size; openpyxl's read-only mode would cut the rows and columns to it.
    path = tmp_path / "sized.xlsx"
    path.write_bytes(xlsx_bytes(("Sheet", [["review", "stars"], ["좋아요", 5], ["별로", 1, "extra"]])))
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet], count = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:A2"', parts[sheet])
    assert count == 1
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    source = TableSource(path)
    assert (source.rows, source.columns) == (2, ["review", "stars", "column_3"])
    assert read_table(path)["column_3"].tolist() == ["", "extra"]


def test_files_that_are_not_xlsx(tmp_path):
    (tmp_path / "renamed.xlsx").write_text("review\n좋아요\n", encoding="utf-8")
    with pytest.raises(RsError, match=r"renamed.xlsx is not a valid .xlsx workbook .*save it from Excel"):
        TableSource(tmp_path / "renamed.xlsx")
    with zipfile.ZipFile(tmp_path / "zip.xlsx", "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    with pytest.raises(RsError, match="zip.xlsx is not a valid .xlsx workbook"):
        TableSource(tmp_path / "zip.xlsx")
    # Excel 97-2003 files and password-protected workbooks are OLE2 containers
    (tmp_path / "locked.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(RsError, match="old .xls or a password-protected workbook; save it from Excel as .xlsx"):
        TableSource(tmp_path / "locked.xlsx")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(RsError, match="old Excel .xls files are not supported; save it as .xlsx or .csv"):
        TableSource(tmp_path / "old.xls")
    (tmp_path / "packed.xlsx.gz").write_bytes(gzip.compress(xlsx_bytes(("S", [["a"]]))))
    with pytest.raises(RsError, match="compressed already"):
        TableSource(tmp_path / "packed.xlsx.gz")
    (tmp_path / "empty.xlsx").write_bytes(xlsx_bytes(("빈 시트", [[], [None, None]])))
    with pytest.raises(RsError, match="sheet '빈 시트' is empty"):
        TableSource(tmp_path / "empty.xlsx")


NOT_TEXT = {
    # name: (content, the message; not "Cannot decode ... Pass --encoding")
    "reviews.csv": (gzip.compress(b"review\nx\n"), "reviews.csv is gzip-compressed: name it reviews.csv.gz and rs"),
    "book.csv": (xlsx_bytes(("S", [["review"]])), "book.csv is an Excel workbook, not text: rename it to book.xlsx"),
    "archive.tsv": (b"PK\x03\x04" + bytes(40), "archive.tsv is a zip file, not text: if it is an Excel workbook"),
    "old.txt": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "old.txt is an old Excel .xls"),
    "data.jsonl": (
        parquet_bytes(pa.table({"a": [1]})),
        "data.jsonl is a Parquet file, not text: rename it to data.parquet",
    ),
    "plain.csv.gz": (b"review\nx\n", "plain.csv.gz is not gzip-compressed: drop the .gz"),
    "inner.csv.gz": (gzip.compress(parquet_bytes(pa.table({"a": [1]}))), "inner.csv.gz holds a Parquet file"),
}


@pytest.mark.parametrize("name", NOT_TEXT)
def test_binary_files_under_a_text_name_are_named(tmp_path, name):
    content, message = NOT_TEXT[name]
    (tmp_path / name).write_bytes(content)
    for encoding in (None, "latin-1"):  # even an encoding that decodes any bytes
        with pytest.raises(RsError, match=re.escape(message)):
            TableSource(tmp_path / name, encoding)


def test_parquet_cells_become_text(tmp_path):
    columns = {
        "review": pa.array(["좋아요", None, ""]),
        "stars": pa.array([5, None, -1]),
        "score": pa.array([5.0, 0.1, float("nan")]),
        "score32": pa.array([0.1, 2.5, None], type=pa.float32()),
        "ok": pa.array([True, False, None]),
        "tags": pa.array([["배송", "포장"], [], None]),
        "meta": pa.array([{"a": 1, "b": "가"}, None, {"a": None, "b": "x"}]),
        "map": pa.array([[("k", 1)], [], None], type=pa.map_(pa.string(), pa.int64())),
        "when": pa.array([dt.datetime(2024, 1, 2, 13, 45), None, dt.datetime(2024, 1, 2)]),
        "day": pa.array([dt.date(2024, 1, 2), None, None]),
        "raw": pa.array([b"\xea\xb0\x80", b"\xff", None]),
        "price": pa.array([Decimal("1.20"), None, Decimal("-3")]),
    }
    path = tmp_path / "r.parquet"
    path.write_bytes(parquet_bytes(pa.table(columns)))
    source = TableSource(path)
    assert (source.rows, source.columns) == (3, list(columns))
    assert read_table(path).to_dict("list") == {
        "review": ["좋아요", "", ""],
        "stars": ["5", "", "-1"],
        "score": ["5.0", "0.1", "NaN"],  # the column is float: 5.0 stays 5.0, as JSON writes it
        "score32": ["0.1", "2.5", ""],  # float32's own shortest form, not 0.10000000149011612
        "ok": ["true", "false", ""],
        "tags": ['["배송", "포장"]', "[]", ""],
        "meta": ['{"a": 1, "b": "가"}', "", '{"a": null, "b": "x"}'],
        "map": ['{"k": 1}', "[]", ""],
        "when": ["2024-01-02 13:45:00", "", "2024-01-02 00:00:00"],
        "day": ["2024-01-02", "", ""],
        "raw": ["가", "\ufffd", ""],
        "price": ["1.20", "", "-3.00"],  # the column's scale is 2
    }


def test_parquet_duplicate_names_and_invalid_files(tmp_path):
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["review", "review"])
    (tmp_path / "dup.parquet").write_bytes(parquet_bytes(table))
    assert read_table(tmp_path / "dup.parquet").to_dict("list") == {"review": ["a"], "review.1": ["b"]}
    (tmp_path / "fake.parquet").write_text("review\n좋아요\n", encoding="utf-8")
    with pytest.raises(RsError, match="fake.parquet is not a valid Parquet file"):
        TableSource(tmp_path / "fake.parquet")
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(RsError, match="empty.parquet is not a valid Parquet file"):
        TableSource(tmp_path / "empty.parquet")


def test_lone_surrogates_in_jsonl_input_are_replaced(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = ['{"review": "a\\ud800b", "tags": ["\\udc00"]}', '{"review": "\\ud83d\\ude00 fine", "k\\udfff": 1}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = TableSource(path)
    assert source.replaced_characters == 3
    assert source.columns == ["review", "tags", "k\ufffd"]
    assert read_table(path).to_dict("list") == {
        "review": ["a\ufffdb", "😀 fine"],  # an escaped pair is one character, not two surrogates
        "tags": ['["\ufffd"]', ""],
        "k\ufffd": ["", "1"],
    }


def test_xlsx_text_escapes_are_decoded(tmp_path):
    # Excel stores a carriage return as _x000D_ and text that looks like an escape with _x005F_ before it;
    # openpyxl passes both through, rs decodes them as Excel does.
    path = tmp_path / "excel.xlsx"
    path.write_bytes(xlsx_bytes(("S", [["review"], ["줄_x000D_\n바꿈"], ["_x005F_x0041_"], ["bad _xD800_"]])))
    assert read_table(path)["review"].tolist() == ["줄\r\n바꿈", "_x0041_", "bad \ufffd"]


def test_a_title_sheet_first_points_to_the_other_sheets(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.title = "요약"
    workbook.active.append(["월간 리뷰 보고서"])
    workbook.create_sheet("리뷰").append(["review"])
    workbook["리뷰"].append(["좋아요"])
    workbook.save(tmp_path / "report.xlsx")
    with pytest.raises(RsError, match="first sheet, '요약', has no rows.*'리뷰'; pass --sheet"):
        TableSource(tmp_path / "report.xlsx")
    assert TableSource(tmp_path / "report.xlsx", sheet="리뷰").rows == 1
    assert TableSource(tmp_path / "report.xlsx", sheet="1").rows == 0  # asked for by name: an empty table is fine


def test_other_sheets_hint_for_column_errors(tmp_path):
    # The first sheet has columns but no review text: the column error names the other sheets.
    (tmp_path / "report.xlsx").write_bytes(
        xlsx_bytes(("표지", [["항목", "값"], ["기간", "3월"]]), ("리뷰", [["review"], ["좋아요"]]))
    )
    source = TableSource(tmp_path / "report.xlsx")
    hint = " It is sheet '표지' of report.xlsx; its other sheets: '리뷰'. Pass --sheet NAME."
    assert source.other_sheets_hint == hint
    with pytest.raises(RsError, match=re.escape("Columns: ['항목', '값']. Pass --text-col NAME." + hint)):
        find_text_column(source.columns, hint=source.other_sheets_hint)
    with pytest.raises(RsError, match=re.escape("Columns: ['항목', '값']." + hint)):
        find_text_column(source.columns, "review", hint=source.other_sheets_hint)
    assert TableSource(tmp_path / "report.xlsx", sheet="리뷰").other_sheets_hint.startswith(" It is sheet '리뷰'")
    # one sheet, or not a workbook: no hint
    (tmp_path / "single.xlsx").write_bytes(xlsx_bytes(("S", [["id"], ["1"]])))
    (tmp_path / "r.csv").write_text("id,memo\n1,x\n", encoding="utf-8")
    assert (
        TableSource(tmp_path / "single.xlsx").other_sheets_hint
        == TableSource(tmp_path / "r.csv").other_sheets_hint
        == ""
    )
    with pytest.raises(RsError, match=r"Pass --text-col NAME\.$"):
        find_text_column(TableSource(tmp_path / "r.csv").columns)


@pytest.mark.parametrize(("written", "forced"), [("utf-8-sig", "utf-16"), ("utf-8", "latin-1"), ("cp949", "latin-1")])
def test_a_forced_encoding_that_garbles_korean_is_refused(tmp_path, written, forced):
    path = tmp_path / "reviews.csv"
    data = "id,review\n1,배송이 빨라요\n2,별로예요 다신 안 사요\n3,그냥 그래요\n".encode(written)
    path.write_bytes(data + b"\n" * (len(data) % 2))  # an even length: bytes that utf-16 can decode
    with pytest.raises(RsError, match=f"--encoding {forced} does not read reviews.csv as Korean text"):
        TableSource(path, encoding=forced)
    assert TableSource(path).rows == 3


def test_a_forced_encoding_on_a_non_korean_file_is_trusted(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes("review\ncafé très bon\nnaïve\n".encode("latin-1"))
    assert read_table(path, encoding="latin-1")["review"].tolist() == ["café très bon", "naïve"]


def test_a_forced_encoding_that_fails_names_the_one_that_reads(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes("id,review\n1,배송이 빨라요\n".encode("cp949"))
    offset = len(b"id,review\n1,")
    message = (
        f"{path} does not decode as utf-8 (at byte {offset}), but it reads as cp949: drop --encoding (rs detects "
        "it) or pass --encoding cp949."
    )
    with pytest.raises(RsError) as error:
        TableSource(path, encoding="utf-8")
    assert str(error.value) == message
    # UTF-8 is named as one passes it, utf-8-sig only for a file with a byte-order mark
    path.write_bytes("id,review\n1,배송이 빨라요 됐어요\n".encode())
    with pytest.raises(RsError, match=r"as ascii \(at byte 12\), but it reads as utf-8: .* --encoding utf-8\.$"):
        TableSource(path, encoding="ascii")
    path.write_bytes("id,review\n1,배송이 빨라요\n".encode("utf-8-sig"))
    with pytest.raises(RsError, match=r"but it reads as utf-8-sig: .* --encoding utf-8-sig\.$"):
        TableSource(path, encoding="ascii")
    # no encoding rs knows reads it: the message as before
    path.write_bytes(b"review\n" + bytes([0xFF, 0xFE, 0x81, 0x00]) * 3)
    with pytest.raises(RsError, match=r"Cannot decode .* \(as utf-8 at byte 7\)\. Pass --encoding"):
        TableSource(path, encoding="utf-8")


def test_a_title_row_above_the_header_is_skipped_and_counted(tmp_path):
    title = [["2024년 3분기 고객 리뷰 export"], [], ["번호", "작성일", "리뷰", "별점"], [1, "2024-07-01", "좋아요", 5]]
    source = TableSource(_workbook(tmp_path / "report.xlsx", title))
    assert (source.columns, source.rows, source.title_rows) == (["번호", "작성일", "리뷰", "별점"], 1, 1)
    assert read_table(tmp_path / "report.xlsx")["리뷰"].tolist() == ["좋아요"]


@pytest.mark.parametrize(
    "rows",
    [
        [["review"], ["좋아요", "메모"], ["별로"]],  # a one-column header with a note beside one review
        [["좋아요"], ["별로"], ["그냥"]],  # a sheet of reviews without a header
        [["리뷰 모음"], [1, 5], [2, 3]],  # the wider row is numbers: data, not a header
    ],
)
def test_no_title_is_guessed_where_there_is_none(tmp_path, rows):
    source = TableSource(_workbook(tmp_path / "r.xlsx", rows))
    assert source.title_rows == 0 and source.rows == len(rows) - 1
