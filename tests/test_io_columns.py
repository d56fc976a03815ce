import unicodedata

import pandas as pd
import pytest

from review_sentiment.errors import RsError
from review_sentiment.io import TableSource
from review_sentiment.io.columns import (
    choose_text_column,
    find_named_column,
    find_text_column,
    hangul_shares,
    unique_column_name,
)

KOREAN = ["배송이 빨라요", "별로예요 ㅠㅠ", "재구매 의사 있어요", "그냥 그래요"]
ENGLISH = ["Fast delivery", "Not great", "Would buy again", "It is okay"]


def _table(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_a_korean_column_beats_a_well_named_english_one():
    table = _table(id=["1", "2", "3", "4"], sentence=ENGLISH, kor=KOREAN)
    choice = choose_text_column(table.columns, table)
    assert choice.name == "kor" and "'sentence' has little" in choice.reason
    assert choice.hangul_share == 1.0 and not choice.warnings


def test_of_two_named_columns_the_korean_one_is_taken():
    table = _table(text=ENGLISH, review=KOREAN)
    choice = choose_text_column(table.columns, table)
    assert choice.name == "review" and "'text' has little Korean text" in choice.reason


def test_two_korean_candidates_are_an_error_not_a_guess():
    table = _table(review=KOREAN, text=KOREAN)
    with pytest.raises(RsError, match="Several columns"):
        choose_text_column(table.columns, table)
    table = _table(sentence=ENGLISH, kor=KOREAN, kor2=KOREAN)
    with pytest.raises(RsError, match="several columns have some: \\['kor', 'kor2'\\]"):
        choose_text_column(table.columns, table)


def test_an_english_text_col_is_warned_about_and_the_korean_columns_named():
    table = _table(sentence=ENGLISH, kor=KOREAN)
    choice = choose_text_column(table.columns, table, "sentence")
    assert choice.name == "sentence" and choice.hangul_share == 0.0
    assert len(choice.warnings) == 1 and "--text-col kor" in choice.warnings[0]
    only_english = _table(review=ENGLISH)
    (warning,) = choose_text_column(only_english.columns, only_english).warnings
    assert "No column of the file has mostly Korean text" in warning


def test_unknown_names_are_an_error_that_points_to_the_korean_column():
    table = _table(id=["1", "2", "3", "4"], memo=KOREAN)
    with pytest.raises(RsError, match="Columns with Korean text: \\['memo'\\].*--text-col"):
        choose_text_column(table.columns, table)


def test_without_rows_names_decide_as_before():
    assert choose_text_column(["id", "리뷰"]).name == "리뷰"
    assert choose_text_column(["body_text"]).name == "body_text"  # the only column
    assert choose_text_column(["id", "Document"]).reason == "its name"
    with pytest.raises(RsError, match="Cannot tell"):
        choose_text_column(["id", "memo"])
    with pytest.raises(RsError, match="Several"):
        choose_text_column(["review", "review.1"])
    with pytest.raises(RsError, match="not a column"):
        choose_text_column(["review"], text_col="nope")


def test_the_models_column_wins_when_the_file_has_it():
    table = _table(review=KOREAN, 내용=KOREAN)
    assert choose_text_column(table.columns, table, trained_on="내용").name == "내용"


def test_hangul_shares_count_only_filled_cells_and_jamo():
    table = _table(a=["ㅋㅋㅋ", "", "good", None], b=["", "", "", ""])
    assert hangul_shares(table, ["a", "b"]) == {"a": 0.5, "b": None}


def test_a_macos_export_in_nfd_is_korean_text_under_its_korean_name():
    """NFD (macOS) writes 리뷰 as conjoining jamo, outside the syllable block: its texts are Korean all the same,
    and its header is still the name 리뷰내용. Before, a short NFC column (상품명) beat the NFD reviews."""
    nfd = [unicodedata.normalize("NFD", text) for text in KOREAN]
    header = unicodedata.normalize("NFD", "리뷰내용")
    table = pd.DataFrame({"상품명": ["상품0", "상품1", "상품2", "상품0"], header: nfd})
    assert hangul_shares(table, list(table.columns))[table.columns[1]] == 1.0
    choice = choose_text_column(table.columns, table)
    assert choice.name == table.columns[1] and choice.reason.startswith("its name")


def test_a_named_column_with_some_hangul_keeps_its_claim_with_a_warning():
    table = _table(
        review=["good", "nice ㅋㅋ", "great", "ok"], 상품명=["무선 이어폰", "충전기", "케이스", "보조배터리"]
    )
    choice = choose_text_column(table.columns, table)
    assert choice.name == "review" and "Columns with Korean text: ['상품명']" in choice.warnings[0]
    empty_on_top = _table(review=["", "", "", ""], title=KOREAN)  # no sampled text: the name decides
    assert choose_text_column(empty_on_top.columns, empty_on_top).name == "review"


def test_missing_values_of_any_kind_are_empty_cells():
    table = pd.DataFrame({"a": pd.array(["좋아요", pd.NA, None, "good"], dtype="string")})
    assert hangul_shares(table, ["a"]) == {"a": 0.5}


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


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["id", "리뷰", "rating"], "리뷰"),
        (["Review ", "stars"], "Review "),
        (["only"], "only"),
        (["id", "review", "text"], None),  # two known names: which one?
        (["review", "review.1"], None),  # a repeated header, read as review and review.1
        (["id", "stars"], None),
    ],
)
def test_text_column_is_found_only_when_unambiguous(columns, expected):
    if expected is None:
        with pytest.raises(RsError, match="--text-col"):
            find_text_column(columns)
    else:
        assert find_text_column(columns) == expected


def test_a_repeated_text_header_is_an_error_naming_both(tmp_path):
    (tmp_path / "dup.csv").write_text("review,review\n좋아요,별로\n", encoding="utf-8")
    source = TableSource(tmp_path / "dup.csv")
    assert source.columns == ["review", "review.1"]
    with pytest.raises(RsError, match=r"\['review', 'review.1'\]"):
        find_text_column(source.columns)
    assert find_text_column(source.columns, "review.1") == "review.1"


def test_a_column_found_by_name_is_never_a_guess_between_several():
    names = ("label", "sentiment")
    assert find_named_column(["review", " Label "], names, "the labels", "--label-col") == " Label "
    assert find_named_column(["review"], names, "the labels", "--label-col") is None
    for columns in (["label", "sentiment"], ["label", "label.1"], ["Label", "label"]):
        with pytest.raises(RsError, match=r"Several columns could hold the labels: .* Pass --label-col"):
            find_named_column(columns, names, "the labels", "--label-col")
