"""rs report: what customers praise and complain about, as one offline HTML page and the files behind it.

The input is a file `rs predict` wrote (predicted_label, confidence, prob_*, note), or any review file with
`--model`, which is labeled first exactly as `rs predict` labels it. The page holds:

- overview: rows, labeled rows, each sentiment's count and share, mean confidence, rows not scored and why;
- over time (a date column found or named): the share of each sentiment per day, week or month, with counts;
- by group (`--by`): the same split per product, store or version, most negative first;
- words: the terms that set each sentiment apart (keywords.py: kiwipiepy nouns and predicate lemmas, negation
  kept, ranked by weighted log-odds with an informative Dirichlet prior);
- aspects: for each aspect (배송, 가격, 품질 …, the most mentioned nouns or `--aspects`), the sentiment of the
  *sentences* that mention it, scored by the model, with the most confident sentences as examples;
- examples: the most confident reviews of each sentiment, and with a gold label column the accuracy, macro-F1,
  confusion matrix and the most confident mistakes.

Next to `report.html`, `report_files/` holds every table as CSV, report.json and the charts as PNG. Every text
that comes from the file (reviews, column names, group values) is escaped: the page runs no script at all.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from review_sentiment.errors import RsError
from review_sentiment.options import LabelOptions, ReadOptions, ScoringOptions
from review_sentiment.reporting import SILENT, Reporter

LABEL_NAMES_KO = {"positive": "긍정", "negative": "부정", "neutral": "중립"}

# Words an analyst uses for the same aspect; `--aspects 배송=배송/택배/배달` adds or replaces them.
ASPECT_SYNONYMS = {
    "배송": ["배송", "택배", "배달", "도착"],
    "가격": ["가격", "가성비", "값", "비싸", "저렴"],
    "품질": ["품질", "퀄리티", "마감", "재질"],
    "맛": ["맛"],
    "포장": ["포장"],
    "고객센터": ["고객센터", "상담", "응대", "문의", "CS"],
    "사이즈": ["사이즈", "크기", "치수"],
    "디자인": ["디자인", "색상", "컬러"],
    "서비스": ["서비스", "친절", "불친절"],
}


@dataclass
class ReportOptions:
    """What the report is split by and how much it shows."""

    by: str | None = None  # a group column: product, store, app version
    date_col: str | None = None  # None: found by name and content
    aspects: str | None = None  # "배송,가격=가격/값,품질"; None: the most mentioned nouns
    min_group_rows: int = 20  # groups with fewer labeled reviews are left out of the group table
    examples: int = 5  # example reviews / sentences per cell
    top_terms: int = 15
    max_aspects: int = 8

    def aspect_words(self) -> dict[str, list[str]] | None:
        """`--aspects` as aspect -> the words that mention it (None: not given)."""
        if not self.aspects:
            return None
        aspects: dict[str, list[str]] = {}
        for part in self.aspects.split(","):
            name, _, words = part.partition("=")
            name = name.strip()
            if not name:
                continue
            given = [word.strip() for word in words.split("/") if word.strip()]
            aspects[name] = list(dict.fromkeys(given or [name, *ASPECT_SYNONYMS.get(name, [])]))
        if not aspects:
            raise RsError(
                f"--aspects {self.aspects!r} names no aspect; write them as 배송,가격,품질 (or 배송=배송/택배)."
            )
        return aspects


@dataclass
class ReportSummary:
    input_path: str
    output_path: str
    files_dir: str
    rows: int
    labeled: int
    label_counts: dict[str, int]
    sections: list[str]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------- the data


@dataclass
class _Labeled:
    """The table and where its parts are."""

    table: object  # pandas DataFrame, every cell text
    text_column: str
    labels: list[str]  # the label names, in canonical order
    predicted: object  # Series of labels ('' where not scored)
    confidence: object  # Series of floats (NaN where not scored)
    notes: object  # Series of texts
    added: list[str]  # the columns rs predict added


def _labeled_table(
    input_path: Path, model_dir, reading: ReadOptions, scoring: ScoringOptions, reporter: Reporter
) -> _Labeled:
    import pandas as pd

    from review_sentiment.batch import CONFIDENCE_COLUMN, LABEL_COLUMN, NOTE_COLUMN, BatchLabeler
    from review_sentiment.io import SAMPLE_ROWS, choose_text_column, read_reviews
    from review_sentiment.labels import sort_labels

    table = read_reviews(input_path, reading.encoding, reading.sheet)
    if table.empty:
        raise RsError(f"{input_path} has no rows: nothing to report.")
    if LABEL_COLUMN not in table.columns:
        if model_dir is None:
            raise RsError(
                f"{input_path} has no {LABEL_COLUMN} column: run rs predict first, or pass --model to label it here."
            )
        labeler = BatchLabeler(
            model_dir, list(table.columns), text_col=reading.text_col, sample=table.head(SAMPLE_ROWS)
        )
        reporter.message(f"Labeling {len(table):,} rows with {model_dir} (as rs predict does)")
        with reporter.progress("Labeling", len(table)) as task:
            parts = []
            for start in range(0, len(table), 10_000):
                parts.append(labeler.label(table.iloc[start : start + 10_000]))
                task.advance(min(10_000, len(table) - start))
        table = pd.concat(parts)
        labeled_here = True
    else:
        labeled_here = False
    probability_columns = [c for c in table.columns if c.startswith("prob_")]
    added = [
        c for c in table.columns if c in (LABEL_COLUMN, CONFIDENCE_COLUMN, NOTE_COLUMN) or c in probability_columns
    ]
    predicted = table[LABEL_COLUMN].fillna("").astype(str).str.strip()
    labels = [c.removeprefix("prob_") for c in probability_columns] or sort_labels(set(predicted) - {""})
    labels = sort_labels(labels) or sorted(set(predicted) - {""})
    if not labels:
        raise RsError(f"{input_path}: the {LABEL_COLUMN} column is empty: no labeled rows to report.")
    originals = [c for c in table.columns if c not in added]
    if labeled_here:
        text_column = labeler.text_column
    else:
        text_column = choose_text_column(originals, table[originals].head(SAMPLE_ROWS), reading.text_col).name
    confidence = pd.to_numeric(
        table.get(CONFIDENCE_COLUMN, pd.Series(float("nan"), index=table.index)), errors="coerce"
    )
    notes = table.get(NOTE_COLUMN, pd.Series("", index=table.index)).fillna("").astype(str)
    table = table.reset_index(drop=True)
    return _Labeled(
        table,
        text_column,
        labels,
        predicted.reset_index(drop=True),
        confidence.reset_index(drop=True),
        notes.reset_index(drop=True),
        added,
    )


# ------------------------------------------------------------------------------------------- sections


def overview(data: _Labeled) -> dict:
    """Rows, labeled rows, each label's count and share, mean confidence, and why rows were not scored."""
    predicted, labels = data.predicted, data.labels
    labeled = int((predicted != "").sum())
    counts = {label: int((predicted == label).sum()) for label in labels}
    unscored_notes = data.notes[predicted == ""].replace("", "no label")
    return {
        "rows": len(predicted),
        "labeled": labeled,
        "counts": counts,
        "shares": {label: (counts[label] / labeled if labeled else float("nan")) for label in labels},
        "mean_confidence": float(data.confidence[predicted != ""].mean()) if labeled else float("nan"),
        "not_scored": {str(k): int(v) for k, v in unscored_notes.value_counts().items()},
    }


def label_split(keys, labels, label_names: list[str], count_column: str):
    """Per key (a group value, an aspect): its labeled rows (`count_column`), each label's count and its share
    (`share_LABEL`). Rows without a label are not counted."""
    import pandas as pd

    frame = pd.DataFrame({"key": list(keys), "label": list(labels)})
    frame = frame[frame["label"] != ""]
    counts = pd.crosstab(frame["key"], frame["label"]).reindex(columns=label_names, fill_value=0)
    counts.insert(0, count_column, counts.sum(axis=1))
    for label in label_names:
        counts[f"share_{label}"] = counts[label] / counts[count_column]
    return counts


def by_group(data: _Labeled, column: str, min_rows: int):
    """One row per group value with at least `min_rows` labeled reviews: counts and shares, most negative first;
    and how many smaller groups were left out."""
    counts = label_split(data.table[column].fillna("").astype(str), data.predicted, data.labels, "reviews")
    small = int((counts["reviews"] < min_rows).sum())
    counts = counts[counts["reviews"] >= min_rows]
    order = "share_negative" if "negative" in data.labels else f"share_{data.labels[0]}"
    counts = counts.sort_values([order, "reviews"], ascending=[False, False])
    return counts.rename_axis(column).reset_index(), small


@dataclass
class Mention:
    row: int
    text: str  # the clause that mentions the aspect
    aspect: str


# Where a review turns from one aspect to another: after -(으/는)ㄴ데, -지만, -으나, and before 그런데 / 하지만.
CONTRAST = re.compile(r"(?:(?<=데)|(?<=지만)|(?<=으나)|(?<=데,)|(?<=지만,))\s+|\s+(?=(?:그런데|하지만|근데|그러나)\s)")


def clauses(sentence: str) -> list[str]:
    """A sentence cut where it turns from one thing to another ("배송은 빠른데 | 품질이 별로")."""
    return [part.strip() for part in CONTRAST.split(sentence) if part.strip()]


def aspect_mentions(sentences: list[list[str]], aspects: dict[str, list[str]]) -> list[Mention]:
    """Every clause that mentions an aspect by one of its words, in each review's sentences (kiwipiepy's split,
    as the model splits long reviews) cut where they turn, so "배송은 빠른데 품질이 별로" mentions 배송 in one
    clause and 품질 in the other, and each gets the sentiment of its own clause."""
    found = []
    for row, review in enumerate(sentences):
        for sentence in review:
            for clause in clauses(sentence):
                for aspect, words in aspects.items():
                    if any(word in clause for word in words):
                        found.append(Mention(row, clause, aspect))
    return found


def aspect_table(mentions: list[Mention], sentiments: list[str], labels: list[str]):
    """Per aspect, most mentioned first: the clauses mentioning it, and how many of them each sentiment has."""
    counts = label_split([m.aspect for m in mentions], sentiments, labels, "mentions")
    return counts.sort_values("mentions", ascending=False).rename_axis("aspect").reset_index()


def _score_clauses(texts: list[str], model_dir, scoring: ScoringOptions, reporter: Reporter):
    """(labels, confidences) of clauses, by the model (normalized as its training data was)."""
    from review_sentiment.scoring import Predictor, labels_from_probabilities

    predictor = Predictor.from_options(model_dir, scoring)
    with reporter.progress("Scoring aspect clauses", len(texts)) as task:
        probabilities = predictor.probabilities(texts, on_batch=lambda rows: task.advance(rows))
    # confidence as rs predict writes it: the top probability (NaN for a clause with nothing left to score)
    return labels_from_probabilities(probabilities, predictor.labels), probabilities.max(axis=1)


# ------------------------------------------------------------------------------------------- charts


def _share_bars(plt, names: list[str], shares_by_label: dict[str, list[float]], counts: list[int], title: str, path):
    """Horizontal stacked bars of sentiment shares, one per name, with its count."""
    from review_sentiment.charts import SENTIMENT_COLOURS

    height = max(1.6, 0.42 * len(names) + 1.0)
    figure, axes = plt.subplots(figsize=(8, height), dpi=120)
    left = [0.0] * len(names)
    positions = list(range(len(names)))[::-1]
    for label, shares in shares_by_label.items():
        axes.barh(
            positions,
            shares,
            left=left,
            color=SENTIMENT_COLOURS.get(label, "#999999"),
            label=LABEL_NAMES_KO.get(label, label),
        )
        left = [a + (b if b == b else 0) for a, b in zip(left, shares, strict=True)]
    axes.set_yticks(positions, [f"{name} ({count:,})" for name, count in zip(names, counts, strict=True)])
    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:.0%}"))
    axes.set_title(title, fontsize=10, pad=22)  # room for the legend between the title and the bars
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(shares_by_label), frameon=False, fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _time_chart(plt, table, labels: list[str], path) -> None:
    """Each sentiment's share per period (lines), and the reviews per period (bars, so small periods show)."""
    from review_sentiment.charts import SENTIMENT_COLOURS

    figure, (shares, counts) = plt.subplots(
        2, 1, figsize=(9, 5), dpi=120, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    x = list(range(len(table)))
    for label in labels:
        shares.plot(
            x,
            table[f"share_{label}"],
            marker="o",
            markersize=3,
            color=SENTIMENT_COLOURS.get(label, "#999"),
            label=LABEL_NAMES_KO.get(label, label),
        )
    shares.set_ylim(0, 1)
    shares.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:.0%}"))
    shares.legend(frameon=False, fontsize=8, ncol=len(labels))
    shares.set_title("기간별 감성 비율", fontsize=10)
    counts.bar(x, table["reviews"], color="#888888")
    counts.set_ylabel("리뷰 수", fontsize=8)
    step = max(1, len(x) // 12)
    counts.set_xticks(x[::step], list(table["period"])[::step], rotation=30, fontsize=7, ha="right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# ------------------------------------------------------------------------------------------- the page


def _e(value) -> str:
    """Text from the file, safe in HTML text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def _percent(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _table(frame, columns: list[tuple[str, str, str]], link=None) -> str:
    """An HTML table of `frame`'s `columns` (key, header, kind: text | int | share | float)."""
    head = "".join(f"<th>{_e(header)}</th>" for _, header, _ in columns)
    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        cells = []
        for key, _, kind in columns:
            value = record.get(key)
            if kind == "int":
                text = f"{int(value):,}" if value == value and value is not None else "–"
            elif kind == "share":
                text = _percent(value)
            elif kind == "float":
                text = f"{value:.2f}" if value == value and value is not None else "–"
            else:
                text = _e(value)
            if link and (target := link(index, key)):
                text = f'<a href="#{target}">{text}</a>'
            cells.append(f'<td class="{kind}">{text}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_STYLE = """
body { font-family: "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans CJK KR", "NanumGothic", "RsKorean",
  sans-serif; margin: 0 auto; max-width: 1100px; padding: 24px; color: #222; line-height: 1.5; }
h1 { font-size: 1.6em; margin-bottom: 0; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 2em; }
.meta { color: #666; font-size: .9em; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 120px; }
.card b { display: block; font-size: 1.5em; }
.negative { color: #b2182b; } .positive { color: #2166ac; } .neutral { color: #666; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: .92em; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 10px; text-align: left; vertical-align: top; }
td.int, td.share, td.float { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { white-space: nowrap; }
img { max-width: 100%; height: auto; }
.columns { display: flex; flex-wrap: wrap; gap: 24px; } .columns > div { flex: 1 1 300px; }
blockquote { margin: 4px 0 10px; padding: 4px 12px; border-left: 4px solid #ddd; background: #fafafa; }
blockquote small { color: #777; }
.note { color: #666; font-size: .9em; }
@media print { body { max-width: none; padding: 0; } h2 { break-after: avoid; } table, img, blockquote
  { break-inside: avoid; } a { color: inherit; text-decoration: none; } }
"""


def _label_span(label: str) -> str:
    return f'<span class="{_e(label)}">{_e(LABEL_NAMES_KO.get(label, label))} ({_e(label)})</span>'


def _quote(text: str, label: str, confidence, extra: str = "") -> str:
    shown = text if len(text) <= 400 else text[:400] + "…"
    score = f" · {confidence:.2f}" if confidence == confidence and confidence is not None else ""
    return f"<blockquote>{_e(shown)}<br><small>{_label_span(label)}{score}{_e(extra)}</small></blockquote>"


def _font_face(text: str) -> str:
    """NanumGothic (the font the charts use), cut down to the characters of this page and embedded, so that
    Korean shows on a machine without Korean fonts and the page still needs nothing from outside."""
    import io
    import logging

    try:
        import koreanize_matplotlib
        from fontTools import subset

        logging.getLogger("fontTools.subset").setLevel(logging.ERROR)  # "TSI0 NOT subset" for hinting tables

        font_path = next(Path(koreanize_matplotlib.__file__).parent.rglob("NanumGothic.ttf"))
        options = subset.Options()
        options.name_IDs = ["*"]
        font = subset.load_font(str(font_path), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(text="".join(sorted(set(text))))
        subsetter.subset(font)
        buffer = io.BytesIO()
        font.save(buffer)
    except (ImportError, StopIteration, OSError):
        return ""  # the page then uses the system's Korean fonts
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'@font-face {{ font-family: "RsKorean"; src: url(data:font/ttf;base64,{data}) format("truetype"); }}'


def render_html(title: str, meta_line: str, sections: list[tuple[str, str, str]]) -> str:
    """The page: `sections` as (anchor, heading, body HTML). No script."""
    nav = " · ".join(f'<a href="#{anchor}">{_e(heading)}</a>' for anchor, heading, _ in sections)
    body = "".join(
        f'<section id="{anchor}"><h2>{_e(heading)}</h2>{content}</section>' for anchor, heading, content in sections
    )
    page_text = title + meta_line + html.unescape(body)
    return (
        '<!DOCTYPE html>\n<html lang="ko"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # nothing from outside, no script: the page is built from untrusted review text
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; font-src data:\">"
        f"<title>{_e(title)}</title><style>{_font_face(page_text)}{_STYLE}</style></head><body>"
        f'<h1>{_e(title)}</h1><p class="meta">{_e(meta_line)}</p><nav>{nav}</nav>{body}</body></html>\n'
    )


# ------------------------------------------------------------------------------------------- the command


def default_report_path(input_path: Path) -> Path:
    from review_sentiment.io import table_stem

    return input_path.with_name(f"{table_stem(input_path)}.report.html")


@dataclass
class _Build:
    """What the sections of one report share: the labeled data, where files go, and what is collected."""

    data: _Labeled
    options: ReportOptions
    files_dir: Path
    plt: object
    results: dict = field(default_factory=dict)  # report.json
    warnings: list[str] = field(default_factory=list)

    def csv(self, frame, name: str) -> None:
        frame.to_csv(self.files_dir / name, index=False, encoding="utf-8-sig")  # BOM: Excel shows Hangul

    def share_columns(self) -> list[tuple[str, str, str]]:
        return [(f"share_{label}", LABEL_NAMES_KO.get(label, label), "share") for label in self.data.labels]


def report_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    model_dir: str | Path | None = None,
    options: ReportOptions = ReportOptions(),
    reading: ReadOptions = ReadOptions(),
    labels: LabelOptions = LabelOptions(),
    scoring: ScoringOptions = ScoringOptions(),
    reporter: Reporter = SILENT,
) -> ReportSummary:
    """Write the report of a labeled review file (or label it first with `model_dir`): OUTPUT.html and, beside it,
    OUTPUT_files/ with report.json, a CSV per table and the charts as PNG."""
    from review_sentiment.charts import korean_pyplot
    from review_sentiment.io import write_bytes_atomically

    started = time.perf_counter()
    input_path = Path(input_path)
    if not input_path.exists():
        raise RsError(f"No such file: {input_path}")
    output_path = Path(output_path) if output_path else default_report_path(input_path)
    if output_path.suffix.lower() not in (".html", ".htm"):
        raise RsError(f"-o {output_path}: the report is an HTML page; name it …/report.html.")
    aspect_words = options.aspect_words()  # its spelling, before any work

    data = _labeled_table(input_path, model_dir, reading, scoring, reporter)
    for option, column in (("--by", options.by), ("--date-col", options.date_col)):
        if column is not None and column not in data.table.columns:
            listed = ", ".join(str(c) for c in data.table.columns)
            raise RsError(f"{option} {column} is not a column of {input_path.name}; its columns: {listed}.")
    files_dir = output_path.with_name(output_path.stem + "_files")
    files_dir.mkdir(parents=True, exist_ok=True)
    build = _Build(data, options, files_dir, korean_pyplot())
    build.results.update({"input": str(input_path), "labels": data.labels, "text_column": data.text_column})

    sections = [_overview_section(build), _time_section(build)]
    if options.by:
        sections.append(_group_section(build))
    analyzed = _analyze(build, reporter)
    sections.append(_words_section(build, analyzed.terms))
    if aspect_words is None:
        aspect_words = _frequent_aspects(analyzed.terms, options.max_aspects)
    sections.append(_aspects_section(build, analyzed.sentences, aspect_words, model_dir, scoring, reporter))
    sections.append(_examples_section(build, labels, input_path.name))

    build.results["warnings"] = build.warnings
    report_json = json.dumps(build.results, ensure_ascii=False, indent=2, default=str)
    (files_dir / "report.json").write_text(report_json, encoding="utf-8")
    summary = build.results["overview"]
    title = f"리뷰 감성 리포트 · {input_path.name}"
    meta = f"{summary['rows']:,} rows · text column {data.text_column} · {time.strftime('%Y-%m-%d %H:%M')} · rs report"
    write_bytes_atomically(output_path, render_html(title, meta, sections).encode("utf-8"))
    return ReportSummary(
        input_path=str(input_path),
        output_path=str(output_path),
        files_dir=str(files_dir),
        rows=summary["rows"],
        labeled=summary["labeled"],
        label_counts=summary["counts"],
        sections=[anchor for anchor, _, _ in sections],
        warnings=build.warnings,
        seconds=round(time.perf_counter() - started, 1),
    )


Section = tuple[str, str, str]  # anchor, heading, body HTML


def _overview_section(build: _Build) -> Section:
    import pandas as pd

    data, labels = build.data, build.data.labels
    summary = build.results["overview"] = overview(data)
    rows = [
        {"label": label, "reviews": summary["counts"][label], "share": summary["shares"][label]} for label in labels
    ]
    build.csv(pd.DataFrame(rows), "overview.csv")
    shares = {label: [summary["shares"][label]] for label in labels}
    _share_bars(build.plt, ["전체"], shares, [summary["labeled"]], "감성 분포", build.files_dir / "overview.png")
    cards = [("rows", f"{summary['rows']:,}", ""), ("labeled", f"{summary['labeled']:,}", "")]
    cards += [
        (_label_span(label), _percent(summary["shares"][label]), f"{summary['counts'][label]:,} reviews")
        for label in labels
    ]
    cards.append(("mean confidence", f"{summary['mean_confidence']:.2f}", ""))
    card_html = "".join(f'<div class="card">{name}<b>{value}</b>{below}</div>' for name, value, below in cards)
    not_scored = "".join(f"<li>{_e(why)}: {n:,}</li>" for why, n in summary["not_scored"].items())
    why = (
        f"<p>Rows not scored, and why:</p><ul>{not_scored}</ul>"
        if not_scored
        else "<p class=note>Every row was scored.</p>"
    )
    image = _image(build.files_dir / "overview.png", "sentiment shares")
    return "overview", "Overview · 개요", f'<div class="cards">{card_html}</div>{image}{why}'


def _time_section(build: _Build) -> Section:
    from review_sentiment import dates

    data, heading = build.data, "Over time · 기간별"
    candidates = data.table.drop(columns=[c for c in [*data.added, data.text_column] if c in data.table.columns])
    column = dates.find_date_column(candidates, build.options.date_col)
    if column is None:
        return "time", heading, "<p class=note>No date column found (name one with --date-col).</p>"
    parsed = dates.parse_dates(data.table[column])
    known = parsed.dates.dropna()
    if not len(known):
        return "time", heading, f"<p class=note>No date in column {_e(column)} could be read.</p>"
    period = dates.choose_period(known.min(), known.max())
    table = dates.period_table(parsed.dates, data.predicted, data.labels, period)
    build.csv(table, "over_time.csv")
    _time_chart(build.plt, table, data.labels, build.files_dir / "over_time.png")
    unit = {"D": "day", "W": "week", "M": "month"}[period]
    build.results["over_time"] = {
        "column": column,
        "period": unit,
        "parsed": parsed.parsed,
        "unparsed": parsed.unparsed,
        "empty": parsed.empty,
        "table": json.loads(table.drop(columns=["start"]).to_json(orient="records", force_ascii=False)),
    }
    unread = ""
    if parsed.unparsed:
        unread = f" {parsed.unparsed:,} could not be read (e.g. {', '.join(map(repr, parsed.examples_unparsed))})."
    note = (
        f"<p class=note>Column {_e(column)}, per {unit}: {parsed.parsed:,} dates read.{_e(unread)} Shares of periods "
        "with few reviews move a lot: read them with the counts.</p>"
    )
    columns = [("period", unit, "text"), ("reviews", "reviews", "int"), *build.share_columns()]
    return (
        "time",
        heading,
        note + _image(build.files_dir / "over_time.png", "sentiment over time") + _table(table, columns),
    )


def _group_section(build: _Build) -> Section:
    column, minimum = build.options.by, build.options.min_group_rows
    groups, small = by_group(build.data, column, minimum)
    build.csv(groups, "by_group.csv")
    build.results["by_group"] = {
        "column": column,
        "left_out_small_groups": small,
        "table": json.loads(groups.to_json(orient="records", force_ascii=False)),
    }
    shown, image = groups.head(20), ""
    if len(shown):
        shares = {label: shown[f"share_{label}"].tolist() for label in build.data.labels}
        path = build.files_dir / "by_group.png"
        _share_bars(build.plt, shown[column].tolist(), shares, shown["reviews"].tolist(), f"{column}별 감성", path)
        image = _image(path, "sentiment by group")
    left_out = f"; {small:,} smaller groups left out" if small else ""
    note = f"<p class=note>Groups with at least {minimum} labeled reviews, most negative first{left_out}.</p>"
    columns = [(column, column, "text"), ("reviews", "reviews", "int"), *build.share_columns()]
    return "groups", f"By {column} · 그룹별", note + image + _table(groups, columns)


def _analyze(build: _Build, reporter: Reporter):
    """The reviews cleaned, with their terms and sentences: one kiwipiepy pass (keywords.analyze_reviews)."""
    from review_sentiment import keywords

    texts = build.data.table[build.data.text_column].tolist()
    with reporter.progress("Reading the reviews (kiwipiepy)", len(texts)) as task:
        return keywords.analyze_reviews(texts, on_rows=task.advance)


def _words_section(build: _Build, terms: list[list[str]]) -> Section:
    import pandas as pd

    from review_sentiment import keywords

    labels = build.data.labels
    distinctive = keywords.distinctive_terms(terms, build.data.predicted.tolist(), top=build.options.top_terms)
    rows = [{"label": label, **asdict(score)} for label in labels for score in distinctive.get(label, [])]
    build.csv(pd.DataFrame(rows), "words.csv")
    build.results["words"] = rows
    columns = [
        ("term", "term", "text"),
        ("count", "reviews", "int"),
        ("share", "share", "share"),
        ("other_share", "elsewhere", "share"),
        ("z", "z", "float"),
    ]
    blocks = []
    for label in labels:
        scores = pd.DataFrame([asdict(score) for score in distinctive.get(label, [])])
        body = _table(scores, columns) if len(scores) else "<p>–</p>"
        blocks.append(f"<div><h3>{_label_span(label)}</h3>{body}</div>")
    note = (
        "<p class=note>Nouns and predicates (kiwipiepy; negation kept: 안 좋다 is not 좋다) that set each sentiment "
        "apart from the others, by weighted log-odds with an informative Dirichlet prior (Monroe et al. 2008): "
        "z above 2 is unlikely by chance. Share: of that sentiment's reviews; elsewhere: of the others'.</p>"
    )
    return "words", "What people talk about · 감성별 주요 단어", f'{note}<div class="columns">{"".join(blocks)}</div>'


def _frequent_aspects(terms: list[list[str]], top: int) -> dict[str, list[str]]:
    from review_sentiment import keywords

    return {
        noun: list(dict.fromkeys([noun, *ASPECT_SYNONYMS.get(noun, [])]))
        for noun, _ in keywords.frequent_nouns(terms, top=top)
    }


def _aspects_section(build: _Build, sentences, aspect_words, model_dir, scoring: ScoringOptions, reporter) -> Section:
    import pandas as pd

    data, labels, heading = build.data, build.data.labels, "Aspects · 속성별 감성"
    mentions = aspect_mentions(sentences, aspect_words) if aspect_words else []
    if not mentions:
        return "aspects", heading, "<p class=note>No review mentions an aspect (name them with --aspects).</p>"
    if model_dir is not None:
        clause_labels, confidence = _score_clauses([m.text for m in mentions], model_dir, scoring, reporter)
        how = "each clause scored by the model"
    else:
        clause_labels = [data.predicted[m.row] for m in mentions]
        confidence = [data.confidence[m.row] for m in mentions]
        how = "the label of the whole review (pass --model to score each clause on its own)"
        build.warnings.append("Aspects took each review's label: pass --model to score the clauses that mention them.")
    aspects = aspect_table(mentions, clause_labels, labels)
    found = pd.DataFrame(
        {
            "aspect": [m.aspect for m in mentions],
            "row": [m.row for m in mentions],
            "text": [m.text for m in mentions],
            "label": clause_labels,
            "confidence": list(confidence),
        }
    )
    build.csv(aspects, "aspects.csv")
    build.csv(found, "aspect_mentions.csv")
    build.results["aspects"] = {
        "words": aspect_words,
        "scored": how,
        "table": json.loads(aspects.to_json(orient="records", force_ascii=False)),
    }
    shares = {label: aspects[f"share_{label}"].tolist() for label in labels}
    path = build.files_dir / "aspects.png"
    _share_bars(build.plt, aspects["aspect"].tolist(), shares, aspects["mentions"].tolist(), "속성별 감성", path)
    anchors, quotes = {}, []
    for index, aspect in enumerate(aspects["aspect"].tolist()):
        for label in labels:
            chosen = found[(found["aspect"] == aspect) & (found["label"] == label)]
            chosen = chosen.sort_values("confidence", ascending=False).head(build.options.examples)
            if len(chosen):
                anchor = anchors[(index, label)] = f"aspect-{index}-{labels.index(label)}"
                items = "".join(_quote(row.text, label, row.confidence) for row in chosen.itertuples())
                quotes.append(f'<div id="{anchor}"><h3>{_e(aspect)} · {_label_span(label)}</h3>{items}</div>')
    words = "; ".join(f"{aspect}: {'/'.join(words)}" for aspect, words in aspect_words.items())
    note = (
        f"<p class=note>Sentiment of the clauses that mention an aspect ({_e(how)}); a review can mention several, "
        f"each with its own sentiment. Words per aspect — {_e(words)}. Click a share for example clauses.</p>"
    )
    columns = [("aspect", "aspect", "text"), ("mentions", "mentions", "int"), *build.share_columns()]
    table = _table(aspects, columns, lambda index, key: anchors.get((index, key.removeprefix("share_"))))
    return "aspects", heading, note + _image(path, "sentiment by aspect") + table + "".join(quotes)


def _examples_section(build: _Build, labels: LabelOptions, name: str) -> Section:
    data, examples = build.data, build.options.examples
    table, text = data.table, data.text_column
    blocks = []
    for label in data.labels:
        chosen = data.confidence[data.predicted == label].sort_values(ascending=False).head(examples)
        items = "".join(_quote(table[text][i], label, data.confidence[i]) for i in chosen.index)
        blocks.append(f"<div><h3>{_label_span(label)}</h3>{items or '<p>–</p>'}</div>")
    body = (
        f'<p class=note>The most confident reviews of each sentiment.</p><div class="columns">{"".join(blocks)}</div>'
    )
    gold = _gold_labels(table[[c for c in table.columns if c not in data.added]], labels)
    if gold is not None:
        body += _accuracy(build, *gold, name)
    return "examples", "Examples · 예시", body


def _accuracy(build: _Build, gold: list[str], source: str, name: str) -> str:
    """Accuracy, macro-F1 and the confusion matrix as rs evaluate computes them, and the most confident mistakes."""
    from review_sentiment.metrics import classification_scores, plot_confusion_matrices

    data = build.data
    both = [i for i, (g, p) in enumerate(zip(gold, data.predicted, strict=True)) if g and p]
    scores = classification_scores([gold[i] for i in both], [data.predicted[i] for i in both], data.labels)
    build.results["accuracy"] = {"gold": source, "rows": len(both), **scores}
    path = build.files_dir / "confusion_matrix.png"
    plot_confusion_matrices([(scores, source)], path, name)
    mistakes = sorted((i for i in both if gold[i] != data.predicted[i]), key=lambda i: -_number(data.confidence[i]))
    quotes = "".join(
        _quote(data.table[data.text_column][i], data.predicted[i], data.confidence[i], f" · gold: {gold[i]}")
        for i in mistakes[: build.options.examples * 2]
    )
    return (
        f"<h3>Against the gold labels ({_e(source)}, {len(both):,} rows)</h3>"
        f"<p>accuracy <b>{scores['accuracy']:.3f}</b> · macro-F1 <b>{scores['macro_f1']:.3f}</b> (as rs evaluate "
        f"computes them)</p>{_image(path, 'confusion matrix')}"
        f"<h3>The most confident mistakes</h3>{quotes or '<p>none</p>'}"
    )


def _number(value) -> float:
    return 0.0 if value is None or value != value else float(value)


def _gold_labels(table, labels: LabelOptions):
    """(gold labels, where they came from) when the file has a label or rating column, else None."""
    from review_sentiment.labels import read_gold_labels

    given = labels.label_col or labels.rating_col
    try:
        gold = read_gold_labels(table, labels.label_col, labels.rating_col, labels.rating_scale, labels.rating_bins)
    except RsError:
        if given:
            raise
        return None
    return [label or "" for label in gold.labels], gold.source
