"""Do `rs preprocess`, `rs predict` and `rs evaluate` write the same files as before a change? (issue 14)

Run it once on the old code to record, once on the new code to compare:

    python bench/same_outputs.py --work /tmp/same --record      # on the old checkout: models, inputs, digests
    python bench/same_outputs.py --work /tmp/same               # on the new one: same commands, compared

The first run makes the inputs (the bundled sample and the first 20,000 reviews of the shared corpus, with a
star-rating column) and two models, which every later run reuses so only the code differs: a TF-IDF model fit on
the corpus subset and a tiny ELECTRA (`tiny_base` on the sample, fine-tuned one epoch). Every command runs as a
user would run it (`python -m review_sentiment ...`, in a fresh process) with the code of the checkout this
script lies in. Every file written is compared byte for byte, except the timing and date fields of the JSON
summaries (listed in VOLATILE_KEYS), which differ between any two runs, and .xlsx files, compared by their cells
(the zip holds file times).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"
VOLATILE_KEYS = {"seconds", "startup_seconds", "created", "rows_per_second", "reviews_per_second", "evaluated"}
VOLATILE_KEYS |= {"work_seconds", "load_seconds", "elapsed_seconds", "saved", "scoring_seconds"}


def rs(*args: str, cwd: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "review_sentiment", *args]
    finished = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({finished.returncode}):\n{finished.stderr[-3000:]}")


def make_inputs(work: Path, corpus_rows: int) -> None:
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / "sample.csv").write_bytes((REPO / "data" / "sample_reviews.csv").read_bytes())
    if not CORPUS.exists():
        raise SystemExit(f"{CORPUS} is missing: the corpus half of the check needs it")
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        reviews = pd.read_csv(handle, nrows=corpus_rows, dtype=str, keep_default_na=False)
    reviews.to_csv(inputs / "corpus.csv", index=False)


def make_models(work: Path) -> None:
    models = work / "models"
    rs("finetune", "inputs/corpus.csv", "--base", "tfidf", "--output", str(models / "tfidf"), "--force", cwd=work)
    sys.path.insert(0, str(REPO))
    from review_sentiment.tiny_base import build_tiny_electra

    reviews = pd.read_csv(work / "inputs" / "sample.csv")
    build_tiny_electra(reviews["review"].astype(str).tolist(), models / "tiny-base")
    rs(
        *("finetune", "inputs/sample.csv", "--base", str(models / "tiny-base"), "--output", str(models / "electra")),
        *("--epochs", "1", "--force"),
        cwd=work,
    )


def run_commands(work: Path, out: Path) -> None:
    """Every command whose files are compared; each writes under `out`."""
    for data in ("sample", "corpus"):
        source = f"inputs/{data}.csv"
        rs("preprocess", source, "-o", str(out / f"{data}.processed.csv"), cwd=work)
        for model in ("tfidf", "electra"):
            model_dir = str(work / "models" / model)
            rs("predict", source, "-o", str(out / f"{data}.{model}.labeled.csv"), "--model", model_dir, cwd=work)
            rs("predict", source, "-o", str(out / f"{data}.{model}.labeled.xlsx"), "--model", model_dir, cwd=work)
            rs("evaluate", source, "--model", model_dir, "-o", str(out / f"{data}.{model}.evaluation"), cwd=work)


def without_volatile(value):
    if isinstance(value, dict):
        return {key: without_volatile(item) for key, item in value.items() if key not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [without_volatile(item) for item in value]
    return value


def digests(out: Path) -> dict[str, str]:
    found = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            data = json.dumps(without_volatile(json.loads(data)), sort_keys=True).encode()
        elif path.suffix == ".xlsx":
            data = xlsx_cells(path)  # the zip holds file times; the cells are what a user sees
        found[str(path.relative_to(out))] = hashlib.sha256(data).hexdigest()
    return found


def xlsx_cells(path: Path) -> bytes:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = [[repr(cell) for cell in row] for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]
    return json.dumps(rows, ensure_ascii=False).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="inputs, models and outputs live here")
    parser.add_argument("--record", action="store_true", help="make inputs and models, record the digests")
    parser.add_argument("--corpus-rows", type=int, default=20_000)
    options = parser.parse_args()
    work = options.work.resolve()
    recorded = work / "recorded.json"
    if options.record:
        make_inputs(work, options.corpus_rows)
        make_models(work)
    # Written to one folder, then moved, so that the paths the summaries hold are the same in both runs.
    out, kept = work / "out", work / ("recorded" if options.record else "current")
    subprocess.run(["rm", "-rf", str(out), str(kept)], check=True)
    run_commands(work, out)
    out.rename(kept)
    found = digests(kept)
    if options.record:
        recorded.write_text(json.dumps(found, indent=1))
        print(f"recorded {len(found)} files in {recorded}")
        return
    expected = json.loads(recorded.read_text())
    differing = sorted(name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name))
    same = len(expected) - len([name for name in differing if name in expected])
    print(f"{same} of {len(expected)} recorded files identical")
    for name in differing:
        state = "missing now" if name not in found else "new" if name not in expected else "differs"
        print(f"  {name}: {state}")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
