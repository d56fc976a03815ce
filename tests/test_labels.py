import pandas as pd
import pytest

from review_sentiment.errors import RsError
from review_sentiment.labels import (
    RatingBins,
    parse_label_values,
    parse_ratings,
    read_gold_labels,
    sort_labels,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["positive", "negative", "neutral"], ["positive", "negative", "neutral"]),
        (["긍정", "부정", "중립"], ["positive", "negative", "neutral"]),
        (["POS", " neg ", "Neu"], ["positive", "negative", "neutral"]),
        (["1", "0", "1"], ["positive", "negative", "positive"]),
        (["1.0", "0.0"], ["positive", "negative"]),
        (["-1", "0", "1"], ["negative", "neutral", "positive"]),
        (["positive", "", None], ["positive", None, None]),
    ],
)
def test_label_values(values, expected):
    assert parse_label_values(values, "label") == expected


def test_unknown_label_values_are_listed():
    with pytest.raises(RsError, match="'great'"):
        parse_label_values(["positive", "great"], "label")


def test_numeric_labels_beyond_binary_suggest_ratings():
    with pytest.raises(RsError, match="--rating-col stars"):
        parse_label_values(["1", "5", "3"], "stars")


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        (["1", "2", "3", "4", "5"], ["negative", "negative", "neutral", "positive", "positive"]),
        (
            ["1", "4", "5", "8", "9", "10"],
            ["negative", "negative", "neutral", "neutral", "positive", "positive"],
        ),
        (["", "5", "1"], [None, "positive", "negative"]),
        (["2.5", "4.5", "1"], [None, "positive", "negative"]),  # a half star between bins stays unlabeled
    ],
)
def test_default_rating_bins(ratings, expected):
    assert parse_ratings(ratings, "rating").labels == expected


def test_custom_bins_can_skip_the_middle():
    column = parse_ratings(["1", "4", "6", "9", "10"], "rating", bins_spec="1-4,,9-10")
    assert column.labels == ["negative", "negative", None, "positive", "positive"]
    assert column.n_unlabeled == 1
    assert "10-point" in column.source


@pytest.mark.parametrize("spec", ["1-2,3", "1-3,3,4-5", "a,b,c", "3-1,,4-5", ",,5"])
def test_bad_bins_are_errors(spec):
    with pytest.raises(RsError):
        RatingBins.parse(spec, 5)


def test_non_numeric_ratings_are_an_error():
    with pytest.raises(RsError, match="not numbers"):
        parse_ratings(["5", "five"], "rating")


def test_ratings_above_ten_need_explicit_scale():
    with pytest.raises(RsError, match="--rating-scale"):
        parse_ratings(["1", "100"], "score")


def test_label_column_is_preferred_to_ratings():
    table = pd.DataFrame({"review": ["a", "b"], "rating": ["1", "5"], "label": ["긍정", "부정"]})
    gold = read_gold_labels(table)
    assert gold.labels == ["positive", "negative"]
    assert gold.column == "label"


def test_rating_options_select_the_rating_column():
    table = pd.DataFrame({"review": ["a", "b"], "별점": ["1", "10"], "label": ["긍정", "부정"]})
    gold = read_gold_labels(table, rating_bins="1-4,,9-10", rating_scale=10)
    assert gold.labels == ["negative", "positive"]


def test_missing_label_column_lists_columns():
    with pytest.raises(RsError, match=r"Columns: \['review', 'date'\]"):
        read_gold_labels(pd.DataFrame({"review": ["a"], "date": ["x"]}))


def test_sort_labels_is_canonical():
    assert sort_labels({"positive", "negative"}) == ["negative", "positive"]


def test_ratings_in_no_bin_are_reported_with_their_values():
    column = parse_ratings(["0.5", "2.5", "2.5", "5", ""], "별점")
    assert column.n_unlabeled == 4
    assert column.describe_unlabeled() == (
        "1 without a label, 3 ratings in no bin (2.5 ×2, 0.5 ×1; --rating-bins can include them)"
    )


def test_a_repeated_header_line_is_named_in_the_error():
    with pytest.raises(RsError, match=r"Data row\(s\) 3 hold 'rating' itself: the file repeats its header"):
        parse_ratings(["5", "1", "rating", "4"], "rating")
    with pytest.raises(RsError, match=r"row\(s\) 2 hold 'label' itself"):
        parse_label_values(["positive", "label"], "label")


def test_numbers_mixed_with_words_are_called_that():
    with pytest.raises(RsError, match=r"mixes numbers \('-1', '0', '1'\) with words; use one convention"):
        parse_label_values(["1", "0", "-1", "긍정", "NEG"], "label")
