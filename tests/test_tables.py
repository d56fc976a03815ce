import gzip

import pandas as pd
import pytest

from review_sentiment.errors import RsError
from review_sentiment.tables import (
    BLOCK_SIZE,
    TableSource,
    TableWriter,
    find_text_column,
    read_table,
    unique_column_name,
    write_table,
)


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


def test_write_roundtrip_is_atomic_and_excel_friendly(tmp_path):
    table = pd.DataFrame({"review": ["좋아요", "=SUM(A1)"], "label": ["positive", ""]})
    path = write_table(table, tmp_path / "out.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    assert read_table(path).equals(table)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left


def test_failed_write_leaves_no_file(tmp_path):
    class Exploding(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_table(Exploding({"a": [1]}), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_tsv_txt_and_jsonl(tmp_path):
    (tmp_path / "a.tsv").write_text("review\tlabel\n좋아요\t긍정\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("첫 리뷰\n\n셋째 리뷰\n", encoding="utf-8")
    (tmp_path / "c.jsonl").write_text('{"text": "좋아요", "stars": 5}\n{"text": null, "stars": 1}\n', encoding="utf-8")
    assert read_table(tmp_path / "a.tsv")["label"].tolist() == ["긍정"]
    assert read_table(tmp_path / "b.txt")["text"].tolist() == ["첫 리뷰", "", "셋째 리뷰"]
    assert read_table(tmp_path / "c.jsonl")["text"].tolist() == ["좋아요", ""]


def test_find_text_column():
    assert find_text_column(pd.DataFrame(columns=["id", "리뷰"])) == "리뷰"
    assert find_text_column(pd.DataFrame(columns=["id", "Document"])) == "Document"
    assert find_text_column(pd.DataFrame(columns=["body_text"])) == "body_text"  # the only column
    with pytest.raises(RsError, match=r"Columns: \['id', 'memo'\]. Pass --text-col"):
        find_text_column(pd.DataFrame(columns=["id", "memo"]))
    with pytest.raises(RsError, match="--text-col 'nope'"):
        find_text_column(pd.DataFrame(columns=["review"]), "nope")


def test_unique_column_name_never_overwrites():
    table = pd.DataFrame(columns=["label", "label_rs"])
    assert unique_column_name(table, "label") == "label_rs2"
    assert unique_column_name(table, "confidence") == "confidence"
    assert unique_column_name(["label", "label_rs"], "label") == "label_rs2"  # column names work too


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(RsError, match="No such file"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(RsError, match="rs reads"):
        read_table(tmp_path / "x.xlsx")


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


def test_outputs_are_checked_before_work_and_readable_by_others(tmp_path):
    from review_sentiment.tables import check_output_path

    for bad in ("out.xlsx", "out.txt", "noext"):
        with pytest.raises(RsError, match="rs writes .csv, .tsv, .jsonl"):
            check_output_path(tmp_path / bad)
    with pytest.raises(RsError, match="is a folder"):
        check_output_path(tmp_path)
    path = write_table(pd.DataFrame({"a": ["1"]}), tmp_path / "out.csv.gz")
    assert read_table(path)["a"].tolist() == ["1"]
    assert path.stat().st_mode & 0o044  # not private to the writer


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
    assert (tmp_path / "out.csv").read_bytes() == b"\xef\xbb\xbfreview,label\n"
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
