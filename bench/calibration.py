"""How far can rs's confidence be trusted? Calibration before and after the temperature, on held-out movies.

For the TF-IDF baseline and a fine-tuned transformer (a `mini` ELECTRA that `rs pretrain` made from NSMC,
`make bench-pretrain`), binary (ratings 1-4 / 9-10) and three-class (1-4 / 5-8 / 9-10):
1. `rs finetune` on --train-size reviews of 90 % of the movies (it fits the temperature on its validation split);
2. `rs evaluate` on --test-size reviews of the other 10 % of the movies (the split of bench/pretrain_vs_random.py,
   so no test movie was seen in pretraining): ECE (top-label confidence, 15 equal-mass bins), Brier score and
   NLL of the raw and calibrated probabilities, and the coverage / accuracy table of `--min-confidence`;
3. the alternative the issue asked to weigh: isotonic regression (one per class, on the same validation split,
   rows renormalized), which can fit any monotone shape but may change labels.

    python bench/calibration.py --train-size 40000 --test-size 20000 --ablate-class-weights

--ablate-class-weights adds the binary transformer fine-tuned without class weights: the experiment that showed
why one temperature does not calibrate the class-weighted transformers (README: Benchmarks → Calibration).

Needs ../shared/data/nsmc_reviews.csv.gz. Work files go to bench/results/calibration/ (ignored by git); prints
markdown tables and saves the numbers to bench/results/calibration/calibration.json; copies the three-class
reliability diagram and coverage curve of the more accurate model to docs/ for the README.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from baseline_tfidf import label_ratings
from pretrain_vs_random import split_by_movie

REPO = Path(__file__).resolve().parent.parent
NSMC = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"
RESULTS = REPO / "bench" / "results" / "calibration"
PRETRAINED = REPO / "bench" / "results" / "pretrained-mini"
DOCS = REPO / "docs"


def validation_probabilities(model: Path, train_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The raw probabilities and gold classes of the validation split `rs finetune` held out (same data, the
    same seed and fraction as it used)."""
    from review_sentiment.finetune import load_training_data, stratified_split
    from review_sentiment.options import ScoringOptions
    from review_sentiment.scoring import Predictor

    meta = json.loads((model / "rs_meta.json").read_text())
    data = load_training_data(train_path)
    args = meta["training_args"]
    _, validation = stratified_split(data.labels, args["validation_fraction"], args["seed"])
    predictor = Predictor.from_options(model, ScoringOptions(calibration=False))
    texts = [data.texts[i] for i in validation]  # already normalized; normalizing again changes nothing
    probabilities = predictor.score(predictor.prepare(texts), calibrated=False)
    gold = np.array([meta["labels"].index(data.labels[i]) for i in validation])
    return probabilities, gold


def isotonic(validation: np.ndarray, gold: np.ndarray):
    """One isotonic regression per class (its probability → how often it is the gold class), rows renormalized."""
    from sklearn.isotonic import IsotonicRegression

    fits = [
        IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(validation[:, k], gold == k)
        for k in range(validation.shape[1])
    ]

    def apply(probabilities: np.ndarray) -> np.ndarray:
        mapped = np.column_stack([fit.predict(probabilities[:, k]) for k, fit in enumerate(fits)])
        totals = mapped.sum(axis=1, keepdims=True)
        return np.where(totals > 0, mapped / np.where(totals > 0, totals, 1), 1 / mapped.shape[1])

    return apply


def test_probabilities(model: Path, test_path: Path) -> tuple[np.ndarray, np.ndarray]:
    from review_sentiment.options import ScoringOptions
    from review_sentiment.scoring import Predictor

    predictor = Predictor.from_options(model, ScoringOptions(calibration=False))
    test = pd.read_csv(test_path, dtype=str, keep_default_na=False)
    probabilities = predictor.probabilities(test["review"].tolist())
    scored = ~np.isnan(probabilities).any(axis=1)
    gold = np.array([predictor.labels.index(label) for label in test["label"]])
    return probabilities[scored], gold[scored]


def run(
    kind: str, task: str, train: pd.DataFrame, test_path: Path, base: str, epochs: int, class_weights: bool = True
) -> dict:
    from review_sentiment.calibration import Temperature, calibration_scores, fit_temperature
    from review_sentiment.config import FinetuneArguments
    from review_sentiment.evaluate import evaluate_file
    from review_sentiment.finetune import finetune

    folder = RESULTS / f"{kind}-{task}"
    train_path = RESULTS / f"train-{task}.csv"
    started = time.perf_counter()
    arguments = FinetuneArguments(epochs=epochs, class_weights=class_weights)
    finetune(train_path, base, arguments, output_dir=folder, force=True)
    train_seconds = time.perf_counter() - started
    meta = json.loads((folder / "rs_meta.json").read_text())
    report = evaluate_file(test_path, folder, output_dir=folder / "evaluation")

    validation, validation_gold = validation_probabilities(folder, train_path)
    refitted = fit_temperature(validation, validation_gold)  # checks that the split was reproduced
    temperature = Temperature(meta["calibration"]["temperature"])
    raw, gold = test_probabilities(folder, test_path)
    by_isotonic = isotonic(validation, validation_gold)(raw)
    return {
        "model": kind,
        "task": task,
        "train_rows": len(train),
        "test_rows": report.evaluated,
        "train_seconds": round(train_seconds, 1),
        "accuracy": report.scores["accuracy"],
        "macro_f1": report.scores["macro_f1"],
        "temperature": temperature.value,
        "temperature_refitted_on_the_reproduced_validation_split": refitted.value,
        "validation": meta["calibration"],
        "test": {
            "raw": report.calibration["raw"],
            "temperature": report.calibration["calibrated"],
            "isotonic": {
                **calibration_scores(by_isotonic, gold),
                "labels_changed": round(float((by_isotonic.argmax(axis=1) != raw.argmax(axis=1)).mean()), 4),
                "accuracy": round(float((by_isotonic.argmax(axis=1) == gold).mean()), 4),
            },
        },
        "by_predicted_label": report.calibration["by_predicted_label"],
        "coverage": report.coverage,
        "files": report.files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=40_000)
    parser.add_argument("--test-size", type=int, default=20_000)
    parser.add_argument("--base", default=str(PRETRAINED), help="The transformer base [default: %(default)s].")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=NSMC)
    parser.add_argument(
        "--ablate-class-weights",
        action="store_true",
        help="Also fine-tune the binary transformer with --no-class-weights (the cause of its miscalibration).",
    )
    options = parser.parse_args()
    if not Path(options.base).is_dir():
        raise SystemExit(f"{options.base} does not exist: run `make bench-pretrain` first, or pass --base FOLDER.")

    RESULTS.mkdir(parents=True, exist_ok=True)
    reviews = pd.read_csv(options.data, dtype=str, keep_default_na=False)
    development, held_out = split_by_movie(reviews, 0.10, options.seed)
    rows = []
    for task, three_class in (("binary", False), ("three-class", True)):
        train = label_ratings(development, three_class)
        train = train.sample(n=min(options.train_size, len(train)), random_state=options.seed)
        test = label_ratings(held_out, three_class)
        test = test.sample(n=min(options.test_size, len(test)), random_state=options.seed)
        train[["review", "label"]].to_csv(RESULTS / f"train-{task}.csv", index=False)
        test_path = RESULTS / f"test-{task}.csv"
        test[["review", "label"]].to_csv(test_path, index=False)
        runs = [("tfidf", "tfidf", True), ("transformer", options.base, True)]
        if options.ablate_class_weights and not three_class:
            runs.append(("transformer-no-class-weights", options.base, False))
        for kind, base, class_weights in runs:
            rows.append(run(kind, task, train, test_path, base, options.epochs, class_weights))
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    (RESULTS / "calibration.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))

    # the README shows the three-class charts of the more accurate model
    shown = max((row for row in rows if row["task"] == "three-class"), key=lambda row: row["accuracy"])
    for name in ("reliability", "coverage"):
        shutil.copyfile(shown["files"][name], DOCS / f"calibration-{name}.png")

    print(
        "\n| model | task | test accuracy | temperature | ECE raw → calibrated | Brier raw → calibrated "
        "| NLL raw → calibrated | isotonic instead: ECE, NLL (labels changed) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        raw, calibrated, iso = row["test"]["raw"], row["test"]["temperature"], row["test"]["isotonic"]
        print(
            f"| {row['model']} | {row['task']} | {row['accuracy']:.4f} | {row['temperature']:g} "
            f"| {raw['ece']:.4f} → {calibrated['ece']:.4f} | {raw['brier']:.4f} → {calibrated['brier']:.4f} "
            f"| {raw['nll']:.4f} → {calibrated['nll']:.4f} | {iso['ece']:.4f}, {iso['nll']:.4f} "
            f"({iso['labels_changed']:.1%}) |"
        )
    print("\n| model | task | per predicted label: reviews, mean confidence, share right (calibrated) |")
    print("|---|---|---|")
    for row in rows:
        cells = "; ".join(
            f"{label} {entry['rows']:,}, {entry['confidence']:.3f}, {entry['accuracy']:.1%}"
            for label, entry in row["by_predicted_label"].items()
        )
        print(f"| {row['model']} | {row['task']} | {cells} |")
    print("\n| model | task | " + " | ".join(f"≥ {row['min_confidence']:g}" for row in rows[-1]["coverage"]) + " |")
    print("|---|---|" + "---:|" * len(rows[-1]["coverage"]))
    for row in rows:
        cells = {entry["min_confidence"]: entry for entry in row["coverage"]}
        shown_cells = [
            f"{cells[t]['coverage']:.0%} kept, {cells[t]['accuracy']:.1%} right"
            if t in cells and cells[t]["accuracy"] is not None
            else "-"
            for t in (entry["min_confidence"] for entry in rows[-1]["coverage"])
        ]
        print(f"| {row['model']} | {row['task']} | " + " | ".join(shown_cells) + " |")


if __name__ == "__main__":
    main()
