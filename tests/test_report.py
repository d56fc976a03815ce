"""rs report on the sample data: the page, its sections and numbers, escaping of untrusted text, the aspect split."""

import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from typer.testing import CliRunner

from review_sentiment import keywords
from review_sentiment.cli import app
from review_sentiment.errors import RsError
from review_sentiment.report import ReportOptions, aspect_mentions, clauses, report_file
from tests.conftest import SAMPLE, labeled_by_rs_predict

runner = CliRunner()
DATE_FORMATS = ["{y}.{m:02d}.{d:02d}", "{yy}.{m:02d}.{d:02d}", "{y}년 {m}월 {d}일", "{y}-{m:02d}-{d:02d}"]


class Page(HTMLParser):
    """The tags, ids and text of a page, and whether the parser saw every element it opened closed."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.ids, self.text, self.open = [], set(), [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if "id" in dict(attrs):
            self.ids.add(dict(attrs)["id"])
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def tfidf_model(tmp_path_factory):
    from review_sentiment.finetune import finetune

    return finetune(SAMPLE, "tfidf", output_dir=tmp_path_factory.mktemp("report") / "tfidf").output_dir


@pytest.fixture(scope="module")
def shop_reviews(tmp_path_factory, sample_table):
    """The sample with a date column (four Korean formats, two unreadable dates) and a product column."""
    table = sample_table.copy()
    dates = []
    for i in range(len(table)):
        day = pd.Timestamp("2024-05-01") + pd.Timedelta(days=i % 40)
        form = DATE_FORMATS[i % len(DATE_FORMATS)]
        dates.append(form.format(y=day.year, yy=day.year % 100, m=day.month, d=day.day))
    dates[3], dates[7] = "언젠가", "2024-13-45"
    table["작성일"] = dates
    table.loc[[10, 11], "review"] = ["", "   "]  # not scored: the page says why
    table["product"] = [f"상품{i % 4}" for i in range(len(table))]
    path = tmp_path_factory.mktemp("report") / "shop.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def labeled(tmp_path_factory, shop_reviews, tfidf_model):
    output = tmp_path_factory.mktemp("report") / "shop.labeled.csv"
    return output, labeled_by_rs_predict(shop_reviews, tfidf_model, output)


def test_the_report_of_a_labeled_file_holds_every_section_and_its_numbers(tmp_path, labeled):
    path, frame = labeled
    result = runner.invoke(app, ["report", str(path), "-o", str(tmp_path / "report.html"), "--by", "product"])
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output and "report.html" in result.output
    page = Page((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert {"overview", "time", "groups", "words", "aspects", "examples"} <= page.ids
    text = "".join(page.text)
    assert "감성" in text and "긍정" in text and "부정" in text
    assert not [tag for tag, _ in page.tags if tag == "script"]  # the page needs none

    files = tmp_path / "report_files"
    report = json.loads((files / "report.json").read_text(encoding="utf-8"))
    counts = frame["predicted_label"].value_counts()
    assert report["overview"]["counts"] == {label: int(counts.get(label, 0)) for label in report["labels"]}
    assert report["overview"]["labeled"] == int((frame["predicted_label"] != "").sum()) == len(frame) - 2
    reasons = frame.loc[frame["predicted_label"] == "", "note"].value_counts().to_dict()
    assert report["overview"]["not_scored"] == reasons and len(reasons) == 1
    assert next(iter(reasons)) in text  # the reason, on the page

    groups = pd.read_csv(files / "by_group.csv", encoding="utf-8-sig").set_index("product")
    scored = frame[frame["predicted_label"] != ""]
    expected = pd.crosstab(scored["product"], scored["predicted_label"])
    for product, row in expected.iterrows():
        assert groups.loc[product, "reviews"] == row.sum()
        assert groups.loc[product, "negative"] == row.get("negative", 0)
    assert list(groups["share_negative"]) == sorted(groups["share_negative"], reverse=True)

    over_time = report["over_time"]
    assert over_time["column"] == "작성일" and over_time["period"] == "day" and over_time["unparsed"] == 2
    dated = frame.index.difference([3, 7])  # the two unreadable dates
    assert sum(row["reviews"] for row in over_time["table"]) == int((frame.loc[dated, "predicted_label"] != "").sum())
    assert report["accuracy"]["gold"].startswith("label column")  # the sample's gold labels
    for png in ("overview.png", "over_time.png", "by_group.png", "aspects.png", "confusion_matrix.png"):
        assert (files / png).stat().st_size > 1000


def test_untrusted_text_shows_as_text_and_runs_nothing(tmp_path, tfidf_model):
    hostile = pd.DataFrame(
        {
            "review": ["<script>alert('리뷰')</script> 배송 최악", '<img src=x onerror="alert(1)"> 맛있어요', "좋아요"]
            * 10,
            "<i>매장</i>": ["<script>x</script>", "정상 매장", "a&b"] * 10,
        }
    )
    hostile.to_csv(tmp_path / "hostile.csv", index=False)
    labeled_by_rs_predict(tmp_path / "hostile.csv", tfidf_model, tmp_path / "hostile.labeled.csv")
    summary = report_file(
        tmp_path / "hostile.labeled.csv",
        tmp_path / "r.html",
        options=ReportOptions(by="<i>매장</i>", min_group_rows=1, examples=30),
    )
    html_text = (tmp_path / "r.html").read_text(encoding="utf-8")
    page = Page(html_text)
    assert not [tag for tag, _ in page.tags if tag in ("script", "i")]
    assert not [attrs for _, attrs in page.tags if any(name.startswith("on") for name in attrs)]
    shown = "".join(page.text)
    assert "<script>alert('리뷰')</script>" in shown and '<img src=x onerror="alert(1)">' in shown
    assert "<i>매장</i>" in shown and "<script>x</script>" in shown and summary.labeled == 30


def test_a_mixed_review_gives_each_aspect_the_sentiment_of_its_own_clause(tmp_path, tfidf_model):
    assert clauses("배송이 너무 늦는데 맛은 정말 맛있어요") == ["배송이 너무 늦는데", "맛은 정말 맛있어요"]
    assert clauses("가격은 비싸지만 품질이 좋아요") == ["가격은 비싸지만", "품질이 좋아요"]
    sentences = keywords.analyze_reviews(["배송이 너무 늦는데 맛은 정말 맛있어요. 포장은 평범해요"]).sentences
    mentions = aspect_mentions(sentences, {"배송": ["배송"], "맛": ["맛"], "포장": ["포장"]})
    assert [(m.aspect, m.text) for m in mentions] == [
        ("배송", "배송이 너무 늦는데"),
        ("맛", "맛은 정말 맛있어요."),
        ("포장", "포장은 평범해요"),
    ]

    # a model trained on the 360-review sample: its scores of the two clauses are 0.85 negative and 0.85 positive
    pd.DataFrame({"review": ["배송이 너무 늦는데 맛은 좋아요 최고"]}).to_csv(tmp_path / "one.csv", index=False)
    report_file(
        tmp_path / "one.csv", tmp_path / "one.html", model_dir=tfidf_model, options=ReportOptions(aspects="배송,맛")
    )
    aspects = pd.read_csv(tmp_path / "one_files" / "aspects.csv", encoding="utf-8-sig").set_index("aspect")
    assert aspects.loc["배송", "negative"] == 1 and aspects.loc["맛", "positive"] == 1


def test_a_raw_file_with_a_model_is_labeled_as_rs_predict_labels_it(tmp_path, shop_reviews, tfidf_model, labeled):
    _, frame = labeled
    summary = report_file(shop_reviews, tmp_path / "r.html", model_dir=tfidf_model)
    counts = frame["predicted_label"].value_counts()
    assert summary.label_counts == {label: int(counts.get(label, 0)) for label in summary.label_counts}


def test_bad_input_gets_one_clear_line(tmp_path, shop_reviews, labeled):
    result = runner.invoke(app, ["report", str(shop_reviews), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and "run rs predict first, or pass --model" in result.output
    path, _ = labeled
    result = runner.invoke(app, ["report", str(path), "-o", str(tmp_path / "r.html"), "--by", "store"])
    assert result.exit_code == 1 and "--by store is not a column" in result.output and "product" in result.output
    result = runner.invoke(app, ["report", str(path), "-o", str(tmp_path / "r.html"), "--date-col", "날짜"])
    assert result.exit_code == 1 and "--date-col 날짜 is not a column" in result.output
    (tmp_path / "empty.csv").write_text("review,predicted_label\n", encoding="utf-8")
    with pytest.raises(RsError, match="no rows"):
        report_file(tmp_path / "empty.csv", tmp_path / "r.html")
    with pytest.raises(RsError, match="HTML page"):
        report_file(path, tmp_path / "r.pdf")


def test_a_file_read_in_small_chunks_gives_the_same_report(tmp_path, labeled):
    """Every section counts chunk by chunk (memory holds one chunk): 37-row chunks, which cut groups, days and
    the gold column's values apart, give the report of one chunk, file for file."""
    from review_sentiment.labels import read_gold_labels
    from review_sentiment.metrics import classification_scores

    path, frame = labeled
    options = ReportOptions(by="product", min_group_rows=5)
    report_file(path, tmp_path / "whole" / "r.html", options=options, chunk_rows=100_000)
    report_file(path, tmp_path / "chunked" / "r.html", options=options, chunk_rows=37)
    whole, chunked = tmp_path / "whole" / "r_files", tmp_path / "chunked" / "r_files"
    names = sorted(p.name for p in whole.iterdir() if p.suffix in (".csv", ".json"))
    assert names == sorted(p.name for p in chunked.iterdir() if p.suffix in (".csv", ".json"))
    assert {"aspect_mentions.csv", "by_group.csv", "over_time.csv", "words.csv", "report.json"} <= set(names)
    for name in names:
        assert (whole / name).read_bytes() == (chunked / name).read_bytes(), name
    pages = [(folder / "r.html").read_text(encoding="utf-8") for folder in (tmp_path / "whole", tmp_path / "chunked")]
    without_time = [re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d · rs report", "", page) for page in pages]
    assert without_time[0] == without_time[1]
    assert not [p for p in chunked.iterdir() if p.name.startswith(".")]  # the spooled sentences are gone

    # the accuracy is rs evaluate's, on the same rows
    report = json.loads((chunked / "report.json").read_text(encoding="utf-8"))
    gold = read_gold_labels(frame.drop(columns=[c for c in frame.columns if c.startswith("prob_")])).labels
    both = [(g, p) for g, p in zip(gold, frame["predicted_label"], strict=True) if g and p]
    expected = classification_scores([g for g, _ in both], [p for _, p in both], report["labels"])
    assert report["accuracy"]["rows"] == len(both)
    assert {k: report["accuracy"][k] for k in expected} == expected


def test_a_rating_scale_is_read_from_the_whole_column_not_the_first_chunk(tmp_path, labeled):
    """The first chunk holds ratings of 5 at most: taken alone it would read as a 5-point scale, where 5 is
    positive. Read from the whole column (as rs evaluate reads it) the scale has 10 points."""
    from review_sentiment.labels import read_gold_labels
    from review_sentiment.metrics import classification_scores

    _, frame = labeled
    stars = {"negative": "2", "neutral": "5", "positive": "9"}
    rated = frame.assign(rating=frame["label"].map(stars)).drop(columns=["label"])
    rated = rated.sort_values("rating", kind="stable").reset_index(drop=True)
    assert rated["rating"].head(37).astype(int).max() <= 5
    rated.to_csv(tmp_path / "rated.csv", index=False)

    report_file(tmp_path / "rated.csv", tmp_path / "r.html", chunk_rows=37)
    accuracy = json.loads((tmp_path / "r_files" / "report.json").read_text(encoding="utf-8"))["accuracy"]
    gold = read_gold_labels(rated[["rating"]])
    assert "10-point" in gold.source and accuracy["gold"] == gold.source
    both = [(g, p) for g, p in zip(gold.labels, rated["predicted_label"], strict=True) if g and p]
    expected = classification_scores([g for g, _ in both], [p for _, p in both], ["negative", "neutral", "positive"])
    assert accuracy["confusion_matrix"] == expected["confusion_matrix"] and accuracy["rows"] == len(both)
