import json

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
        # A half star counts in the class whose range starts at or below it: 3.5 is neutral, 0.5 negative.
        (["0.5", "2.5", "3.5", "4.5", "1"], ["negative", "negative", "neutral", "positive", "negative"]),
        (["0", "3"], [None, "neutral"]),  # no star at all: in no bin
        (["4.5", "8.5", "10"], ["negative", "neutral", "positive"]),  # 10-point: 1-4, 5-8, 9-10
    ],
)
def test_default_rating_bins(ratings, expected):
    assert parse_ratings(ratings, "rating").labels == expected


def test_custom_bins_can_skip_the_middle():
    column = parse_ratings(["1", "4", "6", "9", "10", "4.5", "8.5"], "rating", rating_bins="1-4,,9-10")
    assert column.labels == ["negative", "negative", None, "positive", "positive", None, None]
    assert column.n_unlabeled == 3  # the gap of whole stars 5-8 is deliberate, half stars in it included
    assert "10-point" in column.source


@pytest.mark.parametrize("spec", ["1-2,3", "1-3,3,4-5", "a,b,c", "3-1,,4-5", ",,5"])
def test_bad_bins_are_errors(spec):
    with pytest.raises(RsError):
        RatingBins.parse(spec, 5)


def test_unreadable_ratings_are_an_error_that_lists_the_accepted_forms():
    with pytest.raises(RsError, match=r"not ratings rs can read: '6/5', 'five'\. Accepted: 4, 4\.5, 5점, .*★★★★½"):
        parse_ratings(["5", "five", "6/5"], "rating")


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
    column = parse_ratings(["2.5", "3", "3.5", "3.5", "5", ""], "별점", rating_bins="1-2,,4-5")
    assert column.labels == [None, None, None, None, "positive", None]
    assert column.describe_unlabeled() == (
        "1 without a label, 4 ratings in no bin (3.5 ×2, 2.5 ×1, 3 ×1; --rating-bins can include them)"
    )


def test_a_repeated_header_line_is_named_in_the_error():
    with pytest.raises(RsError, match=r"Data row\(s\) 3 hold 'rating' itself: the file repeats its header"):
        parse_ratings(["5", "1", "rating", "4"], "rating")
    with pytest.raises(RsError, match=r"row\(s\) 2 hold 'label' itself"):
        parse_label_values(["positive", "label"], "label")


def test_numbers_mixed_with_words_are_called_that():
    with pytest.raises(RsError, match=r"mixes numbers \('-1', '0', '1'\) with words; use one convention"):
        parse_label_values(["1", "0", "-1", "긍정", "NEG"], "label")


def test_ratings_above_the_top_range_are_in_no_bin_and_above_the_scale_an_error():
    assert parse_ratings(["4.5", "5", "3"], "rating", scale=5, rating_bins="1-2,,3-4").labels == [
        None,
        None,
        "positive",
    ]
    with pytest.raises(RsError, match="go up to 6, above the 5-point scale.*--rating-scale"):
        parse_ratings(["5.5", "6", "5"], "rating", scale=5)
    with pytest.raises(RsError, match="go up to 10, above the 5-point scale"):
        parse_ratings(["10", "2"], "rating", rating_bins=RatingBins.default(5))


def test_a_lowest_range_above_one_star_leaves_the_ratings_below_it_out():
    bins = RatingBins.parse(",3,4-5", 5)  # skips 1-2 on purpose, so 2.5 is not neutral
    assert [bins.label_for(r) for r in (0.5, 2, 2.5, 3.5, 4)] == [None, None, None, "neutral", "positive"]


def test_user_bins_that_touch_follow_the_half_star_rule():
    bins = RatingBins.parse("1-2.5,3,3.5-5", 5)
    assert [bins.label_for(r) for r in (0.5, 2.75, 3.25, 5)] == ["negative", "negative", "neutral", "positive"]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("4", 4),
        ("4.0", 4),
        (" 4 ", 4),
        ("5점", 5),
        ("4.5점", 4.5),
        ("4.5 점", 4.5),
        ("별 4개", 4),
        ("별점 4", 4),
        ("4개", 4),
        ("★★★★", 4),
        ("⭐⭐⭐⭐", 4),
        ("⭐️⭐️⭐️⭐️", 4),  # emoji with variation selectors
        ("★★★★½", 4.5),
        ("４", 4),
        ("４．５점", 4.5),
    ],
)
def test_rating_forms_without_a_scale(cell, value):
    column = parse_ratings([cell, "1"], "rating")
    assert column.labels == [RatingBins.default(5).label_for(value), "negative"]
    assert column.scale_inferred
    assert column.rating_bins.scale == 5


@pytest.mark.parametrize(
    ("cells", "scale", "expected"),
    [
        (["4/5", "2/5", "3/5"], 5, ["positive", "negative", "neutral"]),
        (["4.5/5", "4점/5점", "1 / 5"], 5, ["positive", "positive", "negative"]),
        (["★★★★☆", "★☆☆☆☆", "★★★½☆"], 5, ["positive", "negative", "neutral"]),
        (["8/10", "3/10", "9/10"], 10, ["neutral", "negative", "positive"]),
        (["10점 만점에 8점", "10점 만점에 2점"], 10, ["neutral", "negative"]),
        (["★★★★★★★★☆☆", "★★☆☆☆☆☆☆☆☆"], 10, ["neutral", "negative"]),
        (["4/10", "3", "9"], 10, ["negative", "negative", "positive"]),  # plain numbers follow the stated scale
    ],
)
def test_forms_that_state_their_scale_set_it(cells, scale, expected):
    column = parse_ratings(cells, "rating")
    assert column.labels == expected
    assert column.rating_bins.scale == scale
    assert not column.scale_inferred
    assert column.warnings == []


def test_stated_scales_that_disagree_are_an_error_with_examples():
    with pytest.raises(RsError, match=r"mixes rating scales: 5-point \('4/5'\) and 10-point \('8/10'\)"):
        parse_ratings(["4/5", "8/10", "3"], "rating")
    with pytest.raises(RsError, match=r"--rating-scale 10 disagrees .* say 5-point \('★★★☆☆'\)"):
        parse_ratings(["★★★☆☆"], "rating", scale=10)
    with pytest.raises(RsError, match=r"rating bins' scale 5 disagrees .* say 10-point \('8/10'\)"):
        parse_ratings(["8/10"], "rating", rating_bins=RatingBins.default(5))


def test_a_scale_inferred_from_low_ratings_alone_is_warned_about():
    column = parse_ratings(["1", "4.5", "3"], "stars")
    assert column.scale_inferred
    assert column.warnings == [
        "The rating scale was taken as 5-point because no rating in 'stars' is above 5 (the highest is 4.5); "
        "if it is a 10-point scale, pass --rating-scale 10."
    ]


@pytest.mark.parametrize(
    ("cells", "options"),
    [
        (["1", "4"], {"scale": 5}),
        (["1", "4"], {"rating_bins": RatingBins.default(5)}),
        (["1", "4"], {"rating_bins": "1-2,,4-5"}),  # the ranges decide the classes, not the guessed scale
        (["1/5", "4"], {}),
        (["1", "8"], {}),  # above 5: 10-point is the only scale rs knows that fits
    ],
)
def test_no_warning_where_the_scale_is_known_or_does_not_matter(cells, options):
    assert parse_ratings(cells, "stars", **options).warnings == []


def test_label_columns_have_no_rating_warnings():
    gold = read_gold_labels(pd.DataFrame({"label": ["긍정"]}))
    assert (gold.warnings, gold.scale_inferred) == ([], False)


@pytest.mark.parametrize(
    "bins",
    [
        RatingBins.default(5),
        RatingBins.default(10),
        RatingBins.parse("1-4,,9-10", 10),
        RatingBins.parse("1-2.25,3,3.5-5", 5),
    ],
)
def test_bins_round_trip_through_json_and_their_spec(bins):
    stored = json.loads(json.dumps(bins.to_dict()))
    assert RatingBins.from_dict(stored) == bins
    assert RatingBins.from_dict(stored).to_dict() == bins.to_dict()
    assert RatingBins.parse(bins.spec(), bins.scale) == bins


def test_bins_serialize_to_plain_ranges():
    bins = RatingBins.parse("1-4,,9-10", 10)
    assert bins.to_dict() == {"scale": 10, "negative": [1, 4], "neutral": None, "positive": [9, 10]}
    assert bins.spec() == "1-4,,9-10"
    assert RatingBins.default(5).spec() == "1-2,3,4-5"


@pytest.mark.parametrize(
    "stored",
    [
        {"scale": 5, "negative": [1, 2], "positive": [4, 5]},
        {"scale": "5", "negative": [1, 2], "neutral": None, "positive": [4, 5]},
        {"scale": 5, "negative": [2, 1], "neutral": None, "positive": [4, 5]},
        {"scale": 5, "negative": [1, "2"], "neutral": None, "positive": [4, 5]},
        {"scale": 5, "negative": [1, 4], "neutral": None, "positive": [4, 5]},
    ],
)
def test_unreadable_stored_bins_are_an_error(stored):
    with pytest.raises(RsError):
        RatingBins.from_dict(stored)


def test_stored_bins_can_stand_in_for_the_spec():
    table = pd.DataFrame({"review": ["a", "b", "c"], "stars": ["2", "6", "10"]})
    gold = read_gold_labels(table, rating_bins=RatingBins.parse("1-4,,9-10", 10))
    assert gold.labels == ["negative", None, "positive"]
    assert not gold.scale_inferred
    with pytest.raises(RsError, match="--rating-scale 5 disagrees with the rating bins' 10-point scale"):
        read_gold_labels(table, rating_scale=5, rating_bins=RatingBins.default(10))


def test_ranges_for_a_smaller_scale_are_warned_about():
    column = parse_ratings(["1", "3", "5", "8", "10"], "stars", rating_bins="1-2,3,4-5")
    assert column.rating_bins.scale == 10 and column.labels == ["negative", "neutral", "positive", None, None]
    (warning,) = column.warnings
    assert "end at 5, but ratings in 'stars' go up to 10" in warning
    assert not parse_ratings(["1", "3", "5"], "stars", rating_bins="1-2,3,4-5").warnings
    assert not parse_ratings(["1", "5", "10"], "stars", rating_bins="1-4,,9-10").warnings


def test_two_label_columns_are_an_error_not_the_first_taken():
    table = pd.DataFrame({"review": ["a", "b"], "label": ["긍정", "부정"], "sentiment": ["부정", "긍정"]})
    with pytest.raises(RsError, match=r"Several columns could hold the labels: \['label', 'sentiment'\]"):
        read_gold_labels(table)
    assert read_gold_labels(table, label_col="sentiment").labels == ["negative", "positive"]
    ratings = pd.DataFrame({"review": ["a", "b"], "별점": ["1", "5"], "stars": ["5", "1"]})
    with pytest.raises(RsError, match="Pass --rating-col"):
        read_gold_labels(ratings)
