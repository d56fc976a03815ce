"""Label pandas DataFrames in batches: the columns `rs predict` adds, from one model loaded once.

`rs predict` labels every chunk of a file with a `BatchLabeler`, and so do the Spark and Ray helpers
(`review_sentiment.spark`, `review_sentiment.ray`), one per executor or actor, so all three give the same
labels and probabilities:

    from review_sentiment.batch import BatchLabeler

    labeler = BatchLabeler("models/shop", columns=list(reviews.columns))   # text column chosen as rs predict does
    labeled = labeler.label(reviews)   # reviews + predicted_label, confidence, prob_LABEL..., note; same rows, order

A row whose text is empty (or nothing is left after normalization) keeps its place with an empty label and the
reason in `note`; so does a row that repeats the header line (exports pasted together).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from review_sentiment.errors import RsError
from review_sentiment.io import SAMPLE_ROWS, TextColumnChoice, unique_column_name
from review_sentiment.modelstore import locate_model, model_meta
from review_sentiment.options import ScoringOptions
from review_sentiment.scoring import (
    Predictor,
    PreparedTexts,
    labels_from_probabilities,
    review_column,
    shown_confidence,
)

LABEL_COLUMN = "predicted_label"
CONFIDENCE_COLUMN = "confidence"
NOTE_COLUMN = "note"  # why a row has no label, or that a long text was scored in parts
REPEATED_HEADER = "repeats the header row (several exports pasted together?): not a review"
UNCERTAIN = "uncertain"  # the label of a row below --min-confidence: for a person to read


def added_column_names(columns: Sequence[str], labels: Sequence[str]) -> dict[str, str]:
    """The names of the columns rs adds (predicted_label, confidence, prob_LABEL..., note), by the names wanted;
    one that an input column already has gets an _rs suffix, so no input column is overwritten."""
    names: dict[str, str] = {}
    for wanted in [LABEL_COLUMN, CONFIDENCE_COLUMN, *(f"prob_{label}" for label in labels), NOTE_COLUMN]:
        names[wanted] = unique_column_name([*columns, *names.values()], wanted)
    return names


class BatchLabeler:
    """A model folder loaded once, and the columns of the frames it will label (the text column chosen by name
    and content as `rs predict` chooses it, the added columns named so that no input column is overwritten).

    `sample` (the first rows) lets the content decide the text column; `text_col` names it outright."""

    def __init__(
        self,
        model_dir: str | Path,
        columns: Sequence[str],
        *,
        text_col: str | None = None,
        sample: pd.DataFrame | None = None,
        scoring: ScoringOptions = ScoringOptions(),
        hint: str = "",
        predictor: Predictor | None = None,
    ):
        self.predictor = predictor or Predictor.from_options(model_dir, scoring)
        self.columns = list(columns)
        self.text_choice: TextColumnChoice = self.predictor.text_column(
            self.columns, None if sample is None else sample.head(SAMPLE_ROWS), text_col, hint
        )
        self.text_column = self.text_choice.name
        self.labels = self.predictor.labels
        self.names = added_column_names(self.columns, self.labels)
        self.min_confidence = scoring.min_confidence
        if self.min_confidence is not None and not 0 < self.min_confidence <= 1:
            raise RsError(f"--min-confidence is a probability above 0 and at most 1, not {self.min_confidence:g}.")

    @property
    def added_columns(self) -> list[str]:
        """The names of the columns `label` adds, in order."""
        return list(self.names.values())

    def prepare(self, frame: pd.DataFrame, on_progress: Callable[[int], None] | None = None) -> PreparedTexts:
        """Normalize and encode the frame's texts (the CPU half, which a file prepares a chunk ahead)."""
        return self.predictor.prepare(frame[self.text_column], on_progress=on_progress)

    def score(
        self, frame: pd.DataFrame, prepared: PreparedTexts, on_batch: Callable[[float], None] | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """The probabilities (NaN rows for rows without a label) and notes of a prepared frame."""
        probabilities = self.predictor.score(prepared, on_batch=on_batch)
        notes = list(prepared.notes)
        self._unscore_repeated_headers(frame, probabilities, notes)
        return probabilities, notes

    def add_columns(self, frame: pd.DataFrame, probabilities: np.ndarray, notes: list[str]) -> list[str]:
        """Add the label, confidence, probability and note columns to `frame` in place; returns the labels
        (`uncertain` below the minimum confidence, with the reason and the label it would have had in note)."""
        predicted = labels_from_probabilities(probabilities, self.labels)
        if self.min_confidence is not None:
            predicted, notes = set_aside_uncertain(predicted, probabilities, notes, self.min_confidence)
        # float64 before rounding, so JSON output shows 0.4928 rather than float32's 0.4927999973
        probabilities = probabilities.astype(np.float64)
        frame[self.names[LABEL_COLUMN]] = predicted
        frame[self.names[CONFIDENCE_COLUMN]] = shown_confidence(probabilities)
        for index, label in enumerate(self.labels):
            frame[self.names[f"prob_{label}"]] = np.round(probabilities[:, index], 4)
        frame[self.names[NOTE_COLUMN]] = notes
        return predicted

    def label(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of `frame` with the added columns; every row kept, in order."""
        missing = [column for column in self.columns if column not in frame.columns]
        if missing:
            raise RsError(f"The batch lacks the columns {missing} that the labeler was set up with.")
        labeled = frame.copy()
        probabilities, notes = self.score(labeled, self.prepare(labeled))
        self.add_columns(labeled, probabilities, notes)
        return labeled

    def _unscore_repeated_headers(self, frame: pd.DataFrame, probabilities: np.ndarray, notes: list[str]) -> None:
        """A row that repeats the header line gets no label: it is not a review, and rows are never dropped."""
        if len(self.columns) < 2:
            return  # one column: a review could be the column's name
        repeated = frame[self.columns].eq(pd.Series(self.columns, index=self.columns)).all(axis=1).to_numpy()
        for row in np.flatnonzero(repeated):
            probabilities[row] = np.nan
            notes[row] = REPEATED_HEADER


def set_aside_uncertain(
    predicted: list[str], probabilities: np.ndarray, notes: list[str], min_confidence: float
) -> tuple[list[str], list[str]]:
    """The labels with those below `min_confidence` replaced by `uncertain`, and the notes saying why."""
    predicted, notes = list(predicted), list(notes)
    confidence = np.nan_to_num(shown_confidence(probabilities), nan=1.0)  # unscored rows keep their ""
    for row in np.flatnonzero(confidence < min_confidence):
        reason = (
            f"uncertain: confidence {confidence[row]:.4f} is below --min-confidence {min_confidence:g} "
            f"(the model leans {predicted[row]})"
        )
        notes[row] = f"{notes[row]}; {reason}" if notes[row] else reason
        predicted[row] = UNCERTAIN
    return predicted, notes


class LabelingPlan:
    """What a cluster job needs before any task is scheduled, checked on the driver with the model's metadata
    only (no model load): the model folder, its labels, the text column and the added columns' names.

    A checkpoint rs did not train is checked with `scoring`'s labels and normalization; a hub id stays a hub id
    in `model_dir`, for each worker to take from its own Hugging Face cache (or the hub)."""

    def __init__(
        self,
        model_dir: str | Path,
        columns: Sequence[str],
        sample: pd.DataFrame,
        text_col: str | None = None,
        scoring: ScoringOptions = ScoringOptions(),
    ):
        location = locate_model(model_dir)
        self.model_dir = location.hub_id or str(location.folder.resolve())
        # a folder that is neither an rs model nor a checkpoint fails here, with read_meta's message
        meta = model_meta(location, labels=scoring.labels, normalization=scoring.normalization)
        if sample.empty:
            raise RsError("The DataFrame has no rows: there is nothing to label.")
        self.columns = list(columns)
        self.labels: list[str] = list(meta["labels"])
        self.text_choice = review_column(meta, self.columns, sample.head(SAMPLE_ROWS), text_col)
        self.text_column = self.text_choice.name
        self.names = added_column_names(self.columns, self.labels)


_LABELERS: dict[tuple, BatchLabeler] = {}


def cached_labeler(model_dir: str, columns: Sequence[str], text_column: str, scoring: ScoringOptions) -> BatchLabeler:
    """One `BatchLabeler` per process for these settings: a Spark executor's Python worker is reused across tasks,
    so the model and kiwipiepy load once per worker, not once per partition."""
    key = (model_dir, tuple(columns), text_column, scoring)
    if key not in _LABELERS:
        _LABELERS[key] = BatchLabeler(model_dir, columns, text_col=text_column, scoring=scoring)
    return _LABELERS[key]
