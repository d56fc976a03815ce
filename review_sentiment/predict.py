"""rs predict: label a review file with a model folder, using the model's own normalization."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from review_sentiment.console import row_progress, silence_library_logs
from review_sentiment.errors import RsError
from review_sentiment.inference import (
    MAX_BATCH_ROWS,
    batched_probabilities,
    pick_device,
    prepare_for_inference,
    set_cpu_threads,
)
from review_sentiment.modelstore import (
    TFIDF,
    load_transformer_folder,
    model_type_of,
    newest_model_dir,
    read_meta,
    recipe_of,
)
from review_sentiment.normalize import ReviewNormalizer
from review_sentiment.tables import (
    DEFAULT_CHUNK_ROWS,
    TableSource,
    TableWriter,
    check_output_path,
    find_text_column,
    prefetched,
    same_file,
    table_stem,
    unique_column_name,
)

LABEL_COLUMN = "predicted_label"
CONFIDENCE_COLUMN = "confidence"


@dataclass
class PredictSummary:
    input_path: str
    output_path: str
    model_dir: str
    text_column: str
    rows: int
    scored: int
    unscored_empty: int
    label_counts: dict[str, int]
    truncated: int
    renamed_columns: dict[str, str]
    seconds: float
    device: str
    precision: str
    chunks: int

    @property
    def reviews_per_second(self) -> float:
        return self.scored / self.seconds if self.seconds else 0.0


def default_output_path(input_path: Path) -> Path:
    return input_path.with_name(f"{table_stem(input_path)}.labeled.csv")


class TransformerClassifier:
    """A fine-tuned transformer: tokenizes normalized texts and returns class probabilities."""

    def __init__(
        self,
        model_dir: Path,
        device: str | None,
        batch_size: int = MAX_BATCH_ROWS,
        batch_tokens: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
    ):
        model, self.tokenizer, meta = load_transformer_folder(model_dir)
        self.max_length = int(meta.get("max_length", 128))
        self.device = pick_device(device)
        if self.device == "cpu":
            set_cpu_threads(threads)
        self.model, self.precision = prepare_for_inference(model, self.device, precision)
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"] if texts else []

    def truncated(self, encoded: list[list[int]]) -> int:
        return sum(len(ids) >= self.max_length for ids in encoded)

    def predict_proba(self, encoded: list[list[int]], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        return batched_probabilities(
            self.model,
            encoded,
            self.tokenizer.pad_token_id,
            device=self.device,
            batch_tokens=self.batch_tokens,
            batch_size=self.batch_size,
            on_batch=on_batch,
        )


@dataclass
class PreparedTexts:
    """Raw texts normalized and encoded for the classifier; `scored` are the positions with text left."""

    rows: int
    scored: list[int]
    encoded: object
    truncated: int


class Predictor:
    """A loaded model folder (transformer or TF-IDF baseline) that labels lists of raw review texts.

    `prepare` (normalization and tokenization, CPU) and `score` (the model) are separate so that a file can be
    prepared one chunk ahead in a thread while the model scores the current one.
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        batch_size: int = MAX_BATCH_ROWS,
        *,
        batch_tokens: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
    ):
        silence_library_logs()
        self.model_dir = Path(model_dir)
        self.meta = read_meta(self.model_dir)
        if model_type_of(self.meta) == TFIDF:
            from review_sentiment.baseline import TfidfClassifier

            if precision not in (None, "fp32"):
                raise RsError(
                    f"{self.model_dir} is a TF-IDF model: --quantize and --precision apply to transformer models only."
                )
            if device and device != "cpu":
                raise RsError(f"{self.model_dir} is a TF-IDF model, which runs on the CPU: drop --device {device}.")
            self.classifier = TfidfClassifier.load(self.model_dir, self.meta["labels"], self.meta.get("weights_sha256"))
            self.device, self.precision = "cpu", ""  # no number format to choose
        else:
            self.classifier = TransformerClassifier(
                self.model_dir, device, batch_size, batch_tokens, precision, threads
            )
            self.device, self.precision = self.classifier.device, self.classifier.precision
        self.labels: list[str] = list(self.meta["labels"])
        self.normalizer = ReviewNormalizer(recipe_of(self.meta))

    def prepare(self, texts: list[object]) -> PreparedTexts:
        """Normalize raw texts with the model's recipe and encode the non-empty ones for the classifier."""
        normalized = self.normalizer.normalize(texts)
        scored = [i for i, text in enumerate(normalized) if text]
        encoded = self.classifier.encode([normalized[i] for i in scored])
        return PreparedTexts(len(normalized), scored, encoded, self.classifier.truncated(encoded))

    def score(self, prepared: PreparedTexts, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Class probabilities, one row per prepared text (NaN rows for texts that were empty)."""
        result = np.full((prepared.rows, len(self.labels)), np.nan, dtype=np.float32)
        if prepared.scored:
            result[prepared.scored] = self.classifier.predict_proba(prepared.encoded, on_batch)
        return result

    def probabilities(self, texts: list[object], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Normalize raw texts with the model's recipe and return class probabilities (NaN for empty texts)."""
        return self.score(self.prepare(texts), on_batch)

    def text_column(self, columns: list[str], text_col: str | None = None) -> str:
        """`text_col`, else the column the model was trained on when the file has it, else a known name."""
        trained_on = self.meta.get("data", {}).get("text_column")
        if text_col is None and trained_on in columns:
            text_col = trained_on
        return find_text_column(columns, text_col)

    def predict(self, texts: list[object]) -> list[str]:
        """Predicted label per text ("" for texts that are empty after normalization)."""
        return labels_from_probabilities(self.probabilities(texts), self.labels)


def labels_from_probabilities(probabilities: np.ndarray, labels: list[str]) -> list[str]:
    scored = ~np.isnan(probabilities).any(axis=1)
    best = np.where(scored, np.nan_to_num(probabilities, nan=-1.0).argmax(axis=1), -1)
    return [labels[i] if i >= 0 else "" for i in best]


def predict_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    model_dir: str | Path | None = None,
    models_dir: str | Path = "models",
    text_col: str | None = None,
    batch_size: int = MAX_BATCH_ROWS,
    batch_tokens: int | None = None,
    precision: str | None = None,
    threads: int | None = None,
    device: str | None = None,
    encoding: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> PredictSummary:
    """Label every row of a review file; the output keeps all input columns and rows in order.

    The file is read, labeled and written `chunk_rows` rows at a time, so memory does not grow with its size;
    the output is written to a temporary file renamed into place at the end.
    """
    started = time.perf_counter()
    input_path = Path(input_path)
    output_path = Path(output_path) if output_path else default_output_path(input_path)
    if same_file(input_path, output_path):
        raise RsError(f"The output {output_path} is the input file; rs never overwrites its input. Pass another -o.")
    check_output_path(output_path)
    model_dir = Path(model_dir) if model_dir else newest_model_dir(models_dir)
    source = TableSource(input_path, encoding)
    predictor = Predictor(
        model_dir, device, batch_size, batch_tokens=batch_tokens, precision=precision, threads=threads
    )
    text_column = predictor.text_column(source.columns, text_col)
    added = [LABEL_COLUMN, CONFIDENCE_COLUMN, *(f"prob_{label}" for label in predictor.labels)]
    names: dict[str, str] = {}
    for wanted in added:
        names[wanted] = unique_column_name([*source.columns, *names.values()], wanted)

    counts: Counter = Counter()
    unscored = truncated = chunks = 0
    with TableWriter(output_path) as writer, row_progress("Predicting", source.rows) as advance:
        for chunk, prepared in prefetched(source.chunks(chunk_rows), lambda c: predictor.prepare(c[text_column])):
            probabilities = predictor.score(prepared, on_batch=advance)
            advance(prepared.rows - len(prepared.scored))
            predicted = labels_from_probabilities(probabilities, predictor.labels)
            # float64 before rounding, so JSON output shows 0.4928 rather than float32's 0.4927999973
            probabilities = probabilities.astype(np.float64)
            chunk[names[LABEL_COLUMN]] = predicted
            chunk[names[CONFIDENCE_COLUMN]] = np.round(probabilities.max(axis=1), 4)
            for index, label in enumerate(predictor.labels):
                chunk[names[f"prob_{label}"]] = np.round(probabilities[:, index], 4)
            writer.write(chunk)
            counts.update(label for label in predicted if label)
            unscored += prepared.rows - len(prepared.scored)
            truncated += prepared.truncated
            chunks += 1

    return PredictSummary(
        input_path=str(input_path),
        output_path=str(output_path),
        model_dir=str(model_dir),
        text_column=text_column,
        rows=source.rows,
        scored=sum(counts.values()),
        unscored_empty=unscored,
        label_counts={label: counts.get(label, 0) for label in predictor.labels},
        truncated=truncated,
        renamed_columns={wanted: name for wanted, name in names.items() if wanted != name},
        seconds=round(time.perf_counter() - started, 2),
        device=predictor.device,
        precision=predictor.precision,
        chunks=chunks,
    )
