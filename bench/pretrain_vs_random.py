"""Does `rs pretrain` help? ELECTRA pretraining on NSMC vs the same architecture from random weights.

1. Split NSMC's movies: 10 % of movie_ids are held out for testing (no review of a test movie is seen in
   pretraining or fine-tuning).
2. Pretrain a `mini` ELECTRA (replaced-token detection) from scratch on every review of the other movies,
   for a fixed CPU budget (--pretrain-minutes).
3. Fine-tune it on a balanced binary set from the ratings (1-4 negative, 9-10 positive; --train-size), and on
   smaller balanced subsets of it (--fewer-labels), with each of --pretrained-seeds.
4. Fine-tune the same architecture and vocabulary from random initialization with the same settings
   (--control-seeds: the weights and the fine-tuning).
5. Evaluate all on the held-out movies' 1-4 / 9-10 reviews: accuracy and macro-F1.
6. The TF-IDF baseline on the full training set, alone and averaged with each transformer fine-tuned on it.

    python bench/pretrain_vs_random.py --pretrain-minutes 60 --train-size 150000 --fewer-labels 20000 5000 \
        --pretrained-seeds 0 1 --control-seeds 0 1 2

Needs ../shared/data/nsmc_reviews.csv.gz. Work files go to bench/results/ (ignored by git); the table is
printed as markdown and saved with all numbers to bench/results/pretrain_vs_random.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
NSMC = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"
RESULTS = REPO / "bench" / "results"


def split_by_movie(reviews: pd.DataFrame, test_share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    movies = reviews["movie_id"].drop_duplicates().sample(frac=1.0, random_state=seed)
    test_movies = set(movies.iloc[: int(len(movies) * test_share)])
    is_test = reviews["movie_id"].isin(test_movies)
    return reviews[~is_test], reviews[is_test]


def binary_labels(reviews: pd.DataFrame) -> pd.DataFrame:
    rating = reviews["rating"].astype(int)
    kept = reviews[(rating <= 4) | (rating >= 9)].copy()
    kept["label"] = np.where(kept["rating"].astype(int) <= 4, "negative", "positive")
    return kept[kept["review"].str.strip() != ""]


def balanced_sample(labeled: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    per_class = size // 2
    parts = [group.sample(n=min(per_class, len(group)), random_state=seed) for _, group in labeled.groupby("label")]
    return pd.concat(parts).sample(frac=1.0, random_state=seed)


def random_init_copy(pretrained: Path, output: Path, seed: int) -> Path:
    """The pretrained model's architecture and tokenizer with fresh random weights: the control."""
    import torch
    from transformers import AutoTokenizer, ElectraConfig, ElectraForPreTraining

    torch.manual_seed(seed)
    model = ElectraForPreTraining(ElectraConfig.from_pretrained(pretrained))
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(output)
    return output


def evaluate(model_dir: Path, test: pd.DataFrame) -> tuple[dict, np.ndarray]:
    """Accuracy and macro-F1 on the test reviews, and the class probabilities (columns negative, positive)."""
    from review_sentiment.scoring import Predictor

    predictor = Predictor(model_dir, batch_size=64)
    started = time.perf_counter()
    probabilities = predictor.probabilities(test["review"].tolist())
    seconds = time.perf_counter() - started
    probabilities = probabilities[:, [predictor.labels.index(label) for label in ("negative", "positive")]]
    return {**scores(probabilities, test), "predict_reviews_per_second": round(len(test) / seconds, 1)}, probabilities


def scores(probabilities: np.ndarray, test: pd.DataFrame) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    from review_sentiment.scoring import labels_from_probabilities

    predicted = labels_from_probabilities(probabilities, ["negative", "positive"])
    gold = test["label"].tolist()
    # A review that normalizes to nothing gets the label "": it counts as wrong, not as a third class.
    return {
        "accuracy": round(accuracy_score(gold, predicted), 4),
        "macro_f1": round(f1_score(gold, predicted, labels=["negative", "positive"], average="macro"), 4),
        # Threshold-free, so it does not move with where a fine-tune happens to put the boundary on a test set
        # that is 80 % positive: the steadier measure for comparing starting points.
        "roc_auc": round(roc_auc_score(np.equal(gold, "positive"), np.nan_to_num(probabilities[:, 1], nan=0.5)), 4),
    }


def combined(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The mean of two models' probabilities; where one could not score a review, the other's."""
    return np.where(np.isnan(first), second, np.where(np.isnan(second), first, (first + second) / 2))


def replacement_detection(pretrained: Path, test: pd.DataFrame, reviews: int = 600) -> dict:
    """The pretrained pair on reviews of the held-out movies, each alone: the generator's masked cross-entropy and
    the discriminator's ROC AUC on its generator's replacements and on uniformly random ones."""
    from pretrain_experiments import discriminator_auc, masked_ce
    from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining

    from review_sentiment.normalize import clean_text

    tokenizer = AutoTokenizer.from_pretrained(pretrained)
    discriminator = ElectraForPreTraining.from_pretrained(pretrained)
    generator = ElectraForMaskedLM.from_pretrained(pretrained / "generator")
    texts = [t for t in (clean_text(text) for text in test["review"].iloc[:reviews]) if t]
    held = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return {
        "generator_masked_ce": masked_ce(generator, held, tokenizer),
        "auc_generator": discriminator_auc(discriminator, held, tokenizer, generator),
        "auc_uniform": discriminator_auc(discriminator, held, tokenizer),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-minutes", type=float, default=35.0)
    parser.add_argument("--train-size", type=int, default=150_000)
    parser.add_argument(
        "--fewer-labels",
        type=int,
        nargs="*",
        default=[],
        help="also fine-tune every base on balanced subsets of the training set of these sizes",
    )
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--corpus-size", type=int, help="pretrain on a sample of this many reviews [default: all]")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="fine-tuning (ELECTRA-Small's 3e-4)")
    parser.add_argument("--seed", type=int, default=0, help="the split, the pretraining and its fine-tuning")
    parser.add_argument(
        "--control-seeds", type=int, nargs="+", default=[0, 1], help="random-init controls: weights and fine-tuning"
    )
    parser.add_argument(
        "--pretrained-seeds", type=int, nargs="+", help="fine-tuning seeds of the pretrained model [default: --seed]"
    )
    parser.add_argument("--size", default="mini", help="rs pretrain --size")
    parser.add_argument("--pretrain-learning-rate", type=float, help="rs pretrain --learning-rate [default: preset]")
    parser.add_argument("--vocab-size", type=int, help="rs pretrain --vocab-size [default: preset]")
    parser.add_argument("--data", type=Path, default=NSMC)
    parser.add_argument("--reuse-pretrained", type=Path, help="skip step 2 and use this pretrained folder")
    options = parser.parse_args()

    from predict_speed import matmul_peak

    from review_sentiment.config import FinetuneArguments, PretrainArguments
    from review_sentiment.finetune import finetune
    from review_sentiment.pretrain import pretrain

    peak_before = matmul_peak()  # the machine's fp32 matmul speed in this run, for the speed figures
    print(f"fp32 matmul GFLOP/s before: {peak_before}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    reviews = pd.read_csv(options.data, dtype=str, keep_default_na=False)
    development, test_movies = split_by_movie(reviews, 0.10, options.seed)
    corpus_path = RESULTS / "pretrain_corpus.csv"
    corpus = development[["review"]]
    if options.corpus_size:
        corpus = corpus.sample(n=min(options.corpus_size, len(corpus)), random_state=options.seed)
    corpus.to_csv(corpus_path, index=False)
    train = balanced_sample(binary_labels(development), options.train_size, options.seed)
    train_path = RESULTS / "finetune_train.csv"
    train[["review", "label"]].to_csv(train_path, index=False)
    train_sets = {len(train): train_path}
    for size in options.fewer_labels:
        subset_path = RESULTS / f"finetune_train_{size}.csv"
        balanced_sample(train, size, options.seed)[["review", "label"]].to_csv(subset_path, index=False)
        train_sets[size] = subset_path
    test = binary_labels(test_movies)
    test = test.sample(n=min(options.test_size, len(test)), random_state=options.seed)
    print(
        f"{len(development):,} reviews of {development['movie_id'].nunique():,} movies for pretraining; "
        f"fine-tuning on {len(train):,} ({train['label'].value_counts().to_dict()}); "
        f"testing on {len(test):,} reviews of {test['movie_id'].nunique():,} held-out movies "
        f"({test['label'].value_counts().to_dict()})",
        flush=True,
    )

    if options.reuse_pretrained:
        pretrained = options.reuse_pretrained
        pretrain_meta = json.loads((pretrained / "rs_pretrain.json").read_text())
    else:
        pretrained = RESULTS / f"pretrained-{options.size}"
        started = time.perf_counter()
        pretrain_args = PretrainArguments(
            size=options.size,
            max_minutes=options.pretrain_minutes,
            seed=options.seed,
            learning_rate=options.pretrain_learning_rate,
            vocab_size=options.vocab_size,
        )
        pretrain(corpus_path, pretrain_args, output_dir=pretrained, force=True)
        pretrain_meta = json.loads((pretrained / "rs_pretrain.json").read_text())
        pretrain_meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    held_out = replacement_detection(pretrained, test)
    print(f"Held-out movies, each review alone: {held_out}", flush=True)

    runs = [("pretrained", pretrained, seed) for seed in options.pretrained_seeds or [options.seed]]
    for seed in options.control_seeds:
        control = random_init_copy(pretrained, RESULTS / f"random-init-{options.size}-seed{seed}", seed)
        runs.append(("random init", control, seed))
    rows, probabilities = {}, {}
    for labels, data_path in train_sets.items():
        for kind, base, seed in runs:
            args = FinetuneArguments(
                epochs=options.epochs, learning_rate=options.learning_rate, validation_fraction=0.05, seed=seed
            )
            started = time.perf_counter()
            output = RESULTS / f"finetuned-{base.name}" if labels == len(train) else RESULTS / "finetuned-fewer"
            name = f"{kind}, seed {seed}" + ("" if labels == len(train) else f", {labels:,} labels")
            result = finetune(data_path, str(base), args, output_dir=output, force=True)
            wall = time.perf_counter() - started
            measured, probabilities[name] = evaluate(result.output_dir, test)
            meta = json.loads((result.output_dir / "rs_meta.json").read_text())
            rows[name] = {
                **measured,
                "kind": kind,
                "seed": seed,
                "labels": labels,
                "finetune_seconds": round(wall, 1),
                "validation": meta["metrics"],
            }
            print(name, rows[name], flush=True)

    # The best offline model: TF-IDF alone and averaged with each transformer fine-tuned on all the labels
    tfidf = finetune(
        train_path,
        "tfidf",
        FinetuneArguments(validation_fraction=0.05, seed=options.seed),
        output_dir=RESULTS / "finetuned-tfidf",
        force=True,
    )
    tfidf_scores, tfidf_probabilities = evaluate(tfidf.output_dir, test)
    ensembles = {"TF-IDF": tfidf_scores}
    for name, row in rows.items():
        if row["labels"] == len(train):
            ensembles[f"{name} + TF-IDF"] = scores(combined(probabilities[name], tfidf_probabilities), test)
    for name, row in ensembles.items():
        print(name, row, flush=True)

    report = {
        "pretraining": {
            k: pretrain_meta.get(k)
            for k in (
                "steps",
                "tokens_seen",
                "tokens_per_second",
                "padding_share",
                "train_seconds",
                "wall_seconds",
                "final",
                "learning_rate",
                "corpus",
            )
        },
        "pretrained_held_out": held_out,
        "fp32_matmul_gflops": {"before": peak_before, "after": matmul_peak()},
        "finetune_args": args.to_dict(),
        "train_size": len(train),
        "fewer_labels": options.fewer_labels,
        "test_size": len(test),
        "results": rows,
        "with_tfidf": ensembles,
    }
    (RESULTS / "pretrain_vs_random.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    p = report["pretraining"]
    print(
        f"\nPretraining: {p['steps']} steps, {p['tokens_seen']:,} tokens at {p['tokens_per_second']:.0f} tokens/s, "
        f"padding {p['padding_share']:.1%}, {p['train_seconds'] / 60:.1f} min; final {p['final']}\n"
    )
    for labels in train_sets:
        for measure in ("accuracy", "roc_auc"):
            means = {}
            for kind in ("pretrained", "random init"):
                values = [r[measure] for r in rows.values() if r["kind"] == kind and r["labels"] == labels]
                means[kind] = float(np.mean(values))
                print(
                    f"{labels:,} labels, {kind}: {measure} {means[kind]:.4f} "
                    f"(range {min(values):.4f}-{max(values):.4f}, {len(values)} seeds)"
                )
            print(
                f"{labels:,} labels: pretrained - random init = "
                f"{100 * (means['pretrained'] - means['random init']):+.2f} {measure} points"
            )
    print(
        "| base | test accuracy | test macro-F1 | test ROC AUC | fine-tune wall | fine-tune tokens/s | padding "
        "| predict reviews/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        last = row["validation"]["history"][-1]
        print(
            f"| {name} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | {row['roc_auc']:.4f} "
            f"| {row['finetune_seconds'] / 60:.1f} min | {last['train_tokens_per_second']:.0f} "
            f"| {last['padding_share']:.1%} | {row['predict_reviews_per_second']:.0f} |"
        )
    print("\n| model | test accuracy | test macro-F1 | test ROC AUC |\n|---|---:|---:|---:|")
    for name, row in ensembles.items():
        print(f"| {name} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | {row['roc_auc']:.4f} |")


if __name__ == "__main__":
    main()
