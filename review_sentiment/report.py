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

The file is read a chunk at a time (`_Input`), and each section is a tally that counts what it needs from every
chunk (`_Tallies`); the sentences wait in a temporary file (`_Spool`) for the aspects, which are chosen from
the whole file's nouns. So a file of millions of rows takes the memory of one chunk and of the counts.
"""

from __future__ import annotations

import base64
import heapq
import html
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import chain
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


# ------------------------------------------------------------------------------------------- the input

REPORT_CHUNK_ROWS = 20_000  # rows read, labeled and analyzed at a time: memory holds one chunk, not the file


@dataclass
class _Chunk:
    """Rows of the file with their labels."""

    table: object  # pandas DataFrame, every cell text
    first_row: int  # the 0-based row number of its first row in the file
    predicted: object  # Series of labels ('' where not scored)
    confidence: object  # Series of floats (NaN where not scored)
    notes: object  # Series of texts


class _Input:
    """A review file read a chunk at a time: labeled already (a file rs predict wrote), or labeled here by the
    model, chunk by chunk, as rs predict labels it. The text, date and gold columns are chosen from the first
    chunk, before any work."""

    def __init__(
        self,
        input_path: Path,
        model_dir,
        options: ReportOptions,
        reading: ReadOptions,
        labels: LabelOptions,
        scoring: ScoringOptions,
        chunk_rows: int,
    ):
        from review_sentiment import dates
        from review_sentiment.batch import CONFIDENCE_COLUMN, LABEL_COLUMN, NOTE_COLUMN, BatchLabeler
        from review_sentiment.io import SAMPLE_ROWS, choose_text_column, open_reviews
        from review_sentiment.labels import find_gold_column

        self.source = open_reviews(input_path, reading.encoding, reading.sheet)
        if self.source.rows == 0:
            raise RsError(f"{input_path} has no rows: nothing to report.")
        columns = self.source.columns
        for option, column in (("--by", options.by), ("--date-col", options.date_col)):
            if column is not None and column not in columns:
                listed = ", ".join(str(c) for c in columns)
                raise RsError(f"{option} {column} is not a column of {input_path.name}; its columns: {listed}.")
        self._chunks = self.source.chunks(chunk_rows)
        self._first = next(self._chunks)
        self.labeler = None
        if LABEL_COLUMN not in columns:
            if model_dir is None:
                raise RsError(
                    f"{input_path} has no {LABEL_COLUMN} column: run rs predict first, or pass --model to label it "
                    "here."
                )
            self.labeler = BatchLabeler(
                model_dir,
                columns,
                text_col=reading.text_col,
                sample=self._first,
                scoring=scoring,
                hint=self.source.other_sheets_hint,
            )
            self.names = self.labeler.names
            self.originals, self.text_column = list(columns), self.labeler.text_column
            self.probability_labels = list(self.labeler.labels)
        else:
            probability_columns = [c for c in columns if c.startswith("prob_")]
            self.names = {name: name for name in (LABEL_COLUMN, CONFIDENCE_COLUMN, NOTE_COLUMN)}
            added = {LABEL_COLUMN, CONFIDENCE_COLUMN, NOTE_COLUMN, *probability_columns}
            self.originals = [c for c in columns if c not in added]
            sample = self._first[self.originals].head(SAMPLE_ROWS)
            self.text_column = choose_text_column(self.originals, sample, reading.text_col).name
            self.probability_labels = [c.removeprefix("prob_") for c in probability_columns]
        others = [c for c in self.originals if c != self.text_column]
        self.date_column = dates.find_date_column(self._first[others], options.date_col)
        try:
            self.gold = find_gold_column(
                self.originals, labels.label_col, labels.rating_col, labels.rating_scale, labels.rating_bins
            )
        except RsError:
            if labels.label_col or labels.rating_col:
                raise
            self.gold = None  # several columns named like labels: the report goes without accuracy

    def chunks(self, on_labeled: Callable[[int], None]) -> Iterator[_Chunk]:
        """Every chunk, labeled; `on_labeled(n)` counts the rows the model labeled."""
        import pandas as pd

        from review_sentiment.batch import CONFIDENCE_COLUMN, LABEL_COLUMN, NOTE_COLUMN, UNCERTAIN

        first_row = 0
        for table in chain([self._first], self._chunks):
            if self.labeler is not None:
                table = self.labeler.label(table)
                on_labeled(len(table))
            table = table.reset_index(drop=True)
            column = table.get(self.names[CONFIDENCE_COLUMN], pd.Series(float("nan"), index=table.index))
            predicted = table[self.names[LABEL_COLUMN]].fillna("").astype(str).str.strip()
            notes = table.get(self.names[NOTE_COLUMN], pd.Series("", index=table.index)).fillna("").astype(str)
            # rs predict --min-confidence: no sentiment to count, like a row without text
            uncertain = predicted == UNCERTAIN
            predicted, notes = predicted.mask(uncertain, ""), notes.mask(uncertain, UNCERTAIN_NOTE)
            yield _Chunk(table, first_row, predicted, pd.to_numeric(column, errors="coerce"), notes)
            first_row += len(table)

    def label_names(self, seen: set[str]) -> list[str]:
        """The labels in canonical order: the model's (its probability columns), else the labels the file holds."""
        from review_sentiment.batch import LABEL_COLUMN
        from review_sentiment.labels import sort_labels

        labels = sort_labels(self.probability_labels or seen) or sorted(self.probability_labels or seen)
        if not labels:
            raise RsError(f"{self.source.path}: the {LABEL_COLUMN} column is empty: no labeled rows to report.")
        return labels


UNCERTAIN_NOTE = "labeled uncertain by rs predict --min-confidence (below that confidence)"


# ------------------------------------------------------------------------------------------- tallies
# Each section counts what it needs as the chunks go by; nothing keeps the rows.


def _sort_key(confidence) -> float:
    return float("-inf") if confidence is None or confidence != confidence else float(confidence)


class _Best:
    """The `size` most confident items added, most confident first (ties: the earlier row first)."""

    def __init__(self, size: int):
        self.size, self._heap, self._added = size, [], 0

    def add(self, confidence, row: int, item) -> None:
        self._added += 1  # the entries differ before `item`, which is never compared
        entry = (_sort_key(confidence), -row, -self._added, item)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        elif self.size and entry > self._heap[0]:
            heapq.heapreplace(self._heap, entry)

    def ranked(self) -> list[tuple[float, int, object]]:
        """(confidence for sorting: -inf for none, row, item), most confident first."""
        return [(key, -negative_row, item) for key, negative_row, _, item in sorted(self._heap, reverse=True)]

    def best(self) -> list:
        return [item for _, _, item in self.ranked()]


def _add_most_confident(best: dict, frame, keys: list[str], size: int) -> None:
    """Offer `best[key]` (a _Best per key) the `size` most confident rows of each key of `frame`, whose columns
    are `keys`, row, confidence and item."""
    top = frame.sort_values("confidence", ascending=False, kind="stable").groupby(keys, sort=False).head(size)
    for record in top.itertuples(index=False):
        key = tuple(getattr(record, k) for k in keys)
        best.setdefault(key if len(key) > 1 else key[0], _Best(size)).add(record.confidence, record.row, record.item)


class _Counts:
    """Labeled rows counted per (key, label): a group value or an aspect."""

    def __init__(self):
        self.pairs: Counter = Counter()

    def add(self, keys, labels) -> None:
        import pandas as pd

        frame = pd.DataFrame({"key": list(keys), "label": list(labels)})
        self.pairs.update(frame[frame["label"] != ""].value_counts().to_dict())

    def table(self, label_names: list[str], count_column: str):
        """Per key: its labeled rows (`count_column`), each label's count and its share (`share_LABEL`)."""
        import pandas as pd

        frame = pd.DataFrame([(key, label, n) for (key, label), n in self.pairs.items()], columns=["key", "label", "n"])
        table = frame.groupby(["key", "label"])["n"].sum().unstack(fill_value=0)
        table = table.reindex(columns=label_names, fill_value=0).astype("int64")
        table.columns.name = None
        table.insert(0, count_column, frame.groupby("key")["n"].sum().reindex(table.index).astype("int64"))
        for label in label_names:
            table[f"share_{label}"] = table[label] / table[count_column]
        return table


class _Overview:
    def __init__(self):
        self.rows, self.counts, self.not_scored = 0, Counter(), Counter()
        self.confidence_nanos, self.confidence_rows = 0, 0

    def add(self, chunk: _Chunk) -> None:
        import numpy as np

        scored = chunk.predicted != ""
        self.rows += len(chunk.predicted)
        self.counts.update(chunk.predicted[scored].value_counts().to_dict())
        confidence = chunk.confidence[scored].dropna().to_numpy(dtype="float64")
        # in whole billionths, summed as integers: the total does not depend on where the chunks cut the file
        self.confidence_nanos += int(np.round(confidence * 1e9).astype(np.int64).sum())
        self.confidence_rows += len(confidence)
        self.not_scored.update(chunk.notes[~scored].replace("", "no label").value_counts().to_dict())

    def result(self, labels: list[str]) -> dict:
        """Rows, labeled rows, each label's count and share, mean confidence, and why rows were not scored."""
        labeled = sum(self.counts.values())
        counts = {label: int(self.counts[label]) for label in labels}
        return {
            "rows": self.rows,
            "labeled": labeled,
            "counts": counts,
            "shares": {label: (counts[label] / labeled if labeled else float("nan")) for label in labels},
            "mean_confidence": self.confidence_nanos / 1e9 / self.confidence_rows
            if self.confidence_rows
            else float("nan"),
            "not_scored": {str(why): int(n) for why, n in self.not_scored.most_common()},
        }


class _OverTime:
    """Labeled rows per day and label, and how many dates were read."""

    def __init__(self, column: str):
        self.column, self.days = column, Counter()
        self.parsed = self.unparsed = self.empty = 0
        self.examples_unparsed: list[str] = []
        self.first = self.last = None

    def add(self, chunk: _Chunk) -> None:
        import pandas as pd

        from review_sentiment import dates

        parsed = dates.parse_dates(chunk.table[self.column])
        self.parsed, self.unparsed, self.empty = (
            self.parsed + parsed.parsed,
            self.unparsed + parsed.unparsed,
            self.empty + parsed.empty,
        )
        self.examples_unparsed = list(dict.fromkeys([*self.examples_unparsed, *parsed.examples_unparsed]))[:5]
        known = parsed.dates.dropna()
        if len(known):
            low, high = known.min(), known.max()
            self.first = low if self.first is None else min(self.first, low)
            self.last = high if self.last is None else max(self.last, high)
        days = pd.DataFrame({"day": parsed.dates.dt.normalize(), "label": chunk.predicted})
        days = days[days["day"].notna() & (days["label"] != "")]
        self.days.update(days.value_counts().to_dict())

    def table(self, labels: list[str]):
        import pandas as pd

        from review_sentiment import dates

        period = dates.choose_period(self.first, self.last)
        days = pd.Series([day for day, _ in self.days], dtype="datetime64[us]")
        table = dates.period_table(
            days, pd.Series([label for _, label in self.days], dtype=object), labels, period, list(self.days.values())
        )
        return period, table


class _Examples:
    """The most confident reviews of each label."""

    def __init__(self, size: int, text_column: str):
        self.size, self.text_column, self.best = size, text_column, {}

    def add(self, chunk: _Chunk) -> None:
        import pandas as pd

        frame = pd.DataFrame(
            {
                "label": chunk.predicted,
                "row": range(chunk.first_row, chunk.first_row + len(chunk.predicted)),
                "confidence": chunk.confidence,
                "item": list(zip(chunk.table[self.text_column], chunk.confidence, strict=True)),
            }
        )
        _add_most_confident(self.best, frame[frame["label"] != ""], ["label"], self.size)

    def of(self, label: str) -> list[tuple[str, float]]:
        """(text, confidence) of the label's most confident reviews."""
        return self.best[label].best() if label in self.best else []


class _Gold:
    """Rows counted per (gold cell, predicted label), and the most confident rows of each pair: which pairs are
    mistakes is known once the cells are read as labels, at the end, from every distinct cell (a rating scale is
    inferred from the whole column, as rs evaluate infers it)."""

    def __init__(self, column, size: int, text_column: str):
        self.column, self.size, self.text_column = column, size, text_column
        self.pairs: Counter = Counter()
        self.cells: dict[str, None] = {}  # every distinct cell, in file order (error messages quote the first)
        self.best: dict = {}

    def add(self, chunk: _Chunk) -> None:
        import pandas as pd

        cells = chunk.table[self.column.name].fillna("").astype(str)
        self.cells.update(dict.fromkeys(cells.drop_duplicates().tolist()))
        scored = chunk.predicted != ""
        frame = pd.DataFrame(
            {
                "cell": cells,
                "label": chunk.predicted,
                "row": range(chunk.first_row, chunk.first_row + len(cells)),
                "confidence": chunk.confidence,
            }
        )[scored]
        self.pairs.update(frame[["cell", "label"]].value_counts().to_dict())
        texts = chunk.table[self.text_column][scored]
        frame["item"] = list(zip(texts, frame["label"], frame["confidence"], strict=True))
        _add_most_confident(self.best, frame, ["cell", "label"], self.size)

    def result(self, options: LabelOptions):
        """((gold, predicted, rows) per pair, where the gold labels came from, the most confident mistakes as
        (text, predicted, confidence, gold)), or None when the column holds no labels rs can read and none was
        named."""
        import pandas as pd

        from review_sentiment.labels import read_gold_labels

        cells = list(self.cells)
        name, given = self.column.name, options.label_col or options.rating_col
        try:
            gold = read_gold_labels(
                pd.DataFrame({name: cells}),
                None if self.column.is_rating else name,
                name if self.column.is_rating else None,
                options.rating_scale,
                options.rating_bins,
            )
        except RsError:
            if given:
                raise
            return None
        gold_of = {cell: label or "" for cell, label in zip(cells, gold.labels, strict=True)}
        pairs = [(gold_of[cell], label, n) for (cell, label), n in self.pairs.items() if gold_of[cell]]
        mistakes = [
            (-key, row, (*item, gold_of[cell]))
            for (cell, label), best in self.best.items()
            if gold_of[cell] and gold_of[cell] != label
            for key, row, item in best.ranked()
        ]
        mistakes.sort(key=lambda entry: entry[:2])  # the most confident first, then the earlier row
        return pairs, gold.source, [item for _, _, item in mistakes[: self.size]]


class _Spool:
    """Each review's sentences with its label and confidence, kept in a file between the pass that reads the
    reviews and the one that finds the aspects in them: aspects are the nouns of the whole file."""

    def __init__(self, folder: Path):
        import tempfile

        self.file = tempfile.TemporaryFile("w+", encoding="utf-8", dir=folder, prefix=".rs-report-")
        self.reviews = 0

    def add(self, chunk: _Chunk, sentences: list[list[str]]) -> None:
        rows = range(chunk.first_row, chunk.first_row + len(sentences))
        for row, label, confidence, review in zip(rows, chunk.predicted, chunk.confidence, sentences, strict=True):
            if review:
                confidence = None if confidence != confidence else float(confidence)
                self.file.write(json.dumps([row, label, confidence, review], ensure_ascii=False) + "\n")
                self.reviews += 1

    def __iter__(self):
        self.file.seek(0)
        for line in self.file:
            yield json.loads(line)

    def close(self) -> None:
        self.file.close()


class _Tallies:
    """What every section counts, a chunk at a time."""

    def __init__(self, reviews: _Input, options: ReportOptions, spool: _Spool):
        from review_sentiment import keywords

        self.overview = _Overview()
        self.over_time = _OverTime(reviews.date_column) if reviews.date_column else None
        self.groups = _Counts() if options.by else None
        self.by = options.by
        self.terms = keywords.TermCounts()
        self.examples = _Examples(options.examples, reviews.text_column)
        self.gold = _Gold(reviews.gold, options.examples * 2, reviews.text_column) if reviews.gold else None
        self.spool, self.text_column = spool, reviews.text_column

    def add(self, chunk: _Chunk, on_read: Callable[[int], None]) -> None:
        from review_sentiment import keywords

        self.overview.add(chunk)
        if self.over_time:
            self.over_time.add(chunk)
        if self.groups:
            self.groups.add(chunk.table[self.by].fillna("").astype(str), chunk.predicted)
        self.examples.add(chunk)
        if self.gold:
            self.gold.add(chunk)
        analyzed = keywords.analyze_reviews(chunk.table[self.text_column].tolist(), on_rows=on_read)
        self.terms.add(analyzed.terms, chunk.predicted.tolist())
        self.spool.add(chunk, analyzed.sentences)


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


class _Aspects:
    """The aspect clauses of every review, found in the spool a batch at a time: each clause labeled by the model
    (or given its review's label), counted per aspect and label, written to aspect_mentions.csv, and the most
    confident kept as examples."""

    BATCH = 4096  # clauses scored at a time

    def __init__(self, aspects: dict[str, list[str]], predictor, examples: int, csv_path: Path):
        import csv

        self.aspects, self.predictor, self.examples = aspects, predictor, examples
        self.counts, self.best, self.mentions = _Counts(), {}, 0
        self._file = open(csv_path, "w", encoding="utf-8-sig", newline="")  # BOM: Excel shows Hangul
        self._csv = csv.writer(self._file, lineterminator="\n")  # as pandas writes the other tables
        self._csv.writerow(["aspect", "row", "text", "label", "confidence"])
        self._pending: list[tuple] = []

    def add(self, row: int, label: str, confidence, sentences: list[str]) -> None:
        for mention in aspect_mentions([sentences], self.aspects):
            self._pending.append((row, mention.text, mention.aspect, label, confidence))
        if len(self._pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        import pandas as pd

        if not self._pending:
            return
        rows, texts, aspects, labels, confidences = (list(column) for column in zip(*self._pending, strict=True))
        self._pending = []
        if self.predictor is not None:
            from review_sentiment.scoring import labels_from_probabilities, shown_confidence

            probabilities = self.predictor.probabilities(texts)
            labels = labels_from_probabilities(probabilities, self.predictor.labels)
            # as rs predict writes it (none for an unscored clause)
            confidences = [None if value != value else float(value) for value in shown_confidence(probabilities)]
        self.counts.add(aspects, labels)
        self.mentions += len(texts)
        for values in zip(aspects, rows, texts, labels, confidences, strict=True):
            self._csv.writerow(["" if value is None else value for value in values])
        frame = pd.DataFrame(
            {
                "aspect": aspects,
                "label": labels,
                "row": rows,
                "confidence": [math.nan if c is None else c for c in confidences],
                "item": list(zip(texts, confidences, strict=True)),
            }
        )
        _add_most_confident(self.best, frame[frame["label"] != ""], ["aspect", "label"], self.examples)

    def close(self) -> None:
        self._file.close()


def _find_aspects(spool: _Spool, aspects, predictor, examples: int, csv_path: Path, reporter: Reporter) -> _Aspects:
    found = _Aspects(aspects, predictor, examples, csv_path)
    what = "Scoring aspect clauses" if predictor is not None else "Finding aspects"
    try:
        with reporter.progress(what, spool.reviews) as task:
            done = 0
            for row, label, confidence, sentences in spool:
                found.add(row, label, confidence, sentences)
                done += 1
                if done % 1000 == 0:
                    task.advance(1000)
            found.flush()
            task.advance(done % 1000)
    finally:
        found.close()
    return found


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
    """What the sections of one report share: the tallies, the labels, where files go, and what is collected."""

    tallies: _Tallies
    labels: list[str]
    options: ReportOptions
    files_dir: Path
    plt: object
    results: dict = field(default_factory=dict)  # report.json
    warnings: list[str] = field(default_factory=list)

    def csv(self, frame, name: str) -> None:
        frame.to_csv(self.files_dir / name, index=False, encoding="utf-8-sig")  # BOM: Excel shows Hangul

    def share_columns(self) -> list[tuple[str, str, str]]:
        return [(f"share_{label}", LABEL_NAMES_KO.get(label, label), "share") for label in self.labels]


def report_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    model_dir: str | Path | None = None,
    options: ReportOptions = ReportOptions(),
    reading: ReadOptions = ReadOptions(),
    labels: LabelOptions = LabelOptions(),
    scoring: ScoringOptions = ScoringOptions(),
    chunk_rows: int = REPORT_CHUNK_ROWS,
    reporter: Reporter = SILENT,
) -> ReportSummary:
    """Write the report of a labeled review file (or label it first with `model_dir`): OUTPUT.html and, beside it,
    OUTPUT_files/ with report.json, a CSV per table and the charts as PNG.

    The file is read `chunk_rows` rows at a time and each section counts what it needs, so memory grows with
    the vocabulary and the number of groups, not with the rows; the sentences wait in a temporary file in
    OUTPUT_files/ for the aspects, which are chosen from the whole file's nouns."""
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

    reviews = _Input(input_path, model_dir, options, reading, labels, scoring, chunk_rows)
    files_dir = output_path.with_name(output_path.stem + "_files")
    files_dir.mkdir(parents=True, exist_ok=True)
    stages = ["Reading the reviews (kiwipiepy)"]
    if reviews.labeler is not None:
        reporter.message(f"Labeling {reviews.source.rows:,} rows with {model_dir} (as rs predict does)")
        stages.insert(0, "Labeling")
    spool = _Spool(files_dir)
    try:
        tallies = _Tallies(reviews, options, spool)
        with reporter.stages(stages, reviews.source.rows) as counters:
            for chunk in reviews.chunks(on_labeled=counters[0]):
                tallies.add(chunk, on_read=counters[-1])
        label_names = reviews.label_names(set(tallies.overview.counts))
        if aspect_words is None:
            aspect_words = {
                noun: list(dict.fromkeys([noun, *ASPECT_SYNONYMS.get(noun, [])]))
                for noun, _ in tallies.terms.frequent_nouns(top=options.max_aspects)
            }
        predictor = None
        if model_dir is not None:
            from review_sentiment.scoring import Predictor

            predictor = reviews.labeler.predictor if reviews.labeler else Predictor.from_options(model_dir, scoring)
        mentions_csv = files_dir / "aspect_mentions.csv"
        aspects = _find_aspects(spool, aspect_words, predictor, options.examples, mentions_csv, reporter)
    finally:
        spool.close()
    if not aspects.mentions:
        mentions_csv.unlink()

    build = _Build(tallies, label_names, options, files_dir, korean_pyplot())
    build.results.update({"input": str(input_path), "labels": label_names, "text_column": reviews.text_column})
    sections = [_overview_section(build), _time_section(build)]
    if options.by:
        sections.append(_group_section(build))
    sections.append(_words_section(build))
    sections.append(_aspects_section(build, aspects, model_dir is not None))
    sections.append(_examples_section(build, labels, input_path.name))

    build.results["warnings"] = build.warnings
    report_json = json.dumps(build.results, ensure_ascii=False, indent=2, default=str)
    (files_dir / "report.json").write_text(report_json, encoding="utf-8")
    summary = build.results["overview"]
    title = f"리뷰 감성 리포트 · {input_path.name}"
    meta = (
        f"{summary['rows']:,} rows · text column {reviews.text_column} · {time.strftime('%Y-%m-%d %H:%M')} · rs report"
    )
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

    labels = build.labels
    summary = build.results["overview"] = build.tallies.overview.result(labels)
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
    heading, tally = "Over time · 기간별", build.tallies.over_time
    if tally is None:
        return "time", heading, "<p class=note>No date column found (name one with --date-col).</p>"
    column = tally.column
    if not tally.parsed:
        return "time", heading, f"<p class=note>No date in column {_e(column)} could be read.</p>"
    period, table = tally.table(build.labels)
    build.csv(table, "over_time.csv")
    _time_chart(build.plt, table, build.labels, build.files_dir / "over_time.png")
    unit = {"D": "day", "W": "week", "M": "month"}[period]
    build.results["over_time"] = {
        "column": column,
        "period": unit,
        "parsed": tally.parsed,
        "unparsed": tally.unparsed,
        "empty": tally.empty,
        "table": json.loads(table.drop(columns=["start"]).to_json(orient="records", force_ascii=False)),
    }
    unread = ""
    if tally.unparsed:
        unread = f" {tally.unparsed:,} could not be read (e.g. {', '.join(map(repr, tally.examples_unparsed))})."
    note = (
        f"<p class=note>Column {_e(column)}, per {unit}: {tally.parsed:,} dates read.{_e(unread)} Shares of periods "
        "with few reviews move a lot: read them with the counts.</p>"
    )
    columns = [("period", unit, "text"), ("reviews", "reviews", "int"), *build.share_columns()]
    return (
        "time",
        heading,
        note + _image(build.files_dir / "over_time.png", "sentiment over time") + _table(table, columns),
    )


def _group_section(build: _Build) -> Section:
    column, minimum, labels = build.options.by, build.options.min_group_rows, build.labels
    counts = build.tallies.groups.table(labels, "reviews")
    small = int((counts["reviews"] < minimum).sum())
    counts = counts[counts["reviews"] >= minimum]
    order = "share_negative" if "negative" in labels else f"share_{labels[0]}"
    groups = counts.sort_values([order, "reviews"], ascending=[False, False], kind="stable")
    groups = groups.rename_axis(column).reset_index()
    build.csv(groups, "by_group.csv")
    build.results["by_group"] = {
        "column": column,
        "left_out_small_groups": small,
        "table": json.loads(groups.to_json(orient="records", force_ascii=False)),
    }
    shown, image = groups.head(20), ""
    if len(shown):
        shares = {label: shown[f"share_{label}"].tolist() for label in labels}
        path = build.files_dir / "by_group.png"
        _share_bars(build.plt, shown[column].tolist(), shares, shown["reviews"].tolist(), f"{column}별 감성", path)
        image = _image(path, "sentiment by group")
    left_out = f"; {small:,} smaller groups left out" if small else ""
    note = f"<p class=note>Groups with at least {minimum} labeled reviews, most negative first{left_out}.</p>"
    columns = [(column, column, "text"), ("reviews", "reviews", "int"), *build.share_columns()]
    return "groups", f"By {column} · 그룹별", note + image + _table(groups, columns)


def _words_section(build: _Build) -> Section:
    import pandas as pd

    labels = build.labels
    distinctive = build.tallies.terms.distinctive(top=build.options.top_terms)
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


def _aspects_section(build: _Build, found: _Aspects, scored_by_model: bool) -> Section:
    labels, heading = build.labels, "Aspects · 속성별 감성"
    if not found.mentions:
        return "aspects", heading, "<p class=note>No review mentions an aspect (name them with --aspects).</p>"
    if scored_by_model:
        how = "each clause scored by the model"
    else:
        how = "the label of the whole review (pass --model to score each clause on its own)"
        build.warnings.append("Aspects took each review's label: pass --model to score the clauses that mention them.")
    aspects = found.counts.table(labels, "mentions")
    aspects = aspects.sort_values("mentions", ascending=False, kind="stable").rename_axis("aspect").reset_index()
    build.csv(aspects, "aspects.csv")
    build.results["aspects"] = {
        "words": found.aspects,
        "scored": how,
        "table": json.loads(aspects.to_json(orient="records", force_ascii=False)),
    }
    shares = {label: aspects[f"share_{label}"].tolist() for label in labels}
    path = build.files_dir / "aspects.png"
    _share_bars(build.plt, aspects["aspect"].tolist(), shares, aspects["mentions"].tolist(), "속성별 감성", path)
    anchors, quotes = {}, []
    for index, aspect in enumerate(aspects["aspect"].tolist()):
        for label in labels:
            chosen = found.best[(aspect, label)].best() if (aspect, label) in found.best else []
            if chosen:
                anchor = anchors[(index, label)] = f"aspect-{index}-{labels.index(label)}"
                items = "".join(_quote(text, label, confidence) for text, confidence in chosen)
                quotes.append(f'<div id="{anchor}"><h3>{_e(aspect)} · {_label_span(label)}</h3>{items}</div>')
    words = "; ".join(f"{aspect}: {'/'.join(words)}" for aspect, words in found.aspects.items())
    note = (
        f"<p class=note>Sentiment of the clauses that mention an aspect ({_e(how)}); a review can mention several, "
        f"each with its own sentiment. Words per aspect — {_e(words)}. Click a share for example clauses.</p>"
    )
    columns = [("aspect", "aspect", "text"), ("mentions", "mentions", "int"), *build.share_columns()]
    table = _table(aspects, columns, lambda index, key: anchors.get((index, key.removeprefix("share_"))))
    return "aspects", heading, note + _image(path, "sentiment by aspect") + table + "".join(quotes)


def _examples_section(build: _Build, labels: LabelOptions, name: str) -> Section:
    blocks = []
    for label in build.labels:
        items = "".join(_quote(text, label, confidence) for text, confidence in build.tallies.examples.of(label))
        blocks.append(f"<div><h3>{_label_span(label)}</h3>{items or '<p>–</p>'}</div>")
    body = (
        f'<p class=note>The most confident reviews of each sentiment.</p><div class="columns">{"".join(blocks)}</div>'
    )
    gold = build.tallies.gold.result(labels) if build.tallies.gold else None
    if gold is not None:
        body += _accuracy(build, *gold, name)
    return "examples", "Examples · 예시", body


def _accuracy(build: _Build, pairs: list[tuple[str, str, int]], source: str, mistakes: list, name: str) -> str:
    """Accuracy, macro-F1 and the confusion matrix as rs evaluate computes them, and the most confident mistakes."""
    from review_sentiment.metrics import classification_scores, plot_confusion_matrices

    gold, predicted, counts = ([pair[i] for pair in pairs] for i in range(3))
    rows = sum(counts)
    scores = classification_scores(gold, predicted, build.labels, counts)
    build.results["accuracy"] = {"gold": source, "rows": rows, **scores}
    path = build.files_dir / "confusion_matrix.png"
    plot_confusion_matrices([(scores, source)], path, name)
    quotes = "".join(
        _quote(text, label, confidence, f" · gold: {gold_label}") for text, label, confidence, gold_label in mistakes
    )
    return (
        f"<h3>Against the gold labels ({_e(source)}, {rows:,} rows)</h3>"
        f"<p>accuracy <b>{scores['accuracy']:.3f}</b> · macro-F1 <b>{scores['macro_f1']:.3f}</b> (as rs evaluate "
        f"computes them)</p>{_image(path, 'confusion matrix')}"
        f"<h3>The most confident mistakes</h3>{quotes or '<p>none</p>'}"
    )
