"""rs predict: label a review file with a model folder, using the model's own normalization."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from review_sentiment.columns import SAMPLE_ROWS, TextColumnChoice, choose_text_column
from review_sentiment.console import console, per_second, row_progress_stages, silence_library_logs
from review_sentiment.errors import Interrupted, RsError
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
from review_sentiment.normalize import ReviewNormalizer, coerce_text
from review_sentiment.preprocess import open_reviews
from review_sentiment.tables import (
    DEFAULT_CHUNK_ROWS,
    WRITE_SUFFIXES,
    TableWriter,
    check_output_path,
    output_changes,
    prefetched,
    same_file,
    table_stem,
    unique_column_name,
)

LABEL_COLUMN = "predicted_label"
CONFIDENCE_COLUMN = "confidence"
NOTE_COLUMN = "note"  # why a row has no label, or that a long text was scored in parts
SPLIT_NOTE_START = "long text: scored in"


@dataclass
class PredictSummary:
    input_path: str
    output_path: str
    model_dir: str
    text_column: str
    rows: int
    scored: int
    unscored: int  # rows without a label: empty text, or none left after normalization
    label_counts: dict[str, int]
    split: int  # long texts scored in several parts
    renamed_columns: dict[str, str]
    seconds: float
    device: str
    precision: str
    chunks: int
    resumed_chunks: int = 0  # chunks taken from an interrupted run
    scored_now: int = 0  # rows this run labeled itself (not taken from an interrupted run)
    output_changes: dict[str, int] = field(default_factory=dict)  # cells the output format could not hold as is
    startup_seconds: float = 0.0  # before the first row: reading the file's layout, loading model and kiwipiepy
    replaced_output: bool = False  # the output file existed and was replaced

    @property
    def work_seconds(self) -> float:
        """Seconds spent labeling rows (normalizing, scoring, writing), start-up excluded."""
        return max(self.seconds - self.startup_seconds, 0.0)

    @property
    def reviews_per_second(self) -> float | None:
        """Rows this run labeled per second of labeling (start-up excluded: it does not grow with the file); None
        when the labeling took too little time to tell."""
        return per_second(self.scored_now, self.work_seconds)


@dataclass
class PredictPlan:
    """What a prediction run will do, known before the first row is labeled (for the command to print)."""

    model_dir: str
    model_is_default: bool  # the newest model under models/, not --model
    model_type: str
    labels: list[str]
    device: str
    precision: str
    text_column: TextColumnChoice
    rows: int
    output_path: str
    output_exists: bool  # it will be replaced once the run is complete
    sheet: str | None


def default_output_path(input_path: Path) -> Path:
    """INPUT.labeled in the input's format (a workbook in, a workbook out), .csv for .txt; never compressed."""
    suffix = Path(input_path.name.lower().removesuffix(".gz")).suffix
    suffix = suffix if suffix in WRITE_SUFFIXES else ".csv"
    return input_path.with_name(f"{table_stem(input_path)}.labeled{suffix}")


class TransformerClassifier:
    """A fine-tuned transformer: tokenizes normalized texts and returns class probabilities.

    A text longer than the model reads at once is cut into sentences with kiwipiepy, the sentences are packed
    into pieces that fit, each piece is scored, and the text's probabilities are the pieces' average weighted
    by their number of tokens. A sentence longer than a piece on its own is cut between tokens.
    """

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
        self._prefix, self._suffix = special_tokens_around(self.tokenizer)
        self.piece_tokens = self.max_length - len(self._prefix) - len(self._suffix)
        self.device = pick_device(device)
        if self.device == "cpu":
            set_cpu_threads(threads)
        self.model, self.precision = prepare_for_inference(model, self.device, precision)
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens

    def encode(self, texts: list[str]) -> EncodedTexts:
        token_ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        long = [i for i, ids in enumerate(token_ids) if len(ids) > self.piece_tokens]
        pieces_of = dict(zip(long, self._pieces([texts[i] for i in long]), strict=True))
        encoded = EncodedTexts()
        for owner, ids in enumerate(token_ids):
            pieces = pieces_of.get(owner, [ids])
            for piece in pieces:
                encoded.ids.append(self._prefix + piece + self._suffix)
                encoded.owners.append(owner)
                encoded.weights.append(max(len(piece), 1))
            encoded.parts.append(len(pieces))
        return encoded

    def _pieces(self, texts: list[str]) -> list[list[list[int]]]:
        """Token ids of long texts, each cut into sentences and packed into pieces of `piece_tokens`."""
        from review_sentiment.normalize import split_sentences

        out = []
        for sentences in split_sentences(texts):
            sentence_ids = self.tokenizer(sentences, add_special_tokens=False)["input_ids"] if sentences else []
            out.append(pack_pieces(sentence_ids, self.piece_tokens))
        return out

    @staticmethod
    def parts(encoded: EncodedTexts) -> list[int]:
        return encoded.parts

    def predict_proba(self, encoded: EncodedTexts, on_batch: Callable[[float], None] | None = None) -> np.ndarray:
        texts_per_piece = len(encoded.parts) / max(len(encoded.ids), 1)  # progress counts texts, not pieces
        probabilities = batched_probabilities(
            self.model,
            encoded.ids,
            self.tokenizer.pad_token_id,
            device=self.device,
            batch_tokens=self.batch_tokens,
            batch_size=self.batch_size,
            on_batch=(lambda pieces: on_batch(pieces * texts_per_piece)) if on_batch else None,
        )
        return combine_pieces(probabilities, encoded)


@dataclass
class EncodedTexts:
    """Model inputs for a list of texts: one piece per text, several for a text too long for the model."""

    ids: list[list[int]] = field(default_factory=list)  # the pieces, special tokens included
    owners: list[int] = field(default_factory=list)  # the text each piece belongs to
    weights: list[int] = field(default_factory=list)  # tokens of text in each piece
    parts: list[int] = field(default_factory=list)  # pieces per text


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one text ([CLS] and [SEP] for ELECTRA)."""
    probe = "가"
    inner = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(inner) + 1):
        if full[start : start + len(inner)] == inner:
            return full[:start], full[start + len(inner) :]
    raise RsError("The model's tokenizer adds special tokens in a way rs does not know; it cannot split long texts.")


def pack_pieces(sentence_ids: list[list[int]], limit: int) -> list[list[int]]:
    """Consecutive sentences packed greedily into pieces of at most `limit` tokens; a sentence longer than
    `limit` is cut into pieces of its own. Every token lands in exactly one piece, in order."""
    pieces: list[list[int]] = []
    current: list[int] = []
    for ids in sentence_ids:
        if current and len(current) + len(ids) > limit:
            pieces.append(current)
            current = []
        while len(ids) > limit:
            if current:
                pieces.append(current)
                current = []
            pieces.append(ids[:limit])
            ids = ids[limit:]
        current.extend(ids)
    if current or not pieces:
        pieces.append(current)
    return pieces


def combine_pieces(probabilities: np.ndarray, encoded: EncodedTexts) -> np.ndarray:
    """One probability row per text: its piece's, or for a split text the token-weighted mean of its pieces."""
    if len(encoded.ids) == len(encoded.parts):
        return probabilities  # nothing was split: one piece per text, in order
    owners = np.asarray(encoded.owners)
    weights = np.asarray(encoded.weights, dtype=np.float64)[:, None]
    sums = np.zeros((len(encoded.parts), probabilities.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, probabilities * weights)
    totals = np.bincount(owners, weights[:, 0], minlength=len(encoded.parts))[:, None]
    combined = (sums / totals).astype(np.float32)
    single = np.asarray(encoded.parts) == 1
    first_piece = np.searchsorted(owners, np.arange(len(encoded.parts)))
    combined[single] = probabilities[first_piece[single]]  # exactly the piece's numbers, no round trip
    return combined


EMPTY_TEXT = "empty text"
NOTHING_LEFT = "no text left after removing URLs, control and invisible characters"


@dataclass
class PreparedTexts:
    """Raw texts normalized and encoded for the classifier; `scored` are the positions with text left."""

    rows: int
    scored: list[int]
    encoded: object
    notes: list[str]  # per row: why it has no label, or into how many parts it was split; "" otherwise

    @property
    def split(self) -> int:
        """Rows scored in several parts."""
        return split_rows(self.notes)


def split_rows(notes: list[str]) -> int:
    return sum(1 for note in notes if note.startswith(SPLIT_NOTE_START))


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

    def prepare(self, texts: Iterable[object], on_progress: Callable[[int], None] | None = None) -> PreparedTexts:
        """Normalize raw texts with the model's recipe and encode the non-empty ones for the classifier;
        `on_progress(n)` is called as batches of n texts are normalized."""
        texts = list(texts)
        normalized = self.normalizer.normalize(texts, on_progress=on_progress)
        scored = [i for i, text in enumerate(normalized) if text]
        encoded = self.classifier.encode([normalized[i] for i in scored])
        notes = [
            "" if text else EMPTY_TEXT if not coerce_text(raw).strip() else NOTHING_LEFT
            for raw, text in zip(texts, normalized, strict=True)
        ]
        for row, parts in zip(scored, self.classifier.parts(encoded), strict=True):
            if parts > 1:
                notes[row] = f"{SPLIT_NOTE_START} {parts} parts"
        return PreparedTexts(len(normalized), scored, encoded, notes)

    def score(self, prepared: PreparedTexts, on_batch: Callable[[float], None] | None = None) -> np.ndarray:
        """Class probabilities, one row per prepared text (NaN rows for texts that were empty)."""
        result = np.full((prepared.rows, len(self.labels)), np.nan, dtype=np.float32)
        if prepared.scored:
            result[prepared.scored] = self.classifier.predict_proba(prepared.encoded, on_batch)
        return result

    def probabilities(self, texts: Iterable[object], on_batch: Callable[[float], None] | None = None) -> np.ndarray:
        """Normalize raw texts with the model's recipe and return class probabilities (NaN for empty texts)."""
        return self.score(self.prepare(texts), on_batch)

    def text_column(
        self, columns: list[str], sample: pd.DataFrame | None = None, text_col: str | None = None, hint: str = ""
    ) -> TextColumnChoice:
        """`text_col`, else the column the model was trained on when the file has it, else by name and content
        (`sample`: the file's first rows)."""
        trained_on = self.meta.get("data", {}).get("text_column")
        if text_col is None and trained_on in columns:
            # a repeated header (review, review.1) leaves two candidates: ask rather than guess
            repeated = [c for c in columns if re.fullmatch(re.escape(str(trained_on)) + r"\.\d+", str(c))]
            if repeated:
                raise RsError(
                    f"The file has several {trained_on!r} columns ({[trained_on, *repeated]}), the column the model "
                    "was trained on. Pass --text-col with the one to use."
                )
        return choose_text_column(columns, sample, text_col, trained_on, hint)

    def predict(self, texts: Iterable[object]) -> list[str]:
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
    sheet: str | None = None,
    escape_formulas: bool = True,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    resume: bool = False,
    on_chunk_done: Callable[[int], None] | None = None,
    on_start: Callable[[PredictPlan], None] | None = None,
) -> PredictSummary:
    """Label every row of a review file; the output keeps all input columns and rows in order.

    The file is read, labeled and written `chunk_rows` rows at a time, so memory does not grow with its size;
    the output is written to a temporary file renamed into place at the end. Each finished chunk's results
    are also kept in a folder beside the output until the output is complete: after Ctrl-C or a kill,
    `resume=True` takes the finished chunks from there and scores only the rest, and the output is the same
    as an uninterrupted run's. `on_chunk_done(chunks)` is called after each chunk is kept; `on_start(plan)`
    once the model is loaded and the text column chosen, before any row is labeled.
    """
    started = time.perf_counter()
    input_path = Path(input_path)
    output_path = Path(output_path) if output_path else default_output_path(input_path)
    if same_file(input_path, output_path):
        raise RsError(f"The output {output_path} is the input file; rs never overwrites its input. Pass another -o.")
    check_output_path(output_path)
    model_is_default = model_dir is None
    model_dir = Path(model_dir) if model_dir else newest_model_dir(models_dir)
    source = open_reviews(input_path, encoding, sheet)
    check_output_path(output_path, rows=source.rows)
    predictor = Predictor(
        model_dir, device, batch_size, batch_tokens=batch_tokens, precision=precision, threads=threads
    )
    # The first chunk is read once: its top rows show what each column holds, then it is labeled first.
    file_chunks = source.chunks(chunk_rows)
    first = next(file_chunks)
    choice = predictor.text_column(source.columns, first.head(SAMPLE_ROWS), text_col, source.other_sheets_hint)
    text_column = choice.name
    output_exists = output_path.exists()
    if on_start:
        on_start(
            PredictPlan(
                model_dir=str(model_dir),
                model_is_default=model_is_default,
                model_type=model_type_of(predictor.meta),
                labels=predictor.labels,
                device=predictor.device,
                precision=predictor.precision,
                text_column=choice,
                rows=source.rows,
                output_path=str(output_path),
                output_exists=output_exists,
                sheet=source.sheet,
            )
        )
    predictor.normalizer.load()
    added = [LABEL_COLUMN, CONFIDENCE_COLUMN, *(f"prob_{label}" for label in predictor.labels), NOTE_COLUMN]
    names: dict[str, str] = {}
    for wanted in added:
        names[wanted] = unique_column_name([*source.columns, *names.values()], wanted)

    store = ResumeStore(output_path)
    settings = _run_settings(source, predictor, text_column, chunk_rows, batch_tokens, batch_size)
    finished = store.open(settings, resume)

    counts: Counter = Counter()
    unscored = split = chunks = scored_now = 0
    startup_seconds = time.perf_counter() - started
    with _stopping_once():
        try:
            writer = TableWriter(output_path, escape_formulas=escape_formulas, temporary_dir=store.folder)
            # Normalizing (kiwipiepy) runs a chunk ahead of scoring, in a thread: one bar for each.
            stages = row_progress_stages(["Normalizing", "Scoring"], source.rows)
            with writer, stages as (normalized, advance):

                def results_of(numbered_chunk):
                    number, chunk = numbered_chunk
                    if number < finished:
                        normalized(len(chunk))
                        return store.load(number)
                    return predictor.prepare(chunk[text_column], on_progress=normalized)

                for (number, chunk), results in prefetched(enumerate(chain([first], file_chunks)), results_of):
                    if number < finished:
                        probabilities, notes = results
                        advance(len(chunk))
                    else:
                        probabilities = predictor.score(results, on_batch=advance)
                        advance(results.rows - len(results.scored))
                        notes = results.notes
                        _unscore_repeated_headers(chunk, source.columns, probabilities, notes)
                        store.save(number, probabilities, notes)
                        if on_chunk_done:
                            on_chunk_done(number + 1)
                    predicted = _add_predictions(chunk, probabilities, notes, predictor.labels, names)
                    writer.write(chunk)
                    counts.update(label for label in predicted if label)
                    if number >= finished:
                        scored_now += sum(1 for label in predicted if label)
                    unscored += sum(1 for label in predicted if not label)
                    split += split_rows(notes)
                    chunks += 1
        except KeyboardInterrupt:
            kept = store.finished()
            raise Interrupted(
                f"{min(kept * chunk_rows, source.rows)} of {source.rows} rows were labeled ({kept} chunk(s), kept in "
                f"{store.folder}). Rerun the same command with --resume to continue from there."
            ) from None
    store.remove()

    return PredictSummary(
        input_path=str(input_path),
        output_path=str(output_path),
        model_dir=str(model_dir),
        text_column=text_column,
        rows=source.rows,
        scored=sum(counts.values()),
        unscored=unscored,
        label_counts={label: counts.get(label, 0) for label in predictor.labels},
        split=split,
        renamed_columns={wanted: name for wanted, name in names.items() if wanted != name},
        seconds=round(time.perf_counter() - started, 2),
        device=predictor.device,
        precision=predictor.precision,
        chunks=chunks,
        resumed_chunks=finished,
        scored_now=scored_now,
        output_changes=output_changes(source, writer),
        startup_seconds=round(startup_seconds, 2),
        replaced_output=output_exists,
    )


REPEATED_HEADER = "repeats the header row (several exports pasted together?): not a review"


def _unscore_repeated_headers(chunk, columns: list[str], probabilities: np.ndarray, notes: list[str]) -> None:
    """A row that repeats the header line gets no label: it is not a review, and rows are never dropped."""
    if len(columns) < 2:
        return  # one column: a review could be the column's name
    repeated = chunk[columns].eq(pd.Series(columns, index=columns)).all(axis=1).to_numpy()
    for row in np.flatnonzero(repeated):
        probabilities[row] = np.nan
        notes[row] = REPEATED_HEADER


def _add_predictions(
    chunk, probabilities: np.ndarray, notes: list[str], labels: list[str], names: dict[str, str]
) -> list[str]:
    """Add the label, confidence, probability and note columns to `chunk`; returns the labels."""
    predicted = labels_from_probabilities(probabilities, labels)
    # float64 before rounding, so JSON output shows 0.4928 rather than float32's 0.4927999973
    probabilities = probabilities.astype(np.float64)
    chunk[names[LABEL_COLUMN]] = predicted
    chunk[names[CONFIDENCE_COLUMN]] = np.round(probabilities.max(axis=1), 4)
    for index, label in enumerate(labels):
        chunk[names[f"prob_{label}"]] = np.round(probabilities[:, index], 4)
    chunk[names[NOTE_COLUMN]] = notes
    return predicted


def _run_settings(source, predictor, text_column, chunk_rows, batch_tokens, batch_size) -> dict:
    """What decides a run's numbers: a resumed run must match the interrupted one in all of it."""
    import torch

    return {
        "input": {"path": str(source.path.resolve()), "sha256": file_digest(source.path)},
        "model": {"path": str(predictor.model_dir.resolve()), "files": folder_digest(predictor.model_dir)},
        "text_column": text_column,
        "chunk_size": chunk_rows,
        "device": predictor.device,
        "precision": predictor.precision,
        "batch_tokens": batch_tokens,
        "batch_size": batch_size,
        "threads": torch.get_num_threads() if predictor.device == "cpu" else None,
    }


SETTING_NAMES = {
    "input": "the input file (changed or another file)",
    "model": "the model (--model, or its files changed)",
    "text_column": "the text column (--text-col)",
    "chunk_size": "--chunk-size",
    "device": "--device",
    "precision": "--precision / --quantize",
    "batch_tokens": "--batch-tokens",
    "batch_size": "--batch-size",
    "threads": "--threads",
}


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (hashlib.file_digest needs Python 3.11; rs supports 3.10)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(folder: Path) -> str:
    """A digest of a model folder's metadata and of its files' names, sizes and modification times."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        status = path.stat()
        digest.update(f"{path.name}\t{status.st_size}\t{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class ResumeStore:
    """The finished chunks of one `rs predict` output, kept in a hidden folder beside it until it is complete.

    state.json records the run's settings; chunk-NNNNNN.npz holds a chunk's probabilities (float32, NaN for
    unscored rows) and notes, written atomically after the chunk is scored. Loading never unpickles.
    """

    def __init__(self, output_path: Path) -> None:
        self.folder = output_path.parent / f".{output_path.name}.rs-resume"

    def open(self, settings: dict, resume: bool) -> int:
        """Start a run: the number of chunks a resumed run takes from the folder (0 when starting afresh)."""
        state_path = self.folder / "state.json"
        if self.folder.exists() and not self.finished():
            self.remove()  # a run that stopped before its first chunk: nothing worth keeping
        if self.folder.exists():
            finished = self.finished()
            try:
                stored = json.loads(state_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                stored = None
            if not resume:
                raise RsError(
                    f"An interrupted run of this prediction kept {finished} finished chunk(s) in {self.folder}. "
                    "Rerun with --resume to continue it, or delete that folder to start over."
                )
            if not isinstance(stored, dict) or stored.get("format") != RESUME_FORMAT:
                raise RsError(
                    f"{state_path} is damaged or from another rs version; delete {self.folder} to start over."
                )
            differs = [
                SETTING_NAMES[key]
                + (
                    ""
                    if isinstance(settings[key], dict)
                    else f" ({_shown(stored.get(key))} there, {_shown(settings[key])} now)"
                )
                for key in SETTING_NAMES
                if stored.get(key) != settings[key]
            ]
            if differs:
                raise RsError(
                    f"Cannot resume: not as in the interrupted run: {'; '.join(differs)}. Pass the same file and "
                    f"options as before, or delete {self.folder} to start over."
                )
            return finished
        if resume:
            console.print("Nothing to resume for this output: starting from the beginning.")
        self.folder.mkdir(parents=True)
        _write_file_atomically(state_path, json.dumps({"format": RESUME_FORMAT, **settings}, indent=2).encode())
        return 0

    def _chunk_path(self, number: int) -> Path:
        return self.folder / f"chunk-{number:06d}.npz"

    def finished(self) -> int:
        """Chunks finished in order from the first (a gap ends the count)."""
        number = 0
        while self._chunk_path(number).exists():
            number += 1
        return number

    def save(self, number: int, probabilities: np.ndarray, notes: list[str]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, probabilities=probabilities, notes=np.array(notes, dtype=str))
        _write_file_atomically(self._chunk_path(number), buffer.getvalue())

    def load(self, number: int) -> tuple[np.ndarray, list[str]]:
        with np.load(self._chunk_path(number), allow_pickle=False) as stored:
            return stored["probabilities"], stored["notes"].tolist()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


RESUME_FORMAT = 1


def _shown(setting: object) -> object:
    return "the default" if setting in (None, "") else setting


@contextmanager
def _stopping_once() -> Iterator[None]:
    """Ctrl-C (or SIGTERM) stops the run at once; further ones are ignored while it cleans up, so a second
    Ctrl-C cannot cut the cleanup short (with the prefetch thread inside kiwipiepy, that can abort the process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def stop(number, frame):
        for other in previous:
            signal.signal(other, signal.SIG_IGN)
        raise KeyboardInterrupt

    for number in previous:
        signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _write_file_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.part")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
