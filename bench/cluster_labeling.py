"""Rows/s of `rs predict` vs Spark local[2] vs Ray Data (2 CPUs) on the same reviews (issue 15).

    python bench/cluster_labeling.py --rows 100000 [--model DIR] [--worker-threads 1]

The reviews are the first ROWS of the shared corpus. Without --model, a TF-IDF model is fit on 20,000 other
reviews of it (`rs finetune --base tfidf`). Each engine labels the same rows; the time is wall-clock from the
call to the last row in memory (Spark: `toPandas`, Ray: `to_pandas`), start-up of the session excluded and
reported apart, and the labels are checked to be identical to rs predict's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "results" / "cluster")
    parser.add_argument(
        "--worker-threads", type=int, default=1, help="torch threads per Spark worker / Ray actor (2 of them)"
    )
    options = parser.parse_args()
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        corpus = pd.read_csv(handle, nrows=options.rows + 20_000, dtype=str, keep_default_na=False)
    reviews = corpus.iloc[: options.rows].reset_index(drop=True)
    reviews_path = work / f"reviews-{options.rows}.csv"
    reviews.to_csv(reviews_path, index=False)
    model = options.model
    if model is None:
        model = work / "tfidf-20k"
        if not model.exists():
            train = work / "train-20k.csv"
            corpus.iloc[options.rows :].to_csv(train, index=False)
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
            command = [sys.executable, "-m", "review_sentiment", "finetune", str(train), "--base", "tfidf"]
            subprocess.run([*command, "--output", str(model), "--force"], check=True, env=env)
    sys.path.insert(0, str(REPO))
    from review_sentiment.options import ScoringOptions
    from review_sentiment.predict import predict_file

    scoring = ScoringOptions(threads=options.worker_threads)  # two workers share the two cores
    batch = max(100, options.rows // 8)  # several batches per worker, for both engines

    results = {"rows": options.rows, "model": str(model), "cpu_cores": os.cpu_count()}
    results |= {"worker_threads": options.worker_threads, "batch_rows": batch}
    started = time.perf_counter()
    summary = predict_file(reviews_path, work / "predict.csv", model_dir=model)
    results["rs_predict"] = {"seconds": round(time.perf_counter() - started, 1), "startup": summary.startup_seconds}
    expected = pd.read_csv(work / "predict.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")

    started = time.perf_counter()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    frame = spark.createDataFrame(reviews).cache()
    frame.count()
    startup = time.perf_counter() - started
    from review_sentiment.spark import label_spark_dataframe

    started = time.perf_counter()
    labeled = label_spark_dataframe(frame, model, scoring=scoring, batch_rows=batch).toPandas()
    results["spark_local2"] = {"seconds": round(time.perf_counter() - started, 1), "session_startup": round(startup, 1)}
    results["spark_local2"]["same_labels"] = labeled["predicted_label"].tolist() == expected["predicted_label"].tolist()
    spark.stop()

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    dataset = ray.data.from_pandas(reviews).repartition(8).materialize()  # one block would feed one actor
    startup = time.perf_counter() - started
    from review_sentiment.ray import label_ray_dataset

    started = time.perf_counter()
    labeled = label_ray_dataset(dataset, model, scoring=scoring, concurrency=2, num_cpus=0.9, batch_size=batch)
    labeled = labeled.to_pandas()
    results["ray_2cpus"] = {"seconds": round(time.perf_counter() - started, 1), "session_startup": round(startup, 1)}
    results["ray_2cpus"]["same_labels"] = labeled["predicted_label"].tolist() == expected["predicted_label"].tolist()
    ray.shutdown()
    for engine in ("rs_predict", "spark_local2", "ray_2cpus"):
        results[engine]["rows_per_second"] = round(options.rows / results[engine]["seconds"])
    print(json.dumps(results, indent=1))
    (work / f"results-{model.name}-{options.rows}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
