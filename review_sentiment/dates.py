"""Dates for `rs report`: parse the date column of a Korean review export, find that column, and count labels
per day, week or month.

Every cell arrives as text (rs reads all cells as strings, empty cells as ''). Parsing is vectorized: one
regular expression takes year, month, day and an optional time of day out of every cell, the pieces are put
together as `YYYY-MM-DD HH:MM:SS` and handed to `pd.to_datetime` with that one explicit format, so a million
rows take about three seconds and an impossible date (2024-13-45, 2024-02-30) comes out as NaT instead of a guess.

Accepted: `2024-05-01`, `2024-05-01 13:45(:10)`, `2024-05-01T13:45:10(Z|+09:00)`, `2024.05.01`, `2024.5.1`,
`2024. 5. 1.` (Korean Windows/Excel), `2024/05/01`, `24.05.01` and `24-05-01` (20YY; two-digit years
only with two-digit month and day, since `12.3.1` is more likely an app version), `2024년 5월 1일` (with
`(수)`, `오전/오후 3:05` or `15시 30분` after it), `20240501`; and, only when every non-empty cell of the
column is such a number, Excel serial days (20000-80000) and Unix epoch seconds (10 digits) or milliseconds
(13 digits). A time zone suffix is dropped: the wall-clock time is kept as written, which for a Korean export
is Korean time. Epoch numbers are UTC and are shifted to Korean time (UTC+9), so that a review is counted on
the day its writer saw.

Weeks start on Monday and are labeled by that Monday as '2024-04-29 주'; days as '2024-05-01'; months as
'2024-05'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from review_sentiment.errors import RsError

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 1000  # rows of a column looked at to judge whether it holds dates
NAMED_SHARE = 0.8  # share of sampled non-empty cells that must parse in a column with a date-like name
UNNAMED_SHARE = 0.95  # the same for a column whose name says nothing
MOSTLY_NUMBERS = 0.5  # above this share of plain numbers an unnamed column is never taken (ratings, prices, ids)
EXCEL_SERIALS = (20000, 80000)  # 1954-10-03 .. 2119-01-10: serial days that are plausibly review dates
EXCEL_ORIGIN = "1899-12-30"  # Excel's day 0 (its 1900 leap-year bug makes day 60 1900-02-29)
KOREA_UTC_OFFSET_HOURS = 9  # Korea has kept UTC+9 without daylight saving since 1988
DAY_SPAN_MAX = 60  # days; a longer span is bucketed by week
WEEK_SPAN_MAX = 731  # days (two years, one of them a leap year); a longer span is bucketed by month
PERIODS = ("D", "W", "M")

# Substrings of a column name that say it holds dates (compared case-insensitively).
DATE_NAME_PARTS = (
    "date",
    "time",
    "created",
    "updated",
    "posted",
    "written",
    "작성일",
    "등록일",
    "날짜",
    "일자",
    "일시",
    "작성시간",
    "등록시간",
    "리뷰일",
    "구매일",
    "주문일",
    "결제일",
    "시간",
    "시각",
    "년월일",
)
# Whole words of a name that say so too; short ones are words only ('width' holds 'dt', 'posts' holds 'ts').
DATE_NAME_WORDS = {"dt", "ts", "ymd", "day", "when"}
# Of several good date columns, one whose name says the review was written beats purchase or update dates.
WRITTEN_NAME_PARTS = ("작성", "등록", "리뷰", "create", "post", "writ", "review", "submit")

_DATE = (
    r"(?:(?P<y1>\d{4})\s*[-./]\s*(?P<m1>\d{1,2})\s*[-./]\s*(?P<d1>\d{1,2})\.?"
    # two-digit years only with two-digit month and day: '12.3.1' is more likely an app version than a date
    r"|(?P<y2>\d{2})\s*[-./]\s*(?P<m2>\d{2})\s*[-./]\s*(?P<d2>\d{2})\.?"
    r"|(?P<y3>\d{4}|\d{2})\s*년\s*(?P<m3>\d{1,2})\s*월\s*(?P<d3>\d{1,2})\s*일"
    r"|(?P<y4>\d{4})(?P<m4>\d{2})(?P<d4>\d{2}))"
)
_TIME = (
    r"\s*(?:\(\s*[월화수목금토일](?:요일)?\s*\)|[월화수목금토일]요일)?"  # weekday: (수), 수요일
    r"(?:\s*T?\s*(?P<ap>오전|오후|AM|PM|am|pm)?\s*"
    r"(?:(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d+)?)?"
    r"|(?P<kh>\d{1,2})\s*시(?:\s*(?P<kmi>\d{1,2})\s*분)?(?:\s*(?P<ks>\d{1,2})\s*초)?)"
    r"\s*(?P<ap2>AM|PM|am|pm)?)?"
    r"\s*(?:Z|UTC|GMT|KST|[+-]\d{2}:?\d{2})?"
)
# RE2 (pyarrow.compute.extract_regex) syntax: every group named, no backreferences or lookarounds.
DATE_PATTERN = "^" + _DATE + _TIME + "$"
_NUMBER = r"[+-]?\d+(?:\.\d+)?"
_WORD = re.compile(r"[a-z]+|[^a-z_\-\s.]+")


@dataclass
class ParsedDates:
    """What `parse_dates` made of a column."""

    dates: pd.Series  # datetime64, NaT where unparsed or empty; the input's index
    parsed: int
    unparsed: int  # among non-empty cells
    empty: int
    examples_unparsed: list[str] = field(default_factory=list)  # up to 5 distinct original cells that failed

    @property
    def share(self) -> float | None:
        """Share of the non-empty cells that parsed (None: every cell is empty)."""
        filled = self.parsed + self.unparsed
        return self.parsed / filled if filled else None


def parse_dates(values: Sequence[str] | pd.Series) -> ParsedDates:
    """Parse a column of date strings (the formats in the module docstring); NaT where a cell is no date."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    raw = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    text = pc.utf8_trim_whitespace(_arrow_text(raw))
    empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
    filled = np.flatnonzero(~empty)
    out = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[us]")
    cells = text.take(filled)

    numbers = _whole_column_numbers(cells)
    if numbers is not None:
        out[filled] = numbers
    elif len(cells):
        out[filled] = _parse_text(cells)

    failed = ~empty & np.isnat(out)
    examples = raw[failed].astype(str).drop_duplicates().head(5).tolist()
    return ParsedDates(
        dates=pd.Series(out, index=raw.index, name=raw.name),
        parsed=int(len(filled) - failed.sum()),
        unparsed=int(failed.sum()),
        empty=int(empty.sum()),
        examples_unparsed=examples,
    )


def _arrow_text(raw: pd.Series):
    """The cells as a pyarrow string array, missing cells as ''.

    The string work is done by Arrow's kernels (RE2 for the pattern): pandas' `.str.extract` runs Python's
    `re` row by row for some string dtypes, ten times slower on a million rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        array = pa.array(raw, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a mix of texts and numbers: take each cell as written
        array = pa.array(raw.where(raw.isna(), raw.astype(str)), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_null(array.type):  # every cell missing
        array = pa.nulls(len(array), pa.string())
    # one string type for the kernels below (pandas' own str dtype holds large_string)
    return pc.fill_null(pc.cast(array, pa.string()), "")


def _whole_column_numbers(cells):
    """Excel serials or epoch times as datetime64[us], when every cell is one; otherwise None.

    Only a whole column counts: a lone 45413 among written dates is more likely a typo than a serial day."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(cells) or not pc.all(pc.match_substring_regex(cells, f"^{_NUMBER}$")).as_py():
        return None
    lengths = pc.utf8_length(cells).to_numpy(zero_copy_only=False)
    if np.isin(lengths, (10, 13)).all() and pc.all(pc.match_substring_regex(cells, r"^\d+$")).as_py():
        numbers = pc.cast(cells, pa.int64()).to_numpy()
        millis = np.where(lengths == 13, numbers, numbers * 1000)
        utc = pd.to_datetime(millis, unit="ms")
        return (utc + pd.Timedelta(hours=KOREA_UTC_OFFSET_HOURS)).to_numpy().astype("datetime64[us]")
    days = pc.cast(cells, pa.float64()).to_numpy()
    low, high = EXCEL_SERIALS
    if ((days >= low) & (days <= high)).all():
        return pd.to_datetime(days, unit="D", origin=EXCEL_ORIGIN).to_numpy().astype("datetime64[us]")
    return None


def _parse_text(cells):
    """The written date forms, as datetime64[us] (NaT where a cell matches none or is impossible)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = pc.extract_regex(cells, DATE_PATTERN)  # null where no match; a group that took no part is ''

    def joined(*names: str):
        return pc.binary_join_element_wise(*(pc.struct_field(parts, name) for name in names), "")

    year = joined("y1", "y2", "y3", "y4")
    year = pc.if_else(pc.equal(pc.utf8_length(year), 2), pc.binary_join_element_wise("20", year, ""), year)
    month, day = joined("m1", "m2", "m3", "m4"), joined("d1", "d2", "d3", "d4")

    hour_text = joined("h", "kh")
    hour = pc.cast(pc.if_else(pc.equal(hour_text, ""), "0", hour_text), pa.int64())
    hour = pc.fill_null(hour, 0).to_numpy()
    marker = pc.utf8_upper(joined("ap", "ap2"))
    afternoon = pc.fill_null(pc.is_in(marker, value_set=pa.array(["오후", "PM"])), False).to_numpy(zero_copy_only=False)
    morning = pc.fill_null(pc.is_in(marker, value_set=pa.array(["오전", "AM"])), False).to_numpy(zero_copy_only=False)
    # 오후 12:30 is half past noon and 오전 12:30 half past midnight; '오후 13:00' is no time (99 fails below)
    hour = np.where((afternoon | morning) & (hour > 12), 99, hour)
    hour = np.where(afternoon & (hour < 12), hour + 12, hour)
    hour = np.where(morning & (hour == 12), 0, hour)
    minute, second = joined("mi", "kmi"), joined("s", "ks")
    minute = pc.if_else(pc.equal(minute, ""), "0", minute)
    second = pc.if_else(pc.equal(second, ""), "0", second)

    normalized = pc.binary_join_element_wise(
        year, "-", month, "-", day, " ", pc.cast(pa.array(hour), pa.string()), ":", minute, ":", second, ""
    )
    parsed = pd.to_datetime(normalized.to_numpy(zero_copy_only=False), format="%Y-%m-%d %H:%M:%S", errors="coerce")
    return np.asarray(parsed, dtype="datetime64[us]")


def looks_like_date_name(name: object) -> bool:
    """Whether a column name says it holds dates (작성일, created_at, reviewDate, 등록일시, ts, ...)."""
    lowered = str(name).strip().lower()
    if any(part in lowered for part in DATE_NAME_PARTS):
        return True
    # camelCase words split before lowering: regDt -> reg, dt
    words = {word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", str(name))}
    return bool(words & DATE_NAME_WORDS) or bool(set(_WORD.findall(lowered)) & DATE_NAME_WORDS)


def find_date_column(frame: pd.DataFrame, requested: str | None = None, exclude: Set[str] = frozenset()) -> str | None:
    """The column holding the review dates: `requested` (--date-col) when given, else the best detected one.

    A column with a date-like name is taken when at least 80 % of its sampled non-empty cells parse; any other
    column needs 95 % and must not be mostly plain numbers, which say nothing of being dates (a 1-5 rating, a
    price of 35000 that reads as an Excel serial, a 10-digit id that reads as epoch seconds). Columns in
    `exclude` (the text and label columns) are skipped. None when no column qualifies."""
    columns = [str(column) for column in frame.columns]
    if requested is not None:
        if requested in frame.columns:
            return requested
        near = [column for column in columns if column.strip().casefold() == requested.strip().casefold()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise RsError(f"--date-col {requested} is not a column of the file; its columns: {', '.join(columns)}{hint}")

    sample = frame.head(SAMPLE_ROWS)
    candidates = []
    for position, column in enumerate(frame.columns):
        if column in exclude:
            continue
        result = parse_dates(sample.iloc[:, position])
        share = result.share
        if share is None:
            continue
        named = looks_like_date_name(column)
        if named and share >= NAMED_SHARE:
            written = any(part in str(column).lower() for part in WRITTEN_NAME_PARTS)
            candidates.append((0, not written, -share, position, column))
        elif not named and share >= UNNAMED_SHARE and not _mostly_numbers(sample.iloc[:, position]):
            candidates.append((1, True, -share, position, column))
    return min(candidates)[-1] if candidates else None


def _mostly_numbers(cells: pd.Series) -> bool:
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(_arrow_text(cells))
    text = text.filter(pc.not_equal(text, ""))
    return bool(len(text)) and pc.mean(pc.match_substring_regex(text, f"^{_NUMBER}$")).as_py() > MOSTLY_NUMBERS


def choose_period(first, last) -> str:
    """'D' for a span of up to 60 days, 'W' (weeks from Monday) up to two years, else 'M'. 'D' without dates."""
    import pandas as pd

    if first is None or last is None or pd.isna(first) or pd.isna(last):
        return "D"
    # calendar days between the two dates: times of day must not push a 60-day span into weeks
    span = abs((pd.Timestamp(last).normalize() - pd.Timestamp(first).normalize()).days)
    if span <= DAY_SPAN_MAX:
        return "D"
    return "W" if span <= WEEK_SPAN_MAX else "M"


def period_table(
    dates: pd.Series, labels: pd.Series, label_names: list[str], period: str, counts: Sequence[int] | None = None
) -> pd.DataFrame:
    """Label counts per period, one row for every period from the first date to the last (empty ones too).

    Columns: `period` ('2024-05-01', '2024-04-29 주' for the week from that Monday, '2024-05'), `start`
    (Timestamp), `reviews` (labeled rows dated in the period), a count per label name, then `share_<label>`
    per label name (0-1, NaN when `reviews` is 0). Rows with an empty label (unscored) or NaT date are not
    counted; a label outside `label_names` counts in `reviews` only. `dates` and `labels` pair up by position;
    `counts` (rs report's tallies per day and label) says how many rows each pair stands for, 1 by default.
    """
    import numpy as np
    import pandas as pd

    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
    if len(dates) != len(labels):
        raise ValueError(f"{len(dates)} dates but {len(labels)} labels")
    shares = [f"share_{name}" for name in label_names]
    when = pd.Series(pd.to_datetime(pd.Series(dates).to_numpy()))
    label = pd.Series(pd.Series(labels).to_numpy(dtype=object)).fillna("").astype(str)
    keep = (when.notna() & (label != "")).to_numpy()
    if not keep.any():
        return pd.DataFrame({column: [] for column in ["period", "start", "reviews", *label_names, *shares]})

    start = _period_start(when[keep], period)
    unit = np.datetime_data(start.dtype)[0]
    frequency = {"D": "D", "W": "W-MON", "M": "MS"}[period]
    every = pd.date_range(start.min(), start.max(), freq=frequency).as_unit(unit)

    weight = np.ones(len(when), dtype="int64") if counts is None else np.asarray(counts, dtype="int64")
    counted = pd.DataFrame({"start": start.to_numpy(), "label": label[keep].to_numpy(), "n": weight[keep]})
    reviews = counted.groupby("start")["n"].sum().reindex(every, fill_value=0)
    per_label = counted.groupby(["start", "label"])["n"].sum().unstack(fill_value=0)
    per_label = per_label.reindex(index=every, columns=list(label_names), fill_value=0).astype("int64")
    share = per_label.div(reviews.where(reviews > 0), axis=0)
    share.columns = shares

    names = {"D": "%Y-%m-%d", "W": "%Y-%m-%d 주", "M": "%Y-%m"}[period]
    table = pd.DataFrame({"period": every.strftime(names), "start": every, "reviews": reviews.to_numpy()})
    table = pd.concat([table, per_label.reset_index(drop=True), share.reset_index(drop=True)], axis=1)
    return table


def _period_start(when: pd.Series, period: str) -> pd.Series:
    """The first moment of each date's day, Monday-started week or month."""
    import pandas as pd

    day = when.dt.normalize()
    if period == "D":
        return day
    if period == "W":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(day.dt.day - 1, unit="D")
