"""rs preprocess: normalize a review file, flag problem rows, and leave it where finetune finds it."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from review_sentiment import __version__
from review_sentiment.errors import RsError
from review_sentiment.io import (
    DEFAULT_CHUNK_ROWS,
    FLAG_COLUMNS,
    LATEST_POINTER,
    NORMALIZED_COLUMN,
    PROCESSED_DIR,
    SAMPLE_ROWS,
    TableWriter,
    TextColumnChoice,
    check_output_path,
    choose_text_column,
    open_reviews,
    output_changes,
    prefetched,
    same_file,
    sidecar_path,
    table_stem,
    unique_column_name,
)
from review_sentiment.normalize import NormalizationRecipe, ReviewNormalizer, has_hangul
from review_sentiment.options import ReadOptions, WriteOptions
from review_sentiment.reporting import SILENT, Reporter, per_second


@dataclass
class PreprocessSummary:
    input_path: str
    output_path: str
    text_column: str
    normalized_column: str
    recipe: dict
    rows_in: int
    rows_out: int
    flagged: dict[str, int]
    dropped: dict[str, int]
    changed_rows: int
    mean_length: float
    seconds: float
    # CSV/TSV/XLSX text that a spreadsheet would run as a formula was written with a leading "'"; rs commands
    # reading this file remove it again (`written_escaped`).
    formulas_escaped: bool = False
    output_changes: dict[str, int] = field(default_factory=dict)  # cells the output format could not hold as is
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    rs_version: str = __version__
    text_column_reason: str = ""  # why this column was taken (its name, its Korean text, --text-col)
    replaced_output: bool = False  # the output file existed and was replaced
    startup_seconds: float = 0.0  # before the first row: reading the file's layout, loading kiwipiepy

    @property
    def rows_per_second(self) -> float | None:
        """Rows normalized per second of work (start-up excluded); None when the work took too little time to tell."""
        return per_second(self.rows_in, self.seconds - self.startup_seconds)


@dataclass
class PreprocessPlan:
    """What a preprocess run will do, known before the first row is normalized (for the command to print)."""

    input_path: str
    text_column: TextColumnChoice
    rows: int
    output_path: str
    output_exists: bool  # it will be replaced once the run is complete
    sheet: str | None


def default_output_path(input_path: Path, processed_dir: Path = PROCESSED_DIR) -> Path:
    return processed_dir / f"{table_stem(input_path)}.csv"


def preprocess_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    recipe: NormalizationRecipe | None = None,
    reading: ReadOptions = ReadOptions(),
    writing: WriteOptions = WriteOptions(),
    drop_empty: bool = False,
    drop_duplicates: bool = False,
    processed_dir: str | Path = PROCESSED_DIR,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_start: Callable[[PreprocessPlan], None] | None = None,
    reporter: Reporter = SILENT,
) -> PreprocessSummary:
    """Normalize the text column of a review file; keep every column and row unless asked to drop.

    The file is streamed `chunk_rows` rows at a time (the next chunk is normalized while the last is written),
    so memory stays flat; duplicates are found through an 8-byte hash per distinct text. `on_start(plan)` is
    called once the text column is chosen, before any row is normalized; `reporter` gets the progress.
    """
    started = time.perf_counter()
    input_path, processed_dir = Path(input_path), Path(processed_dir)
    output_path = Path(output_path) if output_path else default_output_path(input_path, processed_dir)
    if same_file(input_path, output_path):
        raise RsError(f"The output {output_path} is the input file; rs never overwrites its input. Pass another -o.")
    check_output_path(output_path)
    recipe = recipe or NormalizationRecipe()
    normalizer = ReviewNormalizer(recipe)
    source = open_reviews(input_path, reading.encoding, reading.sheet)
    check_output_path(output_path, rows=source.rows)
    # The first chunk is read once: its top rows show what each column holds, then it is normalized first.
    chunks = source.chunks(chunk_rows)
    first = next(chunks)
    choice = choose_text_column(
        source.columns, first.head(SAMPLE_ROWS), reading.text_col, hint=source.other_sheets_hint
    )
    text_column = choice.name
    output_exists = output_path.exists()
    if on_start:
        on_start(
            PreprocessPlan(
                input_path=str(input_path),
                text_column=choice,
                rows=source.rows,
                output_path=str(output_path),
                output_exists=output_exists,
                sheet=source.sheet,
            )
        )
    normalizer.load()
    startup_seconds = time.perf_counter() - started
    names = list(source.columns)
    for wanted in (NORMALIZED_COLUMN, *FLAG_COLUMNS):
        names.append(unique_column_name(names, wanted))
    normalized_column, *flag_columns = names[len(source.columns) :]

    tally = _Tally(
        flagged=dict.fromkeys(FLAG_COLUMNS, 0),
        dropped=dict.fromkeys(["empty"] * drop_empty + ["duplicate"] * drop_duplicates, 0),
    )
    chunks = chain([first], chunks)
    writer = TableWriter(output_path, escape_formulas=writing.escape_formulas)
    with writer, reporter.stages(["Normalizing"], source.rows) as (advance,):
        for chunk, normalized in prefetched(chunks, lambda c: normalizer.normalize(c[text_column])):
            added = dict(zip((NORMALIZED_COLUMN, *FLAG_COLUMNS), (normalized_column, *flag_columns), strict=True))
            writer.write(tally.flag(chunk, text_column, normalized, added))
            advance(len(chunk))

    summary = PreprocessSummary(
        input_path=str(input_path),
        output_path=str(output_path),
        text_column=text_column,
        normalized_column=normalized_column,
        recipe=recipe.to_dict(),
        rows_in=source.rows,
        rows_out=tally.rows_out,
        flagged={name.removeprefix("flag_"): count for name, count in tally.flagged.items()},
        dropped=tally.dropped,
        changed_rows=tally.changed_rows,
        mean_length=round(tally.total_length / tally.nonempty, 1) if tally.nonempty else 0.0,
        seconds=round(time.perf_counter() - started, 2),
        formulas_escaped=writer.escaped_cells > 0,
        output_changes=output_changes(source, writer),
        text_column_reason=choice.reason,
        replaced_output=output_exists,
        startup_seconds=round(startup_seconds, 2),
    )
    sidecar_path(output_path).write_text(json.dumps(asdict(summary), ensure_ascii=False, indent=2), encoding="utf-8")
    processed_dir.mkdir(parents=True, exist_ok=True)
    pointer = {"path": str(output_path.resolve()), "created": summary.created}
    (processed_dir / LATEST_POINTER).write_text(json.dumps(pointer, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


@dataclass
class _Tally:
    """What preprocess counts as it streams, and the texts seen so far (as 8-byte hashes) for duplicates."""

    flagged: dict[str, int]  # by flag column (FLAG_COLUMNS)
    dropped: dict[str, int]  # by reason, for the drops asked for ("empty", "duplicate")
    seen: set[int] = field(default_factory=set)
    rows_out: int = 0
    changed_rows: int = 0
    total_length: int = 0
    nonempty: int = 0

    def flag(self, chunk: pd.DataFrame, text_column: str, normalized: list[str], added: dict[str, str]) -> pd.DataFrame:
        """`chunk` with the normalized text and the flags in the columns `added` names (by NORMALIZED_COLUMN and
        FLAG_COLUMNS), less the rows to drop; everything counted."""
        empty = np.array([not text for text in normalized], dtype=bool)
        no_hangul = np.array([bool(text) and not has_hangul(text) for text in normalized], dtype=bool)
        duplicate = np.zeros(len(normalized), dtype=bool)
        for row, text in enumerate(normalized):
            if text:
                key = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")
                duplicate[row] = key in self.seen
                self.seen.add(key)
        original = chunk[text_column].tolist()
        self.changed_rows += sum(a != b for a, b in zip(original, normalized, strict=True))
        self.total_length += sum(len(text) for text in normalized)
        self.nonempty += int((~empty).sum())
        chunk[added[NORMALIZED_COLUMN]] = normalized
        for name, values in zip(FLAG_COLUMNS, (empty, no_hangul, duplicate), strict=True):
            chunk[added[name]] = values
            self.flagged[name] += int(values.sum())
        keep = np.ones(len(chunk), dtype=bool)
        if "empty" in self.dropped:
            self.dropped["empty"] += int(empty.sum())
            keep &= ~empty
        if "duplicate" in self.dropped:
            self.dropped["duplicate"] += int((duplicate & keep).sum())
            keep &= ~duplicate
        self.rows_out += int(keep.sum())
        return chunk[keep]
