import pandas as pd
import pytest

from review_sentiment.errors import RsError
from review_sentiment.tables import find_text_column, read_table, unique_column_name, write_table


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
