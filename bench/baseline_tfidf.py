"""The TF-IDF + logistic-regression baseline on NSMC: the yardstick a fine-tuned transformer must beat.

Binary: ratings 1-4 negative, 9-10 positive, a balanced training set; three-class: 1-4 / 5-8 / 9-10.
Train and test are split by movie_id (10 % of the movies held out), so no movie is in both.

    python bench/baseline_tfidf.py --train-size 150000

Needs ../shared/data/nsmc_reviews.csv.gz. Prints a markdown table (accuracy, macro-F1, train time,
predict reviews/s) and saves the numbers to bench/results/baseline_tfidf.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
NSMC = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"
RESULTS = REPO / "bench" / "results"


def label_ratings(reviews: pd.DataFrame, three_class: bool) -> pd.DataFrame:
    rating = reviews["rating"].astype(int)
    labels = pd.Series("neutral", index=reviews.index)
    labels[rating <= 4] = "negative"
    labels[rating >= 9] = "positive"
    labeled = reviews.assign(label=labels)
    if not three_class:
        labeled = labeled[labeled["label"] != "neutral"]
    return labeled[labeled["review"].str.strip() != ""]


def run(task: str, train: pd.DataFrame, test: pd.DataFrame, folder: Path) -> dict:
    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune
    from review_sentiment.metrics import classification_scores
    from review_sentiment.scoring import Predictor

    train_path = RESULTS / f"tfidf_{task}_train.csv"
    train[["review", "label"]].to_csv(train_path, index=False)
    started = time.perf_counter()
    finetune(train_path, "tfidf", FinetuneArguments(validation_fraction=0.05), output_dir=folder, force=True)
    train_seconds = time.perf_counter() - started
    fit_seconds = json.loads((folder / "rs_meta.json").read_text())["metrics"]["history"][0]["fit_seconds"]
    predictor = Predictor(folder)
    started = time.perf_counter()
    predicted = predictor.predict(test["review"].tolist())
    predict_seconds = time.perf_counter() - started
    scores = classification_scores(test["label"].tolist(), predicted, predictor.labels)
    return {
        "task": task,
        "train_rows": len(train),
        "test_rows": len(test),
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "per_class": scores["per_class"],
        "train_seconds": round(train_seconds, 1),  # the whole rs finetune, normalization included
        "fit_seconds": fit_seconds,  # TF-IDF + logistic regression alone
        "predict_reviews_per_second": round(len(test) / predict_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=150_000)
    parser.add_argument("--test-size", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=NSMC)
    options = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    reviews = pd.read_csv(options.data, dtype=str, keep_default_na=False)
    movies = reviews["movie_id"].drop_duplicates().sample(frac=1.0, random_state=options.seed)
    test_movies = set(movies.iloc[: len(movies) // 10])
    is_test = reviews["movie_id"].isin(test_movies)

    rows = []
    for task, three_class in (("binary", False), ("three-class", True)):
        development = label_ratings(reviews[~is_test], three_class)
        test = label_ratings(reviews[is_test], three_class)
        test = test.sample(n=min(options.test_size, len(test)), random_state=options.seed)
        if three_class:  # the natural class mix: neutral is what star ratings make of 5-8
            train = development.sample(n=min(options.train_size, len(development)), random_state=options.seed)
        else:
            per_class = options.train_size // 2
            train = pd.concat(
                group.sample(n=min(per_class, len(group)), random_state=options.seed)
                for _, group in development.groupby("label")
            )
        rows.append(run(task, train, test, RESULTS / f"tfidf-{task}"))
        print(rows[-1], flush=True)

    (RESULTS / "baseline_tfidf.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    print("\n| task | train rows | test rows | accuracy | macro-F1 | rs finetune (fit alone) | predict reviews/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['task']} | {row['train_rows']:,} | {row['test_rows']:,} | {row['accuracy']:.4f} "
            f"| {row['macro_f1']:.4f} | {row['train_seconds']:.0f} s ({row['fit_seconds']:.0f} s) "
            f"| {row['predict_reviews_per_second']:.0f} |"
        )


if __name__ == "__main__":
    main()
