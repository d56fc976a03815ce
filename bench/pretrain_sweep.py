"""Which `rs pretrain` settings help? Short RTD runs side by side, each ending in a fine-tuning probe.

Made for a GPU lent for a few minutes: several settings run at once as separate processes on one device.
`prepare` tokenizes NSMC once (raw reviews after the clean step; pretraining corpus and a binary
fine-tuning set of other movies than the test set, split as in bench/pretrain_vs_random.py); `run` pretrains
one setting for a step or time budget, logs generator loss, discriminator loss and the discriminator's ROC AUC
on a held-out batch every 500 steps, then fine-tunes the discriminator for one epoch on 60,000 balanced binary
reviews and scores it on 10,000 reviews of held-out movies. `--steps 0` probes random weights (the control).

    python bench/pretrain_sweep.py prepare --tokenizer bench/results/pretrained-mini
    python bench/pretrain_sweep.py run --name lr5e-4 --lr 5e-4 --steps 6000 --minutes 5 --probe-at 0.25 0.5
    python bench/pretrain_sweep.py run --name control --steps 0

`--packing contaminated` reproduces the packing before `PackedBatch` ([CLS] a [SEP] b [SEP] … with reviews
attending to each other and positions running on), for comparison. Lines of JSON go to --out/NAME.jsonl.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "results" / "sweep_data.pt"


def prepare(tokenizer_dir: Path, output: Path) -> None:
    import pandas as pd
    from pretrain_vs_random import NSMC, RESULTS, binary_labels, split_by_movie
    from transformers import AutoTokenizer

    from review_sentiment.normalize import clean_text

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.save_pretrained(output.parent / "sweep_tokenizer")
    reviews = pd.read_csv(NSMC, dtype=str, keep_default_na=False)
    development, test_movies = split_by_movie(reviews, 0.10, 0)
    corpus = [clean_text(text) for text in development["review"]]
    token_lists = tokenizer([text for text in corpus if text], add_special_tokens=False)["input_ids"]
    random.Random(0).shuffle(token_lists)
    train = pd.read_csv(RESULTS / "finetune_train.csv", dtype=str, keep_default_na=False).iloc[:60_000]
    test = binary_labels(test_movies).sample(n=10_000, random_state=0)

    def encode(table):
        texts = [clean_text(text) for text in table["review"]]
        ids = tokenizer(texts, truncation=True, max_length=64)["input_ids"]
        return ids, torch.tensor((table["label"] == "positive").astype(int).values)

    train_ids, train_labels = encode(train)
    test_ids, test_labels = encode(test)
    torch.save(
        {
            "reviews": token_lists,
            "train": train_ids,
            "train_labels": train_labels,
            "test": test_ids,
            "test_labels": test_labels,
        },
        output,
    )
    print(f"{len(token_lists):,} reviews, {len(train_ids):,} train, {len(test_ids):,} test → {output}")


def pack(reviews: list[list[int]], isolated: bool, cls_id: int, sep_id: int, max_length: int = 128):
    from review_sentiment.pretrain import pack_sequences

    if isolated:
        return pack_sequences(reviews, max_length, cls_id, sep_id)
    sequences, current = [], [cls_id]  # the packing before PackedBatch
    for tokens in reviews:
        block = [*tokens[: max_length - 2], sep_id]
        if len(current) + len(block) > max_length:
            sequences.append(current)
            current = [cls_id]
        current.extend(block)
    sequences.append(current)
    return sequences


def run(o: argparse.Namespace) -> None:
    from sklearn.metrics import f1_score, roc_auc_score
    from transformers import AutoTokenizer, ElectraForSequenceClassification, set_seed

    from review_sentiment.config import MODEL_SIZES, ModelSize, PretrainArguments
    from review_sentiment.inference import pad_batch
    from review_sentiment.pretrain import (
        PackedBatch,
        _schedule,
        choose_mask_positions,
        mask_for_generator,
        new_electra_pair,
        replaced_token_labels,
        rtd_optimizer,
        rtd_step,
    )

    device = "cuda" if torch.cuda.is_available() else "cpu"
    o.out.mkdir(parents=True, exist_ok=True)
    log = (o.out / f"{o.name}.jsonl").open("w")

    def emit(**fields) -> None:
        line = json.dumps({"name": o.name, **fields})
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    data = torch.load(o.data)
    tokenizer = AutoTokenizer.from_pretrained(o.data.parent / "sweep_tokenizer")
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    held_out, reviews = data["reviews"][:300], data["reviews"][300:]
    isolated = o.packing == "isolated"
    sequences = pack(reviews, isolated, cls_id, sep_id)

    def make_batch(rows: list[list[int]]):
        if isolated:
            return PackedBatch.from_sequences(rows, pad_id, cls_id).to(device)
        ids, mask = pad_batch(rows, pad_id)
        ids, mask = ids.to(device), mask.to(device)
        return types.SimpleNamespace(
            input_ids=ids, real=mask.bool(), model_inputs=lambda x: {"input_ids": x, "attention_mask": mask}
        )

    MODEL_SIZES["sweep"] = ModelSize(
        o.hidden, o.layers, max(1, o.hidden // 64), 4 * o.hidden, 128, o.gen, len(tokenizer), o.lr
    )
    # temperature 1: the sampling of these runs, made before the mini preset's temperature 2
    args = PretrainArguments(size="sweep", batch_size=o.batch, disc_weight=o.disc_weight, sampling_temperature=1.0)
    set_seed(0)
    generator, discriminator = new_electra_pair(tokenizer, args)
    for model in (generator, discriminator):
        model.set_attn_implementation("sdpa" if device == "cuda" else "eager")
        model.to(device).train()
    special = torch.tensor(tokenizer.all_special_ids, device=device)

    def auc() -> dict:
        """Generator loss and discriminator ROC AUC on 300 held-out reviews, each alone in its sequence."""
        generator.eval()
        discriminator.eval()
        rng = torch.Generator(device=device).manual_seed(7)
        batch = make_batch([[cls_id, *r[:126], sep_id] for r in held_out])
        ids, real = batch.input_ids, batch.real
        with torch.no_grad():
            positions = choose_mask_positions(real & ~torch.isin(ids, special), 0.15, rng)
            hidden = generator.electra(
                **batch.model_inputs(mask_for_generator(ids, positions, tokenizer.mask_token_id, rng))
            ).last_hidden_state
            logits = generator.generator_lm_head(generator.generator_predictions(hidden[positions])).float()
            result = {"generator_eval_loss": round(float(F.cross_entropy(logits, ids[positions])), 4)}
            sampled = torch.multinomial(torch.softmax(logits, -1), 1, generator=rng).squeeze(-1)
            uniform = torch.randint(5, len(tokenizer), (int(positions.sum()),), generator=rng, device=device)
            for name, replacement in (("auc_generator_samples", sampled), ("auc_uniform_random", uniform)):
                corrupted = ids.clone()
                corrupted[positions] = replacement
                labels = replaced_token_labels(ids, corrupted)
                scores = discriminator(**batch.model_inputs(corrupted)).logits.float()
                result[name] = round(float(roc_auc_score(labels[real].cpu(), scores[real].cpu())), 4)
        generator.train()
        discriminator.train()
        return result

    def probe(step: int) -> None:
        """Fine-tune a copy of the discriminator's encoder for one epoch; accuracy on held-out movies."""
        set_seed(1)
        config = discriminator.config.__class__(**{**discriminator.config.to_dict(), "num_labels": 2})
        classifier = ElectraForSequenceClassification(config)
        classifier.electra.load_state_dict(discriminator.electra.state_dict())
        classifier.set_attn_implementation("sdpa" if device == "cuda" else "eager")
        classifier.to(device).train()
        train, train_labels = data["train"], data["train_labels"]
        steps = math.ceil(len(train) / 64)
        optimizer = torch.optim.AdamW(classifier.parameters(), lr=o.probe_lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, steps // 10, steps))
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(1)).tolist()
        for b in range(steps):
            rows = order[b * 64 : (b + 1) * 64]
            ids, mask = pad_batch([train[i] for i in rows], pad_id)
            loss = classifier(
                input_ids=ids.to(device), attention_mask=mask.to(device), labels=train_labels[rows].to(device)
            ).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(classifier.parameters(), 1.0)
            optimizer.step()
            schedule.step()
        classifier.eval()
        predictions = []
        with torch.no_grad():
            for b in range(0, len(data["test"]), 256):
                ids, mask = pad_batch(data["test"][b : b + 256], pad_id)
                logits = classifier(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                predictions.append(logits.argmax(-1).cpu())
        predicted, gold = torch.cat(predictions), data["test_labels"]
        emit(
            probe_accuracy=round(float((predicted == gold).float().mean()), 4),
            probe_macro_f1=round(float(f1_score(gold, predicted, average="macro")), 4),
            pretrain_steps=step,
            seconds=round(time.time() - started, 1),
        )

    optimizer, parameters = rtd_optimizer(generator, discriminator, o.lr, weight_decay=0.01)
    plan = {"total": o.steps, "warmup": max(1, int(o.steps * o.warmup))}
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, plan["warmup"], plan["total"]))
    rng = torch.Generator(device=device).manual_seed(0)
    batch_rng = torch.Generator().manual_seed(0)
    started = time.time()
    probe_steps: set[int] = set()
    window: list[tuple] = []
    step = 0
    if o.steps:
        emit(step=0, **auc())
    while step < plan["total"]:
        rows = torch.randint(0, len(sequences), (o.batch,), generator=batch_rng).tolist()
        loss, result = rtd_step(
            generator,
            discriminator,
            make_batch([sequences[r] for r in rows]),
            special,
            tokenizer.mask_token_id,
            args,
            rng,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, o.clip)
        optimizer.step()
        schedule.step()
        step += 1
        window.append((result.generator_loss, result.discriminator_loss, float(grad_norm), result.tokens))
        if step == 20:
            calibration_start = time.time()
        if step == 120:  # plan the schedule to end within --minutes, from the measured speed
            seconds_per_step = (time.time() - calibration_start) / 100
            plan["total"] = min(plan["total"], int(o.minutes * 60 / seconds_per_step))
            plan["warmup"] = max(1, int(plan["total"] * o.warmup))
            probe_steps = {int(plan["total"] * f) // 500 * 500 for f in o.probe_at if f < 1}
            emit(planned_steps=plan["total"], seconds_per_step=round(seconds_per_step, 4))
        if step % 500 == 0 or step == plan["total"]:
            emit(
                step=step,
                generator_loss=round(sum(w[0] for w in window) / len(window), 4),
                discriminator_loss=round(sum(w[1] for w in window) / len(window), 4),
                grad_norm=round(sum(w[2] for w in window) / len(window), 3),
                tokens_per_step=round(sum(w[3] for w in window) / len(window)),
                seconds=round(time.time() - started, 1),
                **auc(),
            )
            window = []
        if step in probe_steps:
            probe(step)
    probe(step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare")
    prep.add_argument("--tokenizer", type=Path, required=True, help="an rs pretrain output folder")
    prep.add_argument("--data", type=Path, default=DATA)
    go = commands.add_parser("run")
    go.add_argument("--name", required=True)
    go.add_argument("--data", type=Path, default=DATA)
    go.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sweep")
    go.add_argument("--packing", choices=["isolated", "contaminated"], default="isolated")
    go.add_argument("--lr", type=float, default=5e-4)
    go.add_argument("--gen", type=int, default=32, help="generator width")
    go.add_argument("--hidden", type=int, default=128)
    go.add_argument("--layers", type=int, default=4)
    go.add_argument("--batch", type=int, default=32)
    go.add_argument("--steps", type=int, default=6000)
    go.add_argument("--minutes", type=float, default=5.0, help="pretraining time budget")
    go.add_argument("--warmup", type=float, default=0.05)
    go.add_argument("--disc-weight", type=float, default=50.0)
    go.add_argument("--clip", type=float, default=1.0)
    go.add_argument("--probe-at", type=float, nargs="*", default=[], help="also probe at these shares of the steps")
    go.add_argument("--probe-lr", type=float, default=3e-4)
    options = parser.parse_args()
    if options.command == "prepare":
        prepare(options.tokenizer, options.data)
    else:
        run(options)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
