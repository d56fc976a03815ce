"""rs preprocess: normalize a review file, flag problem rows, and leave it where finetune finds it."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from review_sentiment import __version__
from review_sentiment.errors import RsError
from review_sentiment.normalize import NormalizationRecipe, ReviewNormalizer, has_hangul
from review_sentiment.tables import (
    check_output_path,
    find_text_column,
    read_table,
    same_file,
    table_stem,
    unique_column_name,
    write_table,
)

PROCESSED_DIR = Path("data/processed")
LATEST_POINTER = "latest.json"
SIDECAR_SUFFIX = ".rs.json"
NORMALIZED_COLUMN = "text_normalized"
FLAG_COLUMNS = ("flag_empty", "flag_no_hangul", "flag_duplicate")


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
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    rs_version: str = __version__


def sidecar_path(output_path: Path) -> Path:
    return output_path.with_name(output_path.name + SIDECAR_SUFFIX)


def default_output_path(input_path: Path, processed_dir: Path = PROCESSED_DIR) -> Path:
    return processed_dir / f"{table_stem(input_path)}.csv"


def preprocess_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    text_col: str | None = None,
    recipe: NormalizationRecipe | None = None,
    drop_empty: bool = False,
    drop_duplicates: bool = False,
    processed_dir: str | Path = PROCESSED_DIR,
    encoding: str | None = None,
) -> PreprocessSummary:
    """Normalize the text column of a review file; keep every column and row unless asked to drop."""
    started = time.perf_counter()
    input_path, processed_dir = Path(input_path), Path(processed_dir)
    output_path = Path(output_path) if output_path else default_output_path(input_path, processed_dir)
    if same_file(input_path, output_path):
        raise RsError(f"The output {output_path} is the input file; rs never overwrites its input. Pass another -o.")
    check_output_path(output_path)
    recipe = recipe or NormalizationRecipe()
    table = read_table(input_path, encoding)
    text_column = find_text_column(table, text_col)
    normalized = ReviewNormalizer(recipe).normalize(table[text_column].tolist(), "Normalizing")

    out = table.copy()
    normalized_column = unique_column_name(out, NORMALIZED_COLUMN)
    out[normalized_column] = normalized
    series = pd.Series(normalized, index=out.index)
    flags = {
        "flag_empty": series.eq(""),
        "flag_no_hangul": series.ne("") & ~series.map(has_hangul),
        "flag_duplicate": series.ne("") & series.duplicated(keep="first"),
    }
    flag_names = {}
    for name, values in flags.items():
        flag_names[name] = unique_column_name(out, name)
        out[flag_names[name]] = values.to_numpy()

    dropped = {}
    if drop_empty:
        dropped["empty"] = int(flags["flag_empty"].sum())
        out = out[~flags["flag_empty"].to_numpy()]
    if drop_duplicates:
        keep = ~out[flag_names["flag_duplicate"]].to_numpy(dtype=bool)
        dropped["duplicate"] = int((~keep).sum())
        out = out[keep]

    write_table(out, output_path)
    original = table[text_column].astype(str).tolist()
    lengths = [len(t) for t in normalized if t]
    summary = PreprocessSummary(
        input_path=str(input_path),
        output_path=str(output_path),
        text_column=text_column,
        normalized_column=normalized_column,
        recipe=recipe.to_dict(),
        rows_in=len(table),
        rows_out=len(out),
        flagged={name.removeprefix("flag_"): int(values.sum()) for name, values in flags.items()},
        dropped=dropped,
        changed_rows=sum(a != b for a, b in zip(original, normalized, strict=True)),
        mean_length=round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
        seconds=round(time.perf_counter() - started, 2),
    )
    sidecar_path(output_path).write_text(json.dumps(asdict(summary), ensure_ascii=False, indent=2), encoding="utf-8")
    processed_dir.mkdir(parents=True, exist_ok=True)
    pointer = {"path": str(output_path.resolve()), "created": summary.created}
    (processed_dir / LATEST_POINTER).write_text(json.dumps(pointer, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def read_sidecar(path: Path) -> dict | None:
    """The preprocess summary written beside a processed file, or None for a file rs did not process."""
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return None
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def latest_processed_file(processed_dir: str | Path = PROCESSED_DIR) -> Path:
    """The file `rs preprocess` wrote last (recorded in data/processed/latest.json)."""
    pointer = Path(processed_dir) / LATEST_POINTER
    hint = "Run `rs preprocess reviews.csv` first, or pass the training file: `rs finetune reviews.csv`."
    if not pointer.exists():
        raise RsError(f"No DATA given and no file from `rs preprocess` found ({pointer}). {hint}")
    try:
        path = Path(json.loads(pointer.read_text(encoding="utf-8"))["path"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RsError(f"{pointer} is damaged. {hint}") from None
    if not path.exists():
        raise RsError(f"The last preprocessed file {path} no longer exists. {hint}")
    return path
