"""Does bf16 autocast train as well as fp32? rs finetune of the `mini` shape from random weights, same reviews,
same seeds, in both precisions: held-out accuracy and macro-F1 after each run.

    python bench/training_precision.py                        # 8,000 reviews, 3 epochs, seeds 1-3 (about 10 min)
    python bench/training_precision.py --reviews 2000 --seeds 1

The speed benchmark (bench/training_speed.py) cannot answer this: its random-weights models end one epoch
predicting the majority class in either precision. Here the model learns (random init, learning rate 5e-4), so
a precision that trains worse shows as lower accuracy. The reviews are training_speed.py's (NSMC, 1-4 negative,
9-10 positive, rs-normalized); rs finetune's own validation split (stratified 10 %) is the held-out set.
Results: bench/results/training_precision.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from predict_speed import build_checkpoint, instruction_set  # noqa: E402
from training_speed import RESULTS, WORK, prepare_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    options = parser.parse_args()

    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune
    from review_sentiment.inference import set_cpu_threads
    from review_sentiment.reporting import silence_library_logs

    silence_library_logs()
    set_cpu_threads()
    data, model = prepare_data(options.reviews), build_checkpoint("mini")
    rows = []
    for seed in options.seeds:
        for precision in ("fp32", "bf16"):
            arguments = FinetuneArguments(
                epochs=options.epochs,
                batch_size=32,
                max_length=128,
                learning_rate=5e-4,
                seed=seed,
                precision=precision,
                early_stopping_patience=0,
            )
            started = time.perf_counter()
            result = finetune(data, str(model), arguments, output_dir=WORK / "precision-model", force=True)
            last = result.history[-1]
            row = {
                "seed": seed,
                "precision": precision,
                "accuracy": last["accuracy"],
                "macro_f1": last["macro_f1"],
                "train_seconds": round(sum(epoch["train_seconds"] for epoch in result.history), 1),
                "wall_seconds": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    isa = instruction_set()
    (RESULTS / "training_precision.json").write_text(json.dumps({"instruction_set": isa, "rows": rows}, indent=2))
    print(f"\n{options.reviews:,} reviews, mini from random weights, {options.epochs} epochs; CPU with {isa}")
    print("| seed | precision | accuracy | macro-F1 | training |")
    print("|---:|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['seed']} | {row['precision']} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} "
            f"| {row['train_seconds']:.1f} s |"
        )


if __name__ == "__main__":
    main()
