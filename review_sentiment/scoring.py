"""Scoring review texts with a model folder: the model's normalization, long texts cut into parts that fit, and
class probabilities. `rs predict` labels files with it, `rs evaluate` measures it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from review_sentiment.calibration import Temperature
from review_sentiment.errors import RsError
from review_sentiment.inference import (
    MAX_BATCH_ROWS,
    batched_probabilities,
    pick_device,
    prepare_for_inference,
    set_cpu_threads,
)
from review_sentiment.io import TextColumnChoice, choose_text_column
from review_sentiment.modelstore import (
    TFIDF,
    describe_normalization,
    load_transformer_folder,
    locate_model,
    model_meta,
    model_type_of,
    recipe_of,
)
from review_sentiment.normalize import coerce_text, normalizer_for
from review_sentiment.options import ScoringOptions
from review_sentiment.reporting import silence_library_logs

SPLIT_NOTE_START = "long text: scored in"


@runtime_checkable
class Classifier(Protocol):
    """What `Predictor` needs of a model (`TransformerClassifier`, `baseline.TfidfClassifier`): its labels, and
    normalized texts encoded, counted in parts (one unless a text is too long to read at once) and scored."""

    labels: list[str]

    def encode(self, texts: list[str]) -> Any: ...

    def parts(self, encoded: Any) -> list[int]: ...

    def predict_proba(self, encoded: Any, on_batch: Callable[[float], None] | None = None) -> np.ndarray: ...


class TransformerClassifier:
    """A fine-tuned transformer: tokenizes normalized texts and returns class probabilities.

    A text longer than the model reads at once is cut into sentences with kiwipiepy, the sentences are packed
    into pieces that fit, each piece is scored, and the text's probabilities are the pieces' average weighted
    by their number of tokens. A sentence longer than a piece on its own is cut between tokens.

    `meta`: the folder's metadata when already read (for a checkpoint rs did not train, the one made from its
    config); its classes may come in another order than rs's, so the probabilities' columns follow `labels`.
    """

    def __init__(
        self,
        model_dir: Path,
        device: str | None,
        batch_size: int = MAX_BATCH_ROWS,
        batch_tokens: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
        meta: dict | None = None,
    ):
        model, self.tokenizer, meta = load_transformer_folder(model_dir, meta)
        self.labels: list[str] = list(meta["labels"])
        classes = (meta.get("source") or {}).get("classes", self.labels)  # the label of each output, in order
        self._columns = None if classes == self.labels else [classes.index(label) for label in self.labels]
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
        combined = combine_pieces(probabilities, encoded)
        return combined if self._columns is None else combined[:, self._columns]


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
    """A loaded model folder (transformer or TF-IDF baseline) that labels lists of raw review texts; or a Hugging
    Face checkpoint rs did not train (a folder without rs_meta.json, or a hub id as a str), with `labels` naming
    its classes where its id2label does not and `normalization` "rs" (default) or "none" (`modelstore.model_meta`).

    `prepare` (normalization and tokenization, CPU) and `score` (the model) are separate so that a file can be
    prepared one chunk ahead in a thread while the model scores the current one.
    """

    @classmethod
    def from_options(cls, model_dir: str | Path, scoring: ScoringOptions) -> Predictor:
        """A predictor that scores as `scoring` says (device, precision, batch sizes, threads; for a checkpoint rs
        did not train its labels and normalization)."""
        return cls(
            model_dir,
            scoring.device,
            scoring.batch_size,
            batch_tokens=scoring.batch_tokens,
            precision=scoring.precision,
            threads=scoring.threads,
            labels=scoring.labels,
            normalization=scoring.normalization,
            calibration=scoring.calibration,
        )

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        batch_size: int = MAX_BATCH_ROWS,
        *,
        batch_tokens: int | None = None,
        precision: str | None = None,
        threads: int | None = None,
        labels: Sequence[str] | None = None,
        normalization: str | None = None,
        calibration: bool = True,
    ):
        silence_library_logs()
        location = locate_model(model_dir)
        self.model_dir = location.folder  # for a hub id, its snapshot in the Hugging Face cache
        self.meta = model_meta(location, labels=labels, normalization=normalization)
        if model_type_of(self.meta) == TFIDF:
            from review_sentiment.baseline import TfidfClassifier

            if precision not in (None, "fp32"):
                raise RsError(
                    f"{self.model_dir} is a TF-IDF model: --quantize and --precision apply to transformer models only."
                )
            if device and device != "cpu":
                raise RsError(f"{self.model_dir} is a TF-IDF model, which runs on the CPU: drop --device {device}.")
            self.classifier: Classifier = TfidfClassifier.load(
                self.model_dir, self.meta["labels"], self.meta.get("weights_sha256")
            )
            self.device, self.precision = "cpu", ""  # no number format to choose
        else:
            self.classifier = TransformerClassifier(
                self.model_dir, device, batch_size, batch_tokens, precision, threads, meta=self.meta
            )
            self.device, self.precision = self.classifier.device, self.classifier.precision
        self.labels: list[str] = list(self.meta["labels"])
        self.normalizer = normalizer_for(recipe_of(self.meta))
        self.normalization = describe_normalization(self.meta)  # for the user: which normalization applies
        stored = Temperature.of_model(self.meta)
        # None: the raw probabilities (a model trained before rs calibrated, or calibration turned off)
        self.temperature = stored if calibration else None
        if not calibration:
            self.calibration_note = "raw scores (--no-calibration)"
        elif stored is None and "source" in self.meta:
            self.calibration_note = "raw scores: a checkpoint rs did not train has no temperature"
        elif stored is None:
            self.calibration_note = "raw scores: the model has no temperature (trained before rs calibrated)"
        else:
            self.calibration_note = f"calibrated confidence (temperature {stored.value:g})"

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

    def score(
        self, prepared: PreparedTexts, on_batch: Callable[[float], None] | None = None, *, calibrated: bool = True
    ) -> np.ndarray:
        """Class probabilities, one row per prepared text (NaN rows for texts that were empty); calibrated with
        the model's temperature unless `calibrated` is False or the predictor was made with calibration off."""
        result = np.full((prepared.rows, len(self.labels)), np.nan, dtype=np.float32)
        if prepared.scored:
            result[prepared.scored] = self.classifier.predict_proba(prepared.encoded, on_batch)
        return self.calibrate(result) if calibrated else result

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Raw probabilities with the model's temperature applied (unchanged without one)."""
        return probabilities if self.temperature is None else self.temperature.apply(probabilities)

    def probabilities(self, texts: Iterable[object], on_batch: Callable[[float], None] | None = None) -> np.ndarray:
        """Normalize raw texts with the model's recipe and return class probabilities (NaN for empty texts)."""
        return self.score(self.prepare(texts), on_batch)

    def text_column(
        self, columns: list[str], sample: pd.DataFrame | None = None, text_col: str | None = None, hint: str = ""
    ) -> TextColumnChoice:
        """`text_col`, else the column the model was trained on when the file has it, else by name and content
        (`sample`: the file's first rows)."""
        return review_column(self.meta, columns, sample, text_col, hint)

    def predict(self, texts: Iterable[object]) -> list[str]:
        """Predicted label per text ("" for texts that are empty after normalization)."""
        return labels_from_probabilities(self.probabilities(texts), self.labels)


def review_column(
    meta: dict, columns: list[str], sample: pd.DataFrame | None = None, text_col: str | None = None, hint: str = ""
) -> TextColumnChoice:
    """The column a model (its rs_meta.json, `meta`) labels: `text_col`, else the column it was trained on when
    the file has it, else by name and content (`sample`: the file's first rows). Needs no loaded model."""
    trained_on = meta.get("data", {}).get("text_column")
    if text_col is None and trained_on in columns:
        # a repeated header (review, review.1) leaves two candidates: ask rather than guess
        repeated = [c for c in columns if re.fullmatch(re.escape(str(trained_on)) + r"\.\d+", str(c))]
        if repeated:
            raise RsError(
                f"The file has several {trained_on!r} columns ({[trained_on, *repeated]}), the column the model "
                "was trained on. Pass --text-col with the one to use."
            )
    return choose_text_column(columns, sample, text_col, trained_on, hint)


def shown_confidence(probabilities: np.ndarray) -> np.ndarray:
    """The confidence as rs predict writes it: the top probability, in float64 (JSON shows 0.4928 rather than
    float32's 0.4927999973), to 4 places; NaN for a row without a label. Thresholds compare this number, so a row
    shown as 0.7000 is not below 0.7."""
    return np.round(probabilities.astype(np.float64).max(axis=1), 4)


def labels_from_probabilities(probabilities: np.ndarray, labels: list[str]) -> list[str]:
    scored = ~np.isnan(probabilities).any(axis=1)
    best = np.where(scored, np.nan_to_num(probabilities, nan=-1.0).argmax(axis=1), -1)
    return [labels[i] if i >= 0 else "" for i in best]
