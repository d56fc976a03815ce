"""Seconds and peak memory of `rs report` on ROWS labeled reviews of the shared corpus (issue 16).

    python bench/report_speed.py --rows 100000 [--rows 1000000]

The first ROWS reviews are labeled once by `rs predict` with a TF-IDF model fit on the corpus' last 20,000
(the labeling is not timed; past the other 622,178 reviews they start again from the first, so 1,000,000
rows hold each review once or twice); then `rs report` runs in a child process on the labeled file, grouped by
movie, without and with `--model` (with it, every clause that mentions an aspect is scored by the model too). The CPU's
instruction set and its fp32 matmul peak are measured in the same run (the report's work is kiwipiepy, not
matmuls, but the peak says how fast this machine is).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"
sys.path.insert(0, str(REPO / "bench"))


def child(labeled: str, output: str, model: str | None) -> dict:
    from predict_speed import peak_rss_mb

    from review_sentiment.report import ReportOptions, report_file

    started = time.perf_counter()
    summary = report_file(labeled, output, model_dir=model, options=ReportOptions(by="movie_id"))
    seconds = round(time.perf_counter() - started, 1)
    return {"seconds": seconds, "peak_rss_mb": round(peak_rss_mb()), "rows": summary.rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "results" / "report")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        labeled, output, model = options.child
        print(json.dumps(child(labeled, output, model if model != "-" else None)))
        return
    import pandas as pd
    from predict_speed import instruction_set, matmul_peak

    from review_sentiment.finetune import finetune
    from review_sentiment.predict import predict_file

    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    rows_wanted = options.rows or [100_000]
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        corpus = pd.read_csv(handle, dtype=str, keep_default_na=False)
    training = corpus.tail(20_000)
    training.to_csv(work / "train.csv", index=False)
    model = work / "tfidf"
    if not model.exists():
        finetune(work / "train.csv", "tfidf", output_dir=model, force=True)
    results = {"instruction_set": instruction_set(), "matmul_gflops": matmul_peak(), "runs": []}
    for rows in rows_wanted:
        reviews, labeled = work / f"reviews-{rows}.csv", work / f"labeled-{rows}.csv"
        reviewed = corpus.iloc[: len(corpus) - len(training)]
        repeats = -(-rows // len(reviewed))  # 1,000,000 rows: the corpus' reviews once and again
        pd.concat([reviewed] * repeats, ignore_index=True).head(rows).to_csv(reviews, index=False)
        if not labeled.exists():
            predict_file(reviews, labeled, model_dir=model)
        for with_model in (False, True):
            command = [sys.executable, __file__, "--child", str(labeled), str(work / f"report-{rows}.html")]
            command.append(str(model) if with_model else "-")
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            run = {"rows": rows, "model": with_model, **json.loads(output.strip().splitlines()[-1])}
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
