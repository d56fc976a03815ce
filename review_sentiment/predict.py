"""rs predict: label a review file with a model folder, using the model's own normalization."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from review_sentiment.batch import UNCERTAIN, BatchLabeler
from review_sentiment.errors import Interrupted, RsError
from review_sentiment.interrupts import stopping_once
from review_sentiment.io import (
    DEFAULT_CHUNK_ROWS,
    WRITE_SUFFIXES,
    TableWriter,
    TextColumnChoice,
    check_output_path,
    file_digest,
    open_reviews,
    output_changes,
    prefetched,
    same_file,
    table_stem,
    write_bytes_atomically,
)
from review_sentiment.modelstore import describe_checkpoint, model_type_of, newest_model_dir
from review_sentiment.options import ReadOptions, ScoringOptions, WriteOptions
from review_sentiment.reporting import SILENT, Reporter, per_second
from review_sentiment.scoring import Predictor, split_rows


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
    normalization: str = ""  # which normalization the texts get (modelstore.describe_normalization)
    checkpoint: str = ""  # for a checkpoint rs did not train, how its classes are named; "" for an rs model
    calibration: str = ""  # whether the confidences are calibrated, and with which temperature


def default_output_path(input_path: Path) -> Path:
    """INPUT.labeled in the input's format (a workbook in, a workbook out), .csv for .txt; never compressed."""
    suffix = Path(input_path.name.lower().removesuffix(".gz")).suffix
    suffix = suffix if suffix in WRITE_SUFFIXES else ".csv"
    return input_path.with_name(f"{table_stem(input_path)}.labeled{suffix}")


def predict_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    model_dir: str | Path | None = None,
    models_dir: str | Path = "models",
    reading: ReadOptions = ReadOptions(),
    scoring: ScoringOptions = ScoringOptions(),
    writing: WriteOptions = WriteOptions(),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    resume: bool = False,
    on_chunk_done: Callable[[int], None] | None = None,
    on_start: Callable[[PredictPlan], None] | None = None,
    reporter: Reporter = SILENT,
) -> PredictSummary:
    """Label every row of a review file; the output keeps all input columns and rows in order.

    The file is read, labeled and written `chunk_rows` rows at a time, so memory does not grow with its size;
    the output is written to a temporary file renamed into place at the end. Each finished chunk's results
    are also kept in a folder beside the output until the output is complete: after Ctrl-C or a kill,
    `resume=True` takes the finished chunks from there and scores only the rest, and the output is the same
    as an uninterrupted run's. `on_chunk_done(chunks)` is called after each chunk is kept; `on_start(plan)`
    once the model is loaded and the text column chosen, before any row is labeled; `reporter` gets the progress
    and messages.
    """
    started = time.perf_counter()
    input_path = Path(input_path)
    output_path = Path(output_path) if output_path else default_output_path(input_path)
    if same_file(input_path, output_path):
        raise RsError(f"The output {output_path} is the input file; rs never overwrites its input. Pass another -o.")
    check_output_path(output_path)
    model_is_default = model_dir is None
    model_dir = model_dir or newest_model_dir(models_dir)  # a str may be a hub id (Path() would drop a leading ./)
    source = open_reviews(input_path, reading.encoding, reading.sheet)
    check_output_path(output_path, rows=source.rows)
    predictor = Predictor.from_options(model_dir, scoring)
    # The first chunk is read once: its top rows show what each column holds, then it is labeled first.
    file_chunks = source.chunks(chunk_rows)
    first = next(file_chunks)
    labeler = BatchLabeler(
        model_dir,
        source.columns,
        text_col=reading.text_col,
        sample=first,
        hint=source.other_sheets_hint,
        scoring=scoring,
        predictor=predictor,
    )
    choice, text_column = labeler.text_choice, labeler.text_column
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
                normalization=predictor.normalization,
                checkpoint=describe_checkpoint(predictor.meta),
                calibration=predictor.calibration_note,
            )
        )
    predictor.normalizer.load()

    store = ResumeStore(output_path)
    settings = _run_settings(source, predictor, text_column, chunk_rows, scoring.batch_tokens, scoring.batch_size)
    labeling = _Labeling(labeler, store, store.open(settings, resume, reporter))
    startup_seconds = time.perf_counter() - started
    with stopping_once():
        try:
            writer = TableWriter(output_path, escape_formulas=writing.escape_formulas, temporary_dir=store.folder)
            # Normalizing (kiwipiepy) runs a chunk ahead of scoring, in a thread: one count for each.
            stages = reporter.stages(["Normalizing", "Scoring"], source.rows)
            with writer, stages as (normalized, scored):
                labeling.label(chain([first], file_chunks), writer, normalized, scored, on_chunk_done)
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
        scored=sum(labeling.counts.values()),
        unscored=labeling.unscored,
        label_counts={
            label: labeling.counts.get(label, 0)
            for label in [*predictor.labels, *([UNCERTAIN] if scoring.min_confidence is not None else [])]
        },
        split=labeling.split,
        renamed_columns={wanted: name for wanted, name in labeler.names.items() if wanted != name},
        seconds=round(time.perf_counter() - started, 2),
        device=predictor.device,
        precision=predictor.precision,
        chunks=labeling.chunks,
        resumed_chunks=labeling.finished,
        scored_now=labeling.scored_now,
        output_changes=output_changes(source, writer),
        startup_seconds=round(startup_seconds, 2),
        replaced_output=output_exists,
    )


@dataclass
class _Labeling:
    """One pass over a file's chunks: each labeled (or, up to `finished`, taken from the resume store), kept in the
    store, written and counted."""

    labeler: BatchLabeler
    store: ResumeStore
    finished: int  # chunks the store holds from an interrupted run
    counts: Counter = field(default_factory=Counter)  # rows by label
    unscored: int = 0
    split: int = 0
    chunks: int = 0
    scored_now: int = 0

    def label(
        self,
        chunks: Iterator[pd.DataFrame],
        writer: TableWriter,
        normalized: Callable[[int], None],
        scored: Callable[[float], None],
        on_chunk_done: Callable[[int], None] | None,
    ) -> None:
        """Label and write every chunk; `normalized(n)` and `scored(n)` count rows done by each stage."""
        labeler, store = self.labeler, self.store

        def results_of(numbered_chunk):
            number, chunk = numbered_chunk
            if number < self.finished:
                normalized(len(chunk))
                return store.load(number)
            return labeler.prepare(chunk, on_progress=normalized)

        for (number, chunk), results in prefetched(enumerate(chunks), results_of):
            if number < self.finished:
                probabilities, notes = results
                scored(len(chunk))
            else:
                probabilities, notes = labeler.score(chunk, results, on_batch=scored)
                scored(results.rows - len(results.scored))
                store.save(number, probabilities, notes)
                if on_chunk_done:
                    on_chunk_done(number + 1)
            predicted = labeler.add_columns(chunk, probabilities, notes)
            writer.write(chunk)
            self.counts.update(label for label in predicted if label)
            if number >= self.finished:
                self.scored_now += sum(1 for label in predicted if label)
            self.unscored += sum(1 for label in predicted if not label)
            self.split += split_rows(notes)
            self.chunks += 1


def _run_settings(source, predictor, text_column, chunk_rows, batch_tokens, batch_size) -> dict:
    """What decides a run's numbers: a resumed run must match the interrupted one in all of it."""
    import torch

    checkpoint = predictor.meta.get("source") or {}
    return {
        "input": {"path": str(source.path.resolve()), "sha256": file_digest(source.path)},
        "model": {"path": str(predictor.model_dir.resolve()), "files": folder_digest(predictor.model_dir)},
        "text_column": text_column,
        "chunk_size": chunk_rows,
        "device": predictor.device,
        "precision": predictor.precision,
        "calibration": None if predictor.temperature is None else predictor.temperature.value,
        "batch_tokens": batch_tokens,
        "batch_size": batch_size,
        "threads": torch.get_num_threads() if predictor.device == "cpu" else None,
        # a checkpoint rs did not train: how its classes were named and its texts normalized (None for rs models)
        "labels": checkpoint.get("classes"),
        "normalization": checkpoint.get("normalization"),
    }


SETTING_NAMES = {
    "input": "the input file (changed or another file)",
    "model": "the model (--model, or its files changed)",
    "text_column": "the text column (--text-col)",
    "chunk_size": "--chunk-size",
    "device": "--device",
    "precision": "--precision / --quantize",
    "calibration": "--no-calibration (the temperature applied)",
    "batch_tokens": "--batch-tokens",
    "batch_size": "--batch-size",
    "threads": "--threads",
    "labels": "--labels",
    "normalization": "--normalization",
}


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

    def open(self, settings: dict, resume: bool, reporter: Reporter = SILENT) -> int:
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
            reporter.message("Nothing to resume for this output: starting from the beginning.")
        self.folder.mkdir(parents=True)
        write_bytes_atomically(state_path, json.dumps({"format": RESUME_FORMAT, **settings}, indent=2).encode())
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
        write_bytes_atomically(self._chunk_path(number), buffer.getvalue())

    def load(self, number: int) -> tuple[np.ndarray, list[str]]:
        with np.load(self._chunk_path(number), allow_pickle=False) as stored:
            return stored["probabilities"], stored["notes"].tolist()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


RESUME_FORMAT = 1


def _shown(setting: object) -> object:
    return "the default" if setting in (None, "") else setting
