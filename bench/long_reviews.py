"""Long reviews: truncation vs rs predict's sentence parts with token-weighted probabilities.

NSMC has no long reviews (140 characters at most), so long ones are built from it: each "long review" joins
12-40 reviews of movies held out from the model's training (`pretrain_vs_random.split_by_movie`, seed 0), 60-80 %
of one polarity in random order; its gold label is that majority. Every review is scored three ways by the same
fine-tuned model:

- truncated: the first `max_length` tokens, as transformers' pipeline and the fine-tuning scripts do;
- parts, token-weighted (what `rs predict` does): kiwipiepy sentences packed into parts that fit, each part
  scored, probabilities averaged with the parts' token counts as weights;
- parts, plain mean: the same parts, each counting once.

It also checks that short reviews get exactly the plain prediction (nothing to split).

    python bench/long_reviews.py [--model bench/results/finetuned-random-init-mini-seed0] [--reviews 1000]

The default model is the ELECTRA-mini that `make bench-pretrain` fine-tunes on NSMC (binary). Results go to
bench/results/long_reviews.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from pretrain_vs_random import NSMC, binary_labels, split_by_movie  # noqa: E402

RESULTS = REPO / "bench" / "results"


def long_reviews(held_out: pd.DataFrame, count: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    pools = {label: group["review"].tolist() for label, group in held_out.groupby("label")}
    texts, gold = [], []
    for _ in range(count):
        label = str(rng.choice(["negative", "positive"]))
        other = "positive" if label == "negative" else "negative"
        size = int(rng.integers(12, 41))
        majority = int(round(size * rng.uniform(0.6, 0.8)))
        picked = [pools[label][i] for i in rng.choice(len(pools[label]), majority, replace=False)]
        picked += [pools[other][i] for i in rng.choice(len(pools[other]), size - majority, replace=False)]
        rng.shuffle(picked)
        texts.append(" ".join(review.strip() for review in picked))
        gold.append(label)
    return texts, gold


def accuracy(probabilities: np.ndarray, labels: list[str], gold: list[str]) -> float:
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    return round(sum(a == b for a, b in zip(predicted, gold, strict=True)) / len(gold), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=RESULTS / "finetuned-random-init-mini-seed0")
    parser.add_argument("--reviews", type=int, default=1000, help="Long reviews to build.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.model / "rs_meta.json").exists():
        raise SystemExit(f"No model at {args.model}: run `make bench-pretrain` first or pass --model.")

    from review_sentiment.inference import batched_probabilities
    from review_sentiment.scoring import EncodedTexts, Predictor, combine_pieces

    held_out = binary_labels(split_by_movie(pd.read_csv(NSMC, dtype=str, keep_default_na=False), 0.10, args.seed)[1])
    texts, gold = long_reviews(held_out, args.reviews, args.seed)
    predictor = Predictor(args.model, device="cpu")
    classifier = predictor.classifier
    pad = classifier.tokenizer.pad_token_id
    predictor.probabilities(texts[:20])  # warm-up: kiwipiepy's model (seconds to build) and the first batches

    started = time.perf_counter()
    prepared = predictor.prepare(texts)
    encoded = prepared.encoded
    parts_seconds = time.perf_counter() - started
    started = time.perf_counter()
    pieces = batched_probabilities(classifier.model, encoded.ids, pad)
    weighted = combine_pieces(pieces, encoded)
    score_seconds = time.perf_counter() - started
    unweighted = combine_pieces(
        pieces, EncodedTexts(encoded.ids, encoded.owners, [1] * len(encoded.ids), encoded.parts)
    )

    normalized = predictor.normalizer.normalize(texts)
    started = time.perf_counter()
    truncated_ids = classifier.tokenizer(normalized, truncation=True, max_length=classifier.max_length)["input_ids"]
    truncated = batched_probabilities(classifier.model, truncated_ids, pad)
    truncated_seconds = time.perf_counter() - started

    short = held_out.sample(n=2000, random_state=args.seed)["review"].tolist()
    short_prepared = predictor.prepare(short)
    short_ids = classifier.tokenizer(
        predictor.normalizer.normalize(short), truncation=True, max_length=classifier.max_length
    )["input_ids"]
    short_same = np.array_equal(
        predictor.score(short_prepared)[short_prepared.scored],
        batched_probabilities(classifier.model, [short_ids[i] for i in short_prepared.scored], pad),
    )

    result = {
        "model": str(args.model),
        "max_length": classifier.max_length,
        "long_reviews": len(texts),
        "mean_characters": round(float(np.mean([len(t) for t in texts])), 1),
        "mean_tokens": round(float(np.sum(encoded.weights)) / len(texts), 1),
        "mean_parts": round(float(np.mean(encoded.parts)), 2),
        "split_share": round(prepared.split / len(texts), 4),
        "accuracy": {
            "truncated": accuracy(truncated, predictor.labels, gold),
            "parts_token_weighted": accuracy(weighted, predictor.labels, gold),
            "parts_plain_mean": accuracy(unweighted, predictor.labels, gold),
        },
        "seconds": {
            "normalize_split_tokenize": round(parts_seconds, 2),
            "score_parts": round(score_seconds, 2),
            "truncated_tokenize_and_score": round(truncated_seconds, 2),
        },
        "short_reviews_identical_to_plain_prediction": bool(short_same),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "long_reviews.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
