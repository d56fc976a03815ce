"""Training speed: rs finetune against transformers.Trainer and rs pretrain against a plain ELECTRA loop, as
tokens/s and as a share of the fp32 peak.

    python bench/training_speed.py                      # base and mini shapes, 2,000 reviews (about 30 min)
    python bench/training_speed.py --shapes mini --reviews 500 --pretrain-sizes      # a quick look
    python bench/training_speed.py --shapes --pretrain-sizes mini small              # pretraining only
    python bench/training_speed.py --shapes --pretrain-sizes base --pretrain-variants rs-pretrain   # rs alone

Same model, same reviews (--reviews of NSMC at random, rs-normalized once, labels 1-4 negative / 9-10 positive), the
same validation split (rs finetune's: stratified 10 %, seed 42), batch 32, max length 128, one epoch, AdamW at
5e-5; each variant in its own process, one after the other:
- `transformers.Trainer` with its defaults (random batches padded to their longest review by
  DataCollatorWithPadding), what the KoELECTRA/KcBERT fine-tuning recipes and most tutorials use;
- the same with `group_by_length=True` (in transformers 5: `train_sampling_strategy="group_by_length"`);
- `rs finetune` as it is (length-grouped batches, class weights, warmup; --precision auto: bf16 on a CPU with AMX
  or AVX512-BF16).
On such a CPU also Trainer with group_by_length in bf16 (bf16=True: CPU autocast) and rs finetune in fp32.
Models: KcELECTRA-base's shape (12 x 768, vocabulary 54,343) and rs pretrain's `mini` (4 x 128), random weights,
built as the prediction benchmark builds them (bench/predict_speed.py).

Reported per variant: the training loop's seconds (the epoch alone: start-up, loading and validation excluded),
real tokens/s (the training split's tokens, [CLS]/[SEP] included, padding not), the share of the fp32 matmul peak
(tokens/s x 6 x non-embedding parameters, the forward and backward FLOPs of a token, over the peak of
bench/predict_speed.py's matmul_peak measured in the same process before and right after the epoch, the better
of the two), the process's whole
wall time and peak RSS, and the validation accuracy after the epoch (speed must not come from doing less).
Pretraining (--pretrain-sizes, rs pretrain's presets from scratch, random weights): PRETRAIN_STEPS steps of 32 x 128
tokens on the same reviews, `rs pretrain` (packed reviews, generator logits at the masked positions only) against
`_plain_electra_loop`, the loop a user writes over transformers' ElectraForMaskedLM and ElectraForPreTraining
(run_mlm.py's concatenated blocks, logits over every position), with the same models and sizes. FLOPs per token:
`pretrain_flops_per_token` (the work the method needs, not what a variant spends), over the same peak.

The machine's instruction set (AVX2 / AVX-512 / AVX-512 with AVX512-BF16 / AMX) is printed with the tables. Results:
bench/results/training_speed.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from predict_speed import (  # noqa: E402
    NSMC,
    build_checkpoint,
    instruction_set,
    matmul_peak,
    nonembedding_parameters,
    peak_rss_mb,
)

RESULTS = REPO / "bench" / "results"
WORK = RESULTS / "training_speed"
VARIANTS = ("trainer-default", "trainer-group-by-length", "rs-finetune")
# on a CPU with AMX or AVX512-BF16 rs finetune trains in bf16 by default (--precision auto): Trainer in bf16
# (bf16=True, CPU autocast) is then the fair comparison, and rs in fp32 shows what bf16 gives
BF16_VARIANTS = ("trainer-group-by-length-bf16", "rs-finetune-fp32")
PRETRAIN_VARIANTS = ("rs-pretrain", "plain-electra-loop")  # rs first: it writes the models the plain loop copies
BF16_PRETRAIN_VARIANTS = ("rs-pretrain-fp32", "plain-electra-loop-bf16")
PRETRAIN_STEPS, PRETRAIN_BATCH, PRETRAIN_LENGTH = 40, 32, 128
BATCH_SIZE, MAX_LENGTH, LEARNING_RATE, SEED = 32, 128, 5e-5, 42


def prepare_data(reviews: int) -> Path:
    """`reviews` NSMC reviews drawn at random (seed 0) among those rated 1-4 (negative) or 9-10 (positive), in
    their natural mix, rs-normalized, as review,label: what every variant reads."""
    import pandas as pd

    from review_sentiment.normalize import normalize_texts

    path = WORK / f"reviews-{reviews}.csv"
    if path.exists():
        return path
    table = pd.read_csv(NSMC, dtype=str, keep_default_na=False)
    rating = table["rating"].astype(int)
    table = table[(rating <= 4) | (rating >= 9)].sample(n=reviews * 2, random_state=0)
    table["label"] = ["negative" if int(r) <= 4 else "positive" for r in table["rating"]]
    table["review"] = normalize_texts(table["review"].tolist())
    table = table[table["review"].str.strip() != ""].head(reviews)
    WORK.mkdir(parents=True, exist_ok=True)
    table[["review", "label"]].to_csv(path, index=False)
    return path


def split_and_encode(data: Path, model: Path):
    """The labels, token ids and rs finetune's train/validation split, for the Trainer variants."""
    import pandas as pd
    from transformers import AutoTokenizer

    from review_sentiment.finetune import stratified_split

    table = pd.read_csv(data, dtype=str, keep_default_na=False)
    labels = table["label"].tolist()
    train, validation = stratified_split(labels, 0.1, SEED)
    tokenizer = AutoTokenizer.from_pretrained(model)
    encoded = tokenizer(table["review"].tolist(), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    return labels, encoded, train, validation, tokenizer


def child(variant: str, model: Path, data: Path) -> dict:
    from review_sentiment.inference import set_cpu_threads
    from review_sentiment.reporting import silence_library_logs

    silence_library_logs()
    set_cpu_threads()
    peak_before = matmul_peak()
    started = time.perf_counter()
    if variant.startswith("rs-finetune"):
        result = _rs_finetune(model, data, variant.removeprefix("rs-finetune").lstrip("-") or "auto")
    elif variant in PRETRAIN_VARIANTS + BF16_PRETRAIN_VARIANTS:
        result = _pretrain(variant, str(model), data)
    else:
        result = _trainer(model, data, group_by_length=variant != "trainer-default", bf16=variant.endswith("bf16"))
    result["wall_seconds"] = time.perf_counter() - started
    # in this process, before and right after the work, the better of the two: the machine's speed drifts
    peak_after = matmul_peak()
    result["peak"] = max(peak_before, peak_after, key=lambda peak: peak["peak"])
    result["peak"]["before"], result["peak"]["after"] = peak_before["peak"], peak_after["peak"]
    result["rss_mb"] = peak_rss_mb()
    return result


def _rs_finetune(model: Path, data: Path, precision: str) -> dict:
    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune

    arguments = FinetuneArguments(
        epochs=1,
        batch_size=BATCH_SIZE,
        max_length=MAX_LENGTH,
        learning_rate=LEARNING_RATE,
        seed=SEED,
        precision=precision,
    )
    output = WORK / "rs-model"
    result = finetune(data, str(model), arguments, output_dir=output, force=True)
    epoch = result.history[0]
    return {
        "train_seconds": epoch["train_seconds"],
        "tokens": epoch["train_tokens"],
        "validation_accuracy": epoch["accuracy"],
        "padding_share": epoch["padding_share"],
        "precision": json.loads((output / "rs_meta.json").read_text())["precision"],
    }


def _trainer(model: Path, data: Path, group_by_length: bool, bf16: bool) -> dict:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

    labels, encoded, train, validation, tokenizer = split_and_encode(data, model)
    names = sorted(set(labels))

    class Rows(torch.utils.data.Dataset):
        def __init__(self, rows):
            self.rows = rows

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, index):
            row = self.rows[index]
            return {"input_ids": encoded[row], "labels": names.index(labels[row])}

    classifier = AutoModelForSequenceClassification.from_pretrained(
        model,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        ignore_mismatched_sizes=True,  # the benchmark checkpoint has a 3-class head: a new one for 2
    )
    arguments = TrainingArguments(
        output_dir=str(WORK / "trainer"),
        per_device_train_batch_size=BATCH_SIZE,
        per_device_eval_batch_size=64,
        num_train_epochs=1,
        learning_rate=LEARNING_RATE,
        # transformers 5's name for group_by_length=True
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        save_strategy="no",
        report_to="none",
        seed=SEED,
        use_cpu=True,
        bf16=bf16,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=classifier,
        args=arguments,
        train_dataset=Rows(train),
        eval_dataset=Rows(validation),
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    metrics = trainer.train().metrics
    predictions = trainer.predict(Rows(validation))
    accuracy = float((np.argmax(predictions.predictions, axis=1) == predictions.label_ids).mean())
    return {
        "train_seconds": metrics["train_runtime"],
        "tokens": sum(len(encoded[i]) for i in train),
        "validation_accuracy": round(accuracy, 4),
        "precision": "bf16" if bf16 else "fp32",
    }


def _pretrain(variant: str, size: str, data: Path) -> dict:
    """PRETRAIN_STEPS steps of ELECTRA replaced-token detection on the reviews, from scratch at `size`."""
    from review_sentiment.config import PretrainArguments
    from review_sentiment.pretrain import pretrain

    arguments = PretrainArguments(
        size=size,
        max_steps=PRETRAIN_STEPS,
        batch_size=PRETRAIN_BATCH,
        max_length=PRETRAIN_LENGTH,
        seed=SEED,
        precision="fp32" if variant == "rs-pretrain-fp32" else "auto",
    )
    output = WORK / f"rs-pretrain-{size}"
    if variant.startswith("rs-pretrain"):
        written = WORK / f"{variant}-{size}"  # the fp32 run apart: the plain loop copies the default run's models
        result = pretrain(data, arguments, output_dir=written, force=True)
        train_seconds, tokens = result.tokens_seen / result.tokens_per_second, result.tokens_seen
        losses = [result.final["generator_loss"], result.final["discriminator_loss"]]
        precision = json.loads((written / "rs_pretrain.json").read_text())["precision"]
    else:
        bf16 = variant.endswith("bf16")
        train_seconds, tokens, losses = _plain_electra_loop(arguments, output, data, bf16)
        precision = "bf16" if bf16 else "fp32"
    flops = pretrain_flops_per_token(output, arguments.mask_prob)
    return {
        "train_seconds": train_seconds,
        "tokens": tokens,
        "losses": losses,
        "flops_per_token": flops,
        "precision": precision,
    }


def pretrain_flops_per_token(output: Path, mask_prob: float) -> float:
    """Forward + backward FLOPs of a token's matmuls in replaced-token detection: 6 x the discriminator's and
    the generator encoder's non-embedding parameters, plus the generator's output layers (vocabulary projection
    included) at the masked share of the tokens, where they run. Attention's score matmuls are not counted."""
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    discriminator = ElectraForPreTraining.from_pretrained(output)
    generator = ElectraForMaskedLM.from_pretrained(output / "generator")
    per_token = sum(p.numel() for n, p in discriminator.named_parameters() if "embeddings" not in n)
    head = generator.config.vocab_size * generator.config.embedding_size
    for name, parameter in generator.named_parameters():
        if "embeddings" in name or name.endswith("generator_lm_head.weight"):
            continue
        in_head = name.startswith(("generator_predictions", "generator_lm_head"))
        per_token += parameter.numel() * (mask_prob if in_head else 1)
    return 6 * (per_token + head * mask_prob)


def _plain_electra_loop(arguments, output: Path, data: Path, bf16: bool) -> tuple[float, int, list[float]]:
    """The loop a user writes over transformers' ELECTRA classes: the reviews concatenated and cut into
    max-length blocks (run_mlm.py's group_texts), 15 % masked, the generator's logits over every position (what
    ElectraForMaskedLM computes), replacements sampled at the masked positions, loss MLM + 50 x RTD, torch's
    AdamW; `bf16`: the forward passes under CPU autocast. Same models, sizes and batch as rs pretrain's (rs
    pretrain has just written them to `output`)."""
    import pandas as pd
    import torch
    from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(output)
    discriminator = ElectraForPreTraining(ElectraForPreTraining.config_class.from_pretrained(output))
    generator = ElectraForMaskedLM(ElectraForMaskedLM.config_class.from_pretrained(output / "generator"))
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
    texts = pd.read_csv(data, dtype=str, keep_default_na=False)["review"].tolist()  # already rs-normalized
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    stream = [token for ids in encoded for token in [*ids, tokenizer.sep_token_id]]
    block = arguments.max_length
    blocks = torch.tensor(stream[: len(stream) // block * block]).view(-1, block)
    blocks = blocks[torch.randperm(len(blocks))]
    parameters = list({id(p): p for m in (generator, discriminator) for p in m.parameters()}.values())
    optimizer = torch.optim.AdamW(parameters, lr=arguments.model_size.learning_rate, weight_decay=0.01)
    generator.train()
    discriminator.train()
    seconds, tokens, losses = 0.0, 0, []
    for step in range(PRETRAIN_STEPS):
        started = time.perf_counter()
        ids = blocks[(step * PRETRAIN_BATCH) % len(blocks) :][:PRETRAIN_BATCH]
        masked = torch.rand(ids.shape) < arguments.mask_prob
        generator_input = ids.masked_fill(masked, tokenizer.mask_token_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = generator(input_ids=generator_input).logits.float()
        mlm = torch.nn.functional.cross_entropy(logits[masked], ids[masked])
        with torch.no_grad():
            sampled = torch.distributions.Categorical(logits=logits[masked]).sample()
        corrupted = ids.clone()
        corrupted[masked] = sampled
        replaced = (corrupted != ids).float()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            rtd_logits = discriminator(input_ids=corrupted).logits.float()
        rtd = torch.nn.functional.binary_cross_entropy_with_logits(rtd_logits, replaced)
        loss = mlm + arguments.disc_weight * rtd
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        seconds += time.perf_counter() - started
        tokens += ids.numel()
        losses.append([mlm.item(), rtd.item()])
    return seconds, tokens, [round(sum(step[i] for step in losses[-10:]) / 10, 4) for i in range(2)]


def in_child(variant: str, model: Path, data: Path) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--model", str(model), "--data", str(data)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--shapes", nargs="*", default=["base", "mini"], choices=["base", "mini"])
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=(*VARIANTS, *BF16_VARIANTS, "rs-finetune-bf16"),
        help="[default: the first three, and the bf16 comparisons on a CPU with AMX or AVX512-BF16]",
    )
    parser.add_argument("--pretrain-sizes", nargs="*", default=["mini", "small"], choices=["mini", "small", "base"])
    parser.add_argument(
        "--pretrain-variants",
        nargs="+",
        choices=(*PRETRAIN_VARIANTS, *BF16_PRETRAIN_VARIANTS),
        help="[default: rs pretrain and the plain loop, and the bf16 comparisons on a CPU with AMX or AVX512-BF16]",
    )
    parser.add_argument("--child")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--data", type=Path)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.model, options.data)))
        return

    from review_sentiment.training import has_fast_cpu_bf16

    variants = options.variants or [*VARIANTS, *(BF16_VARIANTS if has_fast_cpu_bf16() else ())]
    pretrain_variants = options.pretrain_variants or [
        *PRETRAIN_VARIANTS,
        *(BF16_PRETRAIN_VARIANTS if has_fast_cpu_bf16() else ()),
    ]
    data = prepare_data(options.reviews)
    rows = []
    for shape in options.shapes:
        model = build_checkpoint(shape)
        flops_per_token = 6 * nonembedding_parameters(model)
        for variant in variants:
            result = in_child(variant, model, data)
            tokens_per_second = result["tokens"] / result["train_seconds"]
            result.update(
                shape=shape,
                variant=variant,
                tokens_per_second=round(tokens_per_second, 1),
                gflops=round(tokens_per_second * flops_per_token / 1e9, 1),
                share_of_peak=round(tokens_per_second * flops_per_token / 1e9 / result["peak"]["peak"], 3),
                gflop_per_token=round(flops_per_token / 1e9, 4),
            )
            rows.append(result)
            print(json.dumps(result), flush=True)
    pretrain_rows = []
    for size in options.pretrain_sizes:
        for variant in pretrain_variants:
            result = in_child(variant, Path(size), data)
            tokens_per_second = result["tokens"] / result["train_seconds"]
            gflops = tokens_per_second * result["flops_per_token"] / 1e9
            result.update(
                size=size,
                variant=variant,
                tokens_per_second=round(tokens_per_second, 1),
                gflops=round(gflops, 1),
                share_of_peak=round(gflops / result["peak"]["peak"], 3),
            )
            pretrain_rows.append(result)
            print(json.dumps(result), flush=True)
    isa = instruction_set()
    results = {"instruction_set": isa, "rows": rows, "pretrain_rows": pretrain_rows}
    (RESULTS / "training_speed.json").write_text(json.dumps(results, indent=2))
    print(f"\n{options.reviews:,} reviews, 1 epoch, batch {BATCH_SIZE}, max length {MAX_LENGTH}; CPU with {isa}")
    print(
        "| model | variant | precision | epoch | tokens/s | GFLOP/s | % of fp32 peak (peak) | process wall | peak RSS "
        "| validation accuracy |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['shape']} | {row['variant']} | {row['precision']} | {row['train_seconds']:.1f} s "
            f"| {row['tokens_per_second']:,.0f} "
            f"| {row['gflops']:.1f} | {row['share_of_peak']:.0%} ({row['peak']['peak']:.0f}) "
            f"| {row['wall_seconds']:.0f} s | {row['rss_mb']:,.0f} MB | {row['validation_accuracy']:.3f} |"
        )

    if pretrain_rows:
        steps = f"{PRETRAIN_STEPS} steps of {PRETRAIN_BATCH} x {PRETRAIN_LENGTH} tokens from scratch"
        print(f"\nrs pretrain: {steps}; CPU with {isa}")
        print(
            "| size | variant | precision | tokens/s | GFLOP/s | % of fp32 peak (peak) | peak RSS "
            "| generator / discriminator loss (last 10 steps) |"
        )
        print("|---|---|---|---:|---:|---:|---:|---:|")
    for row in pretrain_rows:
        print(
            f"| {row['size']} | {row['variant']} | {row['precision']} | {row['tokens_per_second']:,.0f} "
            f"| {row['gflops']:.1f} "
            f"| {row['share_of_peak']:.0%} ({row['peak']['peak']:.0f}) | {row['rss_mb']:,.0f} MB "
            f"| {row['losses'][0]:.3f} / {row['losses'][1]:.3f} |"
        )


if __name__ == "__main__":
    main()
