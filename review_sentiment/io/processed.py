"""The files `rs preprocess` writes, as every later stage reads them: the processed table, the summary beside it
(`*.rs.json`), and the pointer to the newest one (data/processed/latest.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from review_sentiment.errors import RsError
from review_sentiment.io.reading import TableSource, read_table

PROCESSED_DIR = Path("data/processed")
LATEST_POINTER = "latest.json"
SIDECAR_SUFFIX = ".rs.json"
NORMALIZED_COLUMN = "text_normalized"
FLAG_COLUMNS = ("flag_empty", "flag_no_hangul", "flag_duplicate")


def sidecar_path(output_path: Path) -> Path:
    """Where the summary of a processed file lies: beside it, named FILE.rs.json."""
    return output_path.with_name(output_path.name + SIDECAR_SUFFIX)


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


def written_escaped(path: str | Path) -> bool:
    """Whether `path` is an `rs preprocess` output whose formula-like text cells got a leading "'"."""
    sidecar = read_sidecar(Path(path))
    return bool(sidecar and sidecar.get("formulas_escaped"))


def open_reviews(path: str | Path, encoding: str | None = None, sheet: str | None = None) -> TableSource:
    """A review file opened for reading; the spreadsheet escaping of an `rs preprocess` output is undone."""
    return TableSource(path, encoding, sheet=sheet, unescape_formulas=written_escaped(path))


def read_reviews(path: str | Path, encoding: str | None = None, sheet: str | None = None) -> pd.DataFrame:
    """A whole review file as `read_table` gives it, with an `rs preprocess` output's escaping undone."""
    return read_table(path, encoding, sheet=sheet, unescape_formulas=written_escaped(path))
