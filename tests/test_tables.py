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
