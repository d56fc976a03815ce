"""review_sentiment.dates: parsing the date forms of Korean review exports, finding the date column, and label
counts per day, week or month."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from review_sentiment.dates import choose_period, find_date_column, parse_dates, period_table
from review_sentiment.errors import RsError

MAY_1 = pd.Timestamp("2024-05-01")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01", "2024-05-01"),
        ("2024-05-01 13:45", "2024-05-01 13:45"),
        ("2024-05-01 13:45:10", "2024-05-01 13:45:10"),
        ("2024-05-01T13:45:10", "2024-05-01 13:45:10"),
        ("2024-05-01T13:45:10Z", "2024-05-01 13:45:10"),
        ("2024-05-01T13:45:10+09:00", "2024-05-01 13:45:10"),
        ("2024-05-01 13:45:10.250", "2024-05-01 13:45:10"),
        ("2024.05.01", "2024-05-01"),
        ("2024.5.1", "2024-05-01"),
        ("2024. 5. 1.", "2024-05-01"),
        ("2024. 5. 1. 오후 3:05:10", "2024-05-01 15:05:10"),
        ("2024/05/01", "2024-05-01"),
        ("24.05.01", "2024-05-01"),
        ("24-05-01", "2024-05-01"),
        ("24.05.01.", "2024-05-01"),
        ("2024년 5월 1일", "2024-05-01"),
        ("2024년 05월 01일 (수)", "2024-05-01"),
        ("2024년 5월 1일 오후 3:05", "2024-05-01 15:05"),
        ("2024년 5월 1일 오전 12:05", "2024-05-01 00:05"),
        ("2024년 5월 1일 오후 12:05", "2024-05-01 12:05"),
        ("2024년 5월 1일 15시 30분", "2024-05-01 15:30"),
        ("2024년 5월 1일 15시", "2024-05-01 15:00"),
        ("2024-05-01 3:05 PM", "2024-05-01 15:05"),
        ("20240501", "2024-05-01"),
        ("  2024-05-01  ", "2024-05-01"),
    ],
)
def test_each_written_form_parses_to_its_date(text, expected):
    result = parse_dates([text])
    assert result.dates.iloc[0] == pd.Timestamp(expected)
    assert (result.parsed, result.unparsed, result.empty) == (1, 0, 0)


def test_two_digit_years_are_this_century():
    dates = parse_dates(["99.12.31", "00-01-01", "24.05.01"]).dates
    assert dates.tolist() == [pd.Timestamp("2099-12-31"), pd.Timestamp("2000-01-01"), MAY_1]


def test_impossible_and_garbage_cells_are_unparsed_with_examples():
    cells = ["2024-05-01", "2024-13-45", "2024-02-30", "2023-02-29", "어제", "garbage", "garbage", "", "  ", "24.5.1"]
    result = parse_dates(cells)
    assert (result.parsed, result.unparsed, result.empty) == (1, 7, 2)
    assert result.examples_unparsed == ["2024-13-45", "2024-02-30", "2023-02-29", "어제", "garbage"]
    assert result.dates.isna().tolist() == [False] + [True] * 9
    assert parse_dates(["2024-02-29"]).parsed == 1  # a leap day is a day


def test_dates_keep_the_input_index_and_missing_cells_count_as_empty():
    series = pd.Series(["2024-05-01", None, np.nan, "x"], index=[10, 11, 12, 13], dtype=object, name="작성일")
    result = parse_dates(series)
    assert result.dates.index.tolist() == [10, 11, 12, 13] and result.dates.name == "작성일"
    assert pd.api.types.is_datetime64_dtype(result.dates)
    assert (result.parsed, result.unparsed, result.empty) == (1, 1, 2)


def test_a_whole_column_of_excel_serials_parses_but_a_lone_serial_does_not():
    assert parse_dates(["45413", "45413.5", ""]).dates.tolist()[:2] == [MAY_1, MAY_1 + pd.Timedelta(hours=12)]
    assert parse_dates(["45413", "2024-05-02"]).dates.isna().tolist() == [True, False]
    assert parse_dates(["45413", "100"]).parsed == 0  # 100 is out of range: not a serial column


def test_a_whole_column_of_epoch_seconds_or_milliseconds_parses_in_korean_time():
    # 1714521600 is 2024-05-01 00:00 UTC, 09:00 in Korea
    dates = parse_dates(["1714521600", "1714521600500"]).dates
    assert dates.tolist() == [MAY_1 + pd.Timedelta(hours=9), MAY_1 + pd.Timedelta(hours=9, milliseconds=500)]
    assert parse_dates(["1714521600", "2024-05-01"]).dates.isna().tolist() == [True, False]


def test_small_integers_are_no_dates():
    assert parse_dates([str(rating) for rating in range(1, 6)]).parsed == 0


def test_a_rating_column_is_never_the_date_column():
    frame = pd.DataFrame({"rating": ["1", "2", "3", "4", "5"] * 20, "review": ["좋아요"] * 100})
    assert find_date_column(frame) is None
    frame = pd.DataFrame({"별점": ["1", "5"] * 50, "price": ["35000", "42000"] * 50, "order_id": ["1714521600"] * 100})
    assert find_date_column(frame) is None  # prices read as Excel serials, ids as epoch seconds: not taken


def test_a_named_column_with_90_percent_dates_is_found():
    dates = [f"2024.05.{day:02d}" for day in range(1, 10)] + ["어제"]
    frame = pd.DataFrame({"id": [str(i) for i in range(10)], "review": ["좋아요"] * 10, "작성일": dates})
    assert find_date_column(frame) == "작성일"
    assert find_date_column(frame, exclude={"작성일"}) is None


def test_a_named_column_with_too_few_dates_is_not_taken():
    frame = pd.DataFrame({"작성일": ["2024-05-01"] * 7 + ["어제"] * 3})
    assert find_date_column(frame) is None


def test_an_unnamed_column_of_dates_is_found_and_a_named_one_is_preferred():
    frame = pd.DataFrame({"a": ["2024-05-01"] * 20, "review": ["좋아요"] * 20})
    assert find_date_column(frame) == "a"
    frame["created_at"] = ["2024-05-02"] * 20
    assert find_date_column(frame) == "created_at"
    frame["order_date"] = ["2024-04-30"] * 20
    frame = frame[["order_date", "a", "created_at"]]
    assert find_date_column(frame) == "created_at"  # the writing date beats a purchase date


def test_a_named_column_of_excel_serials_is_found():
    frame = pd.DataFrame({"rating": ["5"] * 10, "date": [str(45413 + day) for day in range(10)]})
    assert find_date_column(frame) == "date"


def test_the_requested_column_is_taken_and_a_missing_one_lists_the_columns():
    frame = pd.DataFrame({"id": ["1"], "review": ["좋아요"], "작성일자": ["어제"]})
    assert find_date_column(frame, "작성일자") == "작성일자"
    expected = "--date-col 작성일 is not a column of the file; its columns: id, review, 작성일자"
    with pytest.raises(RsError, match=expected):
        find_date_column(frame, "작성일")


@pytest.mark.parametrize(
    "days, period",
    [(0, "D"), (60, "D"), (61, "W"), (731, "W"), (732, "M"), (3650, "M")],
)
def test_choose_period_by_the_span(days, period):
    assert choose_period(MAY_1, MAY_1 + pd.Timedelta(days=days)) == period


def test_choose_period_counts_calendar_days_and_takes_either_order():
    late_evening = MAY_1 + pd.Timedelta(days=60, hours=23)
    assert choose_period(MAY_1, late_evening) == "D"
    assert choose_period(MAY_1 + pd.Timedelta(days=61), MAY_1) == "W"
    assert choose_period(pd.NaT, MAY_1) == "D"


def _frame() -> pd.DataFrame:
    # weeks from Monday 2024-04-29 and 2024-05-13 have reviews; the week of 2024-05-06 has only an unscored one
    return pd.DataFrame(
        {
            "date": pd.to_datetime(
                [
                    "2024-04-29 09:00",
                    "2024-05-01",
                    "2024-05-05 23:59",
                    "2024-05-08",
                    "2024-05-13",
                    "2024-05-19",
                    None,
                    "2024-05-19",
                ],
                format="ISO8601",
            ),
            "label": ["긍정", "부정", "긍정", "", "긍정", "긍정", "부정", np.nan],
        }
    )


def test_period_table_matches_a_direct_groupby_with_an_empty_week():
    frame = _frame()
    table = period_table(frame["date"], frame["label"], ["부정", "긍정"], "W")
    assert table.columns.tolist() == ["period", "start", "reviews", "부정", "긍정", "share_부정", "share_긍정"]
    assert table["period"].tolist() == ["2024-04-29 주", "2024-05-06 주", "2024-05-13 주"]
    assert table["start"].tolist() == pd.to_datetime(["2024-04-29", "2024-05-06", "2024-05-13"]).tolist()

    labeled = frame[frame["date"].notna() & frame["label"].fillna("").ne("")]
    week = labeled["date"].dt.to_period("W-SUN").dt.start_time
    expected = pd.crosstab(week, labeled["label"])
    for start, counts in expected.iterrows():
        row = table[table["start"] == start].iloc[0]
        assert row["reviews"] == counts.sum()
        assert (row["부정"], row["긍정"]) == (counts.get("부정", 0), counts.get("긍정", 0))
        assert row["share_긍정"] == pytest.approx(counts.get("긍정", 0) / counts.sum())

    empty = table.iloc[1]
    assert (empty["reviews"], empty["부정"], empty["긍정"]) == (0, 0, 0)
    assert np.isnan(empty["share_부정"]) and np.isnan(empty["share_긍정"])
    assert table["reviews"].sum() == len(labeled)


def test_period_table_by_day_and_month():
    frame = _frame()
    days = period_table(frame["date"], frame["label"], ["부정", "긍정"], "D")
    assert len(days) == 21 and days["period"].iloc[0] == "2024-04-29" and days["reviews"].sum() == 5
    assert days.loc[days["period"] == "2024-05-19", "긍정"].item() == 1
    months = period_table(frame["date"], frame["label"], ["부정", "긍정"], "M")
    assert months["period"].tolist() == ["2024-04", "2024-05"]
    assert months["reviews"].tolist() == [1, 4] and months["부정"].tolist() == [0, 1]
    assert months["share_긍정"].tolist() == pytest.approx([1.0, 0.75])


def test_period_table_without_counted_rows_is_empty():
    dates = pd.Series(pd.to_datetime([None, "2024-05-01"]))
    table = period_table(dates, pd.Series(["긍정", ""]), ["긍정"], "D")
    assert table.empty and table.columns.tolist() == ["period", "start", "reviews", "긍정", "share_긍정"]
