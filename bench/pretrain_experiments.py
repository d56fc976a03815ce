"""Why does `rs pretrain` learn so little context? Four experiments that decide (issue 13).

`prepare` tokenizes the benchmark's pretraining corpus once (NSMC without the held-out movies of
bench/pretrain_vs_random.py, cleaned by steps 1-6 of the recipe, a WordPiece vocabulary trained on it) and keeps
600 reviews of the held-out movies for measuring. Each `run --arm` then trains for a time budget and logs, every
--every tokens, a held-out measure, as JSON lines in bench/results/experiments/ARM.jsonl:

1. `disc-packed`, `disc-unpacked`: the discriminator alone on uniformly random replacements (no generator),
   rs's packed sequences with the 4-D block mask vs reviews padded per batch with a plain 2-D mask; measure: ROC
   AUC on uniform replacements of held-out reviews.
2. `gen-rs`, `gen-minimal`, `rtd`: the generator as a plain masked LM through rs's code (`PackedBatch`,
   `choose_mask_positions`, `masked_lm_logits`, its embeddings shared with an idle discriminator) vs a minimal
   loop over transformers' `ElectraForMaskedLM` (own embeddings, reviews padded per batch,
   `DataCollatorForLanguageModeling`'s 80/10/10 masking, the model's own loss) vs the generator inside full RTD
   (`rtd_step`, loss = MLM + 50 x discriminator, clipping at 1.0). Measure: masked cross-entropy of held-out
   reviews, each alone, at fixed positions (all [MASK]); `rtd` also logs the discriminator's AUC on its
   generator's replacements.
3. `rtd` logs the gradient shares: the norms of the generator's, the discriminator's and the shared embeddings'
   gradients from the MLM loss and from 50 x the discriminator loss, the total norm and the clipping factor.
4. `context --model FOLDER` (a model `rtd --save` wrote): changes one token of a review and reports how much the
   discriminator's logits move at the review's other positions and at another review packed beside it.

    python bench/pretrain_experiments.py prepare
    python bench/pretrain_experiments.py run --arm gen-rs --minutes 6 --threads 1
    python bench/pretrain_experiments.py run --arm rtd --minutes 6 --save bench/results/experiments/rtd-model
    python bench/pretrain_experiments.py context --model bench/results/experiments/rtd-model
    python bench/pretrain_experiments.py table   # the markdown table of the logged curves
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import random
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "results" / "experiments"
ARMS = ("disc-packed", "disc-unpacked", "gen-rs", "gen-minimal", "rtd")


def data_files(vocab_size: int) -> tuple[Path, Path]:
    """The tokenized corpus and the tokenizer `prepare` made for this vocabulary size."""
    return OUT / f"data-{vocab_size}.pt", OUT / f"tokenizer-{vocab_size}"


def prepare(vocab_size: int) -> None:
    import pandas as pd
    from pretrain_vs_random import NSMC, split_by_movie
    from transformers import ElectraTokenizer

    from review_sentiment.normalize import clean_text
    from review_sentiment.vocab import train_wordpiece_vocab

    OUT.mkdir(parents=True, exist_ok=True)
    reviews = pd.read_csv(NSMC, dtype=str, keep_default_na=False)
    development, test_movies = split_by_movie(reviews, 0.10, 0)
    corpus = [t for t in (clean_text(text) for text in development["review"]) if t]
    random.Random(0).shuffle(corpus)
    vocab = train_wordpiece_vocab(corpus[:200_000], vocab_size)
    tokenizer = ElectraTokenizer(vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=128)
    data_path, tokenizer_path = data_files(vocab_size)
    tokenizer.save_pretrained(tokenizer_path)
    held_out = [t for t in (clean_text(text) for text in test_movies["review"].sample(n=800, random_state=0)) if t]
    tokens = tokenizer(corpus, add_special_tokens=False)["input_ids"]
    held = tokenizer(held_out[:600], add_special_tokens=False)["input_ids"]
    torch.save({"train": tokens, "held_out": held}, data_path)
    unigram = torch.bincount(torch.tensor([t for r in tokens for t in r]), minlength=len(tokenizer)).float() + 1
    held_ids = torch.tensor([t for r in held for t in r])
    ce = float(-(unigram / unigram.sum()).log()[held_ids].mean())
    print(
        f"{len(tokens):,} reviews, {sum(map(len, tokens)):,} tokens; vocabulary {len(tokenizer)}; "
        f"held-out unigram CE {ce:.2f}"
    )


# ------------------------------------------------------------------------------------------- measures


def held_out_batches(held, tokenizer, size=100):
    """Held-out reviews, each alone with [CLS]/[SEP], padded per batch with a 2-D mask."""
    from review_sentiment.inference import pad_batch

    for start in range(0, len(held), size):
        rows = [[tokenizer.cls_token_id, *r[:126], tokenizer.sep_token_id] for r in held[start : start + size]]
        ids, mask = pad_batch(rows, tokenizer.pad_token_id)
        yield ids, mask


def fixed_positions(ids, mask, tokenizer, seed):
    from review_sentiment.pretrain import choose_mask_positions

    candidates = mask.bool() & ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    return choose_mask_positions(candidates, 0.15, torch.Generator().manual_seed(seed))


@torch.no_grad()
def masked_ce(generator, held, tokenizer) -> float:
    """Cross-entropy at 15 % fixed positions of held-out reviews, all shown as [MASK]."""
    was = generator.training
    generator.eval()
    loss_sum, masked = 0.0, 0
    for n, (ids, mask) in enumerate(held_out_batches(held, tokenizer)):
        positions = fixed_positions(ids, mask, tokenizer, n)
        logits = generator(input_ids=ids.masked_fill(positions, tokenizer.mask_token_id), attention_mask=mask).logits
        loss_sum += float(F.cross_entropy(logits[positions].float(), ids[positions], reduction="sum"))
        masked += int(positions.sum())
    generator.train(was)
    return round(loss_sum / masked, 4)


@torch.no_grad()
def discriminator_auc(discriminator, held, tokenizer, generator=None) -> float:
    """ROC AUC of the discriminator's logits on held-out reviews with 15 % of the tokens replaced: uniformly at
    random, or by samples of `generator` (a sample equal to the original counts as original). The logs of the
    runs in the README scored [CLS]/[SEP] too (never replaced), which raised their AUCs a little."""
    from sklearn.metrics import roc_auc_score

    discriminator.eval()
    scores, labels = [], []
    for n, (ids, mask) in enumerate(held_out_batches(held, tokenizer)):
        positions = fixed_positions(ids, mask, tokenizer, n)
        rng = torch.Generator().manual_seed(1000 + n)
        if generator is None:
            replacement = torch.randint(5, len(tokenizer), (int(positions.sum()),), generator=rng)
        else:
            generator.eval()
            logits = generator(
                input_ids=ids.masked_fill(positions, tokenizer.mask_token_id), attention_mask=mask
            ).logits
            replacement = torch.multinomial(torch.softmax(logits[positions].float(), -1), 1, generator=rng).squeeze(-1)
            generator.train()
        corrupted = ids.clone()
        corrupted[positions] = replacement
        # all tokens but [CLS]/[SEP]/[PAD]: those are never replaced and would raise the AUC for free
        scored = mask.bool() & ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
        scores.append(discriminator(input_ids=corrupted, attention_mask=mask).logits[scored])
        labels.append((corrupted != ids)[scored])
    discriminator.train()
    return round(float(roc_auc_score(torch.cat(labels).numpy(), torch.cat(scores).float().numpy())), 4)


# -------------------------------------------------------------------------------------------- training


def packed_batches(train, tokenizer, batch_size, seed):
    from review_sentiment.pretrain import PackedBatch, pack_sequences

    sequences = pack_sequences(train, 128, tokenizer.cls_token_id, tokenizer.sep_token_id)
    order = torch.randperm(len(sequences), generator=torch.Generator().manual_seed(seed)).tolist()
    for start in range(0, len(order) - batch_size, batch_size):
        yield PackedBatch.from_sequences(
            [sequences[i] for i in order[start : start + batch_size]], tokenizer.pad_token_id, tokenizer.cls_token_id
        )


def unpacked_batches(train, tokenizer, tokens_per_batch, seed):
    """Reviews each alone, padded to the longest of the batch, about as many real tokens per batch as a packed
    batch holds. Reviews of similar length are batched together (sorted within windows of shuffled reviews, the
    batches shuffled again), so padding does not make this arm too slow to compare at equal tokens."""
    from review_sentiment.inference import pad_batch

    order = list(range(len(train)))
    shuffler = random.Random(seed)
    shuffler.shuffle(order)
    window = 100 * tokens_per_batch // 20
    for start in range(0, len(order), window):
        rows = sorted(
            ([tokenizer.cls_token_id, *train[i][:126], tokenizer.sep_token_id] for i in order[start : start + window]),
            key=len,
        )
        batches, current, count = [], [], 0
        for row in rows:
            current.append(row)
            count += len(row)
            if count >= tokens_per_batch:
                batches.append(current)
                current, count = [], 0
        shuffler.shuffle(batches)
        for rows_of_batch in batches:
            ids, mask = pad_batch(rows_of_batch, tokenizer.pad_token_id)
            yield types.SimpleNamespace(input_ids=ids, real=mask.bool(), attention_mask=mask)


def electra_pair(tokenizer, generator_width):
    from review_sentiment.config import PretrainArguments
    from review_sentiment.pretrain import new_electra_pair

    args = PretrainArguments(size="mini")
    size = args.model_size
    if generator_width:
        size = dataclasses.replace(size, generator_hidden_size=generator_width)
        args = types.SimpleNamespace(model_size=size, max_length=128)
    return new_electra_pair(tokenizer, args)


def gradient_shares(generator, discriminator, generator_loss, weighted_discriminator_loss) -> dict:
    """Norms of each loss's gradient on the generator's own, the discriminator's own and the shared parameters."""
    shared = {id(p) for p in discriminator.electra.embeddings.parameters()}
    groups = {
        "generator": [p for p in generator.parameters() if id(p) not in shared],
        "discriminator": [p for p in discriminator.parameters() if id(p) not in shared],
        "shared_embeddings": list(discriminator.electra.embeddings.parameters()),
    }
    everything = [p for ps in groups.values() for p in ps]
    shares = {}
    for loss_name, loss in (("mlm", generator_loss), ("disc_x50", weighted_discriminator_loss)):
        grads = torch.autograd.grad(loss, everything, retain_graph=True, allow_unused=True)
        by_id = {id(p): g for p, g in zip(everything, grads, strict=True)}
        for group, params in groups.items():
            norm = math.sqrt(sum(float(by_id[id(p)].pow(2).sum()) for p in params if by_id[id(p)] is not None))
            shares[f"{loss_name}_{group}"] = round(norm, 4)
    return shares


def run(options) -> None:
    from transformers import DataCollatorForLanguageModeling, ElectraTokenizer

    from review_sentiment.pretrain import (
        choose_mask_positions,
        masked_lm_logits,
        rtd_losses,
        rtd_optimizer,
    )

    torch.manual_seed(options.seed)
    torch.set_num_threads(options.threads)
    data_path, tokenizer_path = data_files(options.vocab_size)
    data = torch.load(data_path)
    tokenizer = ElectraTokenizer.from_pretrained(tokenizer_path)
    train, held = data["train"], data["held_out"]
    special_ids = torch.tensor(tokenizer.all_special_ids)
    rng = torch.Generator().manual_seed(options.seed)
    generator, discriminator = electra_pair(tokenizer, options.generator_width)
    for model in (generator, discriminator):
        model.set_attn_implementation("eager")
        if options.dropout is not None:  # ELECTRA's 0.1 by default; Cramming (Geiping 2022) trains without
            for module in model.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = options.dropout
    arm = options.arm
    if arm == "gen-minimal":
        from transformers import ElectraForMaskedLM

        generator = ElectraForMaskedLM(generator.config)  # its own embeddings, output layer tied to them
        generator.set_attn_implementation("eager")
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    if arm in ("disc-packed", "disc-unpacked"):
        trained = [discriminator]
    elif arm in ("gen-rs", "gen-minimal"):
        trained = [generator]
    else:
        trained = [generator, discriminator]
    if arm == "gen-minimal":
        optimizer = torch.optim.AdamW(generator.parameters(), lr=options.lr, eps=1e-6, weight_decay=0.01)
        parameters = list(generator.parameters())
    else:
        optimizer, parameters = rtd_optimizer(
            generator if generator in trained else torch.nn.Module(),
            discriminator if discriminator in trained else torch.nn.Module(),
            options.lr,
            0.01,
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / options.warmup))
    unpacked = arm in ("disc-unpacked", "gen-minimal")
    batches = (
        unpacked_batches(train, tokenizer, int(options.batch_size * 128 * 0.92), options.seed)
        if unpacked
        else packed_batches(train, tokenizer, options.batch_size, options.seed)
    )
    args = types.SimpleNamespace(
        mask_prob=0.15,
        disc_weight=50.0,
        uniform_replacements=options.uniform_replacements,
        sampling_temperature=options.sampling_temperature,
    )
    log = (OUT / f"{options.name or arm}.jsonl").open("w")

    def measure(step, tokens, seconds, extra):
        row = {"arm": arm, "step": step, "tokens": tokens, "seconds": round(seconds, 1), **extra}
        if generator in trained:
            row["held_out_masked_ce"] = masked_ce(generator, held, tokenizer)
        if discriminator in trained:
            row["auc_uniform"] = discriminator_auc(discriminator, held, tokenizer)
            if arm == "rtd":
                row["auc_generator"] = discriminator_auc(discriminator, held, tokenizer, generator)
        print(json.dumps(row), flush=True)
        log.write(json.dumps(row) + "\n")
        log.flush()

    for model in trained:
        model.train()
    started = time.perf_counter()
    train_seconds, tokens, step, next_log = 0.0, 0, 0, 0
    extra = {}
    for batch in batches:
        if tokens >= next_log:
            measure(step, tokens, train_seconds, extra)
            next_log += options.every
        if train_seconds > options.minutes * 60:
            break
        step_started = time.perf_counter()
        ids, real = batch.input_ids, batch.real
        if arm in ("disc-packed", "disc-unpacked"):
            positions = choose_mask_positions(real & ~torch.isin(ids, special_ids), 0.15, rng)
            corrupted = ids.clone()
            corrupted[positions] = torch.randint(5, len(tokenizer), (int(positions.sum()),), generator=rng)
            inputs = (
                {"input_ids": corrupted, "attention_mask": batch.attention_mask}
                if unpacked
                else batch.model_inputs(corrupted)
            )
            logits = discriminator(**inputs).logits.float()
            loss = F.binary_cross_entropy_with_logits(logits[real], (corrupted != ids)[real].float())
        elif arm == "gen-rs":
            positions = choose_mask_positions(real & ~torch.isin(ids, special_ids), 0.15, rng)
            loss = F.cross_entropy(
                masked_lm_logits(generator, batch, positions, tokenizer.mask_token_id, rng), ids[positions]
            )
        elif arm == "gen-minimal":
            masked_ids, labels = collator.torch_mask_tokens(ids.clone())
            labels = labels.masked_fill(~real, -100)
            loss = generator(input_ids=masked_ids, attention_mask=batch.attention_mask, labels=labels).loss
        else:
            generator_loss, discriminator_loss, result = rtd_losses(
                generator, discriminator, batch, special_ids, tokenizer.mask_token_id, args, rng
            )
            loss = generator_loss + args.disc_weight * discriminator_loss
            if step % options.gradient_every == 0:
                extra = {"generator_loss": result.generator_loss, "discriminator_loss": result.discriminator_loss}
                extra.update(
                    gradient_shares(generator, discriminator, generator_loss, args.disc_weight * discriminator_loss)
                )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        total = float(torch.nn.utils.clip_grad_norm_(parameters, 1.0 if options.clip else float("inf")))
        if arm == "rtd" and step % options.gradient_every == 0:
            extra.update(total_norm=round(total, 3), clip_factor=round(min(1.0, 1.0 / (total + 1e-6)), 4))
        optimizer.step()
        scheduler.step()
        step += 1
        tokens += int(real.sum())
        train_seconds += time.perf_counter() - step_started
    measure(step, tokens, train_seconds, extra)
    print(
        f"{arm}: {step} steps, {tokens:,} tokens, {tokens / train_seconds:.0f} tokens/s, "
        f"wall {time.perf_counter() - started:.0f} s"
    )
    if options.save:
        options.save.mkdir(parents=True, exist_ok=True)
        discriminator.save_pretrained(options.save)
        tokenizer.save_pretrained(options.save)
        generator.save_pretrained(options.save / "generator")


@torch.no_grad()
def context(folder: Path) -> None:
    """How far the discriminator's logits move when one token of a review changes: at the review's other positions
    (they must move: that is context), at a review packed beside it (they must not), and, for comparison, the same
    model with the pair attending to each other (the packing before `PackedBatch`)."""
    from transformers import ElectraForPreTraining, ElectraTokenizer

    from review_sentiment.pretrain import PackedBatch

    tokenizer = ElectraTokenizer.from_pretrained(folder)
    held = [r for r in torch.load(data_files(len(tokenizer))[0])["held_out"] if 6 <= len(r) <= 40]
    rng = random.Random(0)
    models = {"trained": ElectraForPreTraining.from_pretrained(folder).eval()}
    torch.manual_seed(0)
    models["random init"] = ElectraForPreTraining(models["trained"].config).eval()
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    for name, model in models.items():
        model.set_attn_implementation("eager")
        moved = {"same review": [], "packed neighbour": [], "neighbour, no block mask": []}
        for a, b in zip(held[0:200:2], held[1:200:2], strict=True):
            sequence = [cls, *a, sep, cls, *b, sep]
            j = 1 + len(a) // 2
            changed = list(sequence)
            changed[j] = rng.randrange(5, len(tokenizer))
            batch = PackedBatch.from_sequences([sequence, changed], tokenizer.pad_token_id, cls)
            logits = model(**batch.model_inputs(batch.input_ids)).logits
            delta = (logits[1] - logits[0]).abs()
            others = [i for i in range(1, len(a) + 1) if i != j]
            moved["same review"].append(float(delta[others].mean()))
            moved["packed neighbour"].append(float(delta[len(a) + 2 :].abs().max()))
            plain = model(input_ids=batch.input_ids, attention_mask=batch.real.long()).logits
            moved["neighbour, no block mask"].append(float((plain[1] - plain[0])[len(a) + 2 :].abs().mean()))
        spread = float(logits[0].std())
        row = {key: round(sum(v) / len(v), 5) for key, v in moved.items()}
        print(json.dumps({"model": name, "mean |change| of logits": row, "logit std": round(spread, 3)}), flush=True)


def probe(
    folder: Path,
    train_size: int,
    test_size: int,
    variants: list[str],
    seeds: list[int],
    learning_rate: float,
    epochs: int = 1,
) -> None:
    """Fine-tune variants of a pretrained discriminator exactly alike (rs finetune, `epochs` with the best kept by
    validation) on balanced binary reviews of the development movies and score them on held-out movies:
    `pretrained`, `random` (same architecture and vocabulary, fresh weights), `embeddings` (the pretrained
    embeddings, fresh encoder layers), `reinit-top` (the last encoder layer fresh), `reinit-qk` (every layer's
    queries and keys fresh), `head-first` (the classifier head trained on the frozen encoder first;
    `random-head-first` the same from fresh weights). Each seed sets both the fresh weights and the fine-tuning
    order, as the benchmark's controls do. Also prints how alike the final hidden states of different tokens are
    (mean cosine; 1.0 = collapsed) and the RMS of the encoder's weights and final hidden states (scale growth)."""
    import pandas as pd
    from pretrain_vs_random import NSMC, balanced_sample, binary_labels, evaluate, split_by_movie
    from transformers import ElectraForPreTraining, ElectraTokenizer

    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune

    reviews = pd.read_csv(NSMC, dtype=str, keep_default_na=False)
    development, test_movies = split_by_movie(reviews, 0.10, 0)
    train_path = OUT / f"probe_train_{train_size}.csv"
    # Written aside and renamed: a probe running beside this one may be reading the same file.
    partial = train_path.with_suffix(f".{os.getpid()}.partial")
    balanced_sample(binary_labels(development), train_size, 0)[["review", "label"]].to_csv(partial, index=False)
    os.replace(partial, train_path)
    test = binary_labels(test_movies).sample(n=test_size, random_state=0)
    tokenizer = ElectraTokenizer.from_pretrained(folder)
    held = tokenizer([t for t in test["review"].iloc[:300] if t.strip()], add_special_tokens=False)["input_ids"]
    for variant, seed in itertools.product(variants, seeds):
        torch.manual_seed(seed)
        model = ElectraForPreTraining.from_pretrained(folder)
        fresh = ElectraForPreTraining(model.config)
        if variant in ("random", "random-head-first"):
            model = fresh
        elif variant == "embeddings":
            model.electra.encoder.load_state_dict(fresh.electra.encoder.state_dict())
            model.discriminator_predictions.load_state_dict(fresh.discriminator_predictions.state_dict())
        elif variant == "reinit-top":  # the last layer fresh: is what hurts in the layers nearest the RTD head?
            model.electra.encoder.layer[-1].load_state_dict(fresh.electra.encoder.layer[-1].state_dict())
        elif variant == "reinit-qk":  # fresh queries and keys: attention as uniform as at random init, rest kept
            for layer, new in zip(model.electra.encoder.layer, fresh.electra.encoder.layer, strict=True):
                layer.attention.self.query.load_state_dict(new.attention.self.query.state_dict())
                layer.attention.self.key.load_state_dict(new.attention.self.key.state_dict())
        # Seed and rate in the names: probes of one model may run side by side.
        name = f"{folder.name}-{variant}-seed{seed}-lr{learning_rate:g}-n{train_size}-e{epochs}"
        base = OUT / f"probe-base-{name}"
        if variant.endswith("head-first"):
            # Linear probing, then fine-tuning (LP-FT, Kumar et al. 2022): fine-tuning with a random head first
            # pulls the encoder towards wherever that head points and can distort what pretraining learned; a
            # head trained on the frozen encoder first leaves the full fine-tune less to undo.
            head_first(model, pd.read_csv(train_path), tokenizer, seed).save_pretrained(base)
        else:
            model.save_pretrained(base)
        tokenizer.save_pretrained(base)
        collapse = token_state_cosine(model, held, tokenizer)
        scales = encoder_scales(model, held, tokenizer)
        args = FinetuneArguments(epochs=epochs, learning_rate=learning_rate, validation_fraction=0.05, seed=seed)
        result = finetune(train_path, str(base), args, output_dir=OUT / f"probe-{name}", force=True)
        row = {
            "model": folder.name,
            "variant": variant,
            "seed": seed,
            "learning_rate": learning_rate,
            "train_size": train_size,
            "epochs": epochs,
            "best_epoch": result.best_epoch,
            "token_cosine": collapse,
            **scales,
            **evaluate(result.output_dir, test)[0],
        }
        print(json.dumps(row), flush=True)
        with (OUT / "probes.jsonl").open("a") as log:
            log.write(json.dumps(row) + "\n")


@torch.no_grad()
def linear(folder: Path, train_size: int, test_size: int, variants: list[str], seeds: list[int]) -> None:
    """Frozen features, no fine-tuning: a logistic regression on the final hidden states of the probe's training
    reviews (their mean over the review's tokens, and the [CLS] state alone), scored on the held-out movies. It
    tells what an encoder knows apart from how well fine-tuning can change it."""
    import numpy as np
    import pandas as pd
    from pretrain_vs_random import NSMC, balanced_sample, binary_labels, split_by_movie
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from transformers import ElectraForPreTraining, ElectraTokenizer

    from review_sentiment.normalize import normalize_texts

    reviews = pd.read_csv(NSMC, dtype=str, keep_default_na=False)
    development, test_movies = split_by_movie(reviews, 0.10, 0)
    train = balanced_sample(binary_labels(development), train_size, 0)
    test = binary_labels(test_movies).sample(n=test_size, random_state=0)
    tokenizer = ElectraTokenizer.from_pretrained(folder)
    encoded = {
        name: tokenizer(normalize_texts(frame["review"].tolist()), add_special_tokens=False)["input_ids"]
        for name, frame in (("train", train), ("test", test))
    }
    gold = {"train": train["label"].eq("positive").to_numpy(), "test": test["label"].eq("positive").to_numpy()}
    for variant, seed in itertools.product(variants, seeds):
        torch.manual_seed(seed)
        model = ElectraForPreTraining.from_pretrained(folder)
        if variant == "random":
            model = ElectraForPreTraining(model.config)
        model.eval()
        features = {}
        for name, rows in encoded.items():
            order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # similar lengths batch with little padding
            pooled = np.zeros((len(rows), 2 * model.config.hidden_size), dtype=np.float32)
            for start in range(0, len(order), 200):
                chosen = order[start : start + 200]
                ids, mask = next(held_out_batches([rows[i] for i in chosen], tokenizer, size=200))
                hidden = model.electra(input_ids=ids, attention_mask=mask).last_hidden_state
                mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                pooled[chosen] = torch.cat([mean, hidden[:, 0]], dim=1).numpy()
            features[name] = pooled
        row = {"model": folder.name, "variant": variant, "seed": seed, "train_size": train_size}
        width = model.config.hidden_size
        for pooling, columns in (("mean", slice(0, width)), ("cls", slice(width, 2 * width))):
            classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
            classifier.fit(features["train"][:, columns], gold["train"])
            score = classifier.predict_proba(features["test"][:, columns])[:, 1]
            row[f"{pooling}_accuracy"] = round(accuracy_score(gold["test"], score > 0.5), 4)
            row[f"{pooling}_roc_auc"] = round(roc_auc_score(gold["test"], score), 4)
        print(json.dumps(row), flush=True)
        with (OUT / "linear.jsonl").open("a") as log:
            log.write(json.dumps(row) + "\n")


@torch.no_grad()
def attention(folders: list[Path]) -> None:
    """How sharp each layer's attention is on 600 reviews of the held-out movies (mean entropy of a query's
    attention over its review, divided by log(review length): 1.0 = uniform, as in random weights), and the RMS
    of the query and key weights; the first folder's architecture is also shown with fresh weights."""
    import pandas as pd
    from pretrain_vs_random import NSMC, binary_labels, split_by_movie
    from transformers import ElectraForPreTraining, ElectraTokenizer

    reviews = pd.read_csv(NSMC, dtype=str, keep_default_na=False)
    _, test_movies = split_by_movie(reviews, 0.10, 0)
    texts = [t for t in binary_labels(test_movies).sample(n=600, random_state=1)["review"] if t.strip()]
    for name, folder in [("random weights", folders[0]), *((f.name, f) for f in folders)]:
        tokenizer = ElectraTokenizer.from_pretrained(folder)
        torch.manual_seed(0)
        model = ElectraForPreTraining.from_pretrained(folder)
        if name == "random weights":
            model = ElectraForPreTraining(model.config)
        model.set_attn_implementation("eager")
        model.eval()
        held = tokenizer(texts, add_special_tokens=False)["input_ids"]
        entropies: list[list[float]] = [[] for _ in range(model.config.num_hidden_layers)]
        for ids, mask in held_out_batches(held, tokenizer):
            output = model.electra(input_ids=ids, attention_mask=mask, output_attentions=True)
            uniform = mask.sum(1).float().log()[:, None, None]
            queries = mask.bool()[:, None, :]
            for layer, weights in enumerate(output.attentions):  # batch, heads, query, key
                entropy = -(weights.clamp_min(1e-12).log() * weights).sum(-1) / uniform
                entropies[layer].append(float(entropy[queries.expand_as(entropy)].mean()))
        query_key = [
            p for n, p in model.electra.encoder.named_parameters() if n.endswith(("query.weight", "key.weight"))
        ]
        row = {
            "model": name,
            "attention_entropy_per_layer": [round(sum(e) / len(e), 3) for e in entropies],
            "query_key_rms": round(float(torch.cat([w.flatten() for w in query_key]).pow(2).mean().sqrt()), 4),
        }
        print(json.dumps(row), flush=True)


def head_first(pretrained, train, tokenizer, seed: int, epochs: int = 3):
    """The pretrained discriminator as a sequence classifier whose head has been trained on its frozen [CLS]
    states (the head rs finetune would otherwise start at random), labels in rs's order."""
    from transformers import ElectraForSequenceClassification

    from review_sentiment.inference import pad_batch
    from review_sentiment.normalize import normalize_texts

    torch.manual_seed(seed)
    labels = sorted(train["label"].unique())
    model = ElectraForSequenceClassification(
        pretrained.config.__class__(
            **{**pretrained.config.to_dict(), "num_labels": len(labels)},
        )
    )
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.electra.load_state_dict(pretrained.electra.state_dict())
    rows = tokenizer(normalize_texts(train["review"].tolist()), truncation=True, max_length=128)["input_ids"]
    targets = torch.tensor(train["label"].map(model.config.label2id).to_numpy())
    model.eval()
    states = []
    with torch.no_grad():
        for start in range(0, len(rows), 200):
            ids, mask = pad_batch(rows[start : start + 200], tokenizer.pad_token_id)
            states.append(model.electra(input_ids=ids, attention_mask=mask).last_hidden_state[:, :1])
    states = torch.cat(states)
    head = model.classifier
    head.train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(epochs):
        for batch in torch.randperm(len(states)).split(32):
            loss = F.cross_entropy(head(states[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@torch.no_grad()
def encoder_scales(model, held, tokenizer) -> dict[str, float]:
    """RMS of the encoder layers' weight matrices and of the final hidden states of real tokens."""
    weights = [p for n, p in model.electra.encoder.named_parameters() if n.endswith("weight") and p.dim() == 2]
    weight_rms = torch.cat([w.flatten() for w in weights]).pow(2).mean().sqrt()
    model.eval()
    states = []
    for ids, mask in held_out_batches(held, tokenizer):
        states.append(model.electra(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()])
    hidden_rms = torch.cat(states).pow(2).mean().sqrt()
    return {"weight_rms": round(float(weight_rms), 4), "hidden_rms": round(float(hidden_rms), 4)}


@torch.no_grad()
def token_state_cosine(model, held, tokenizer) -> float:
    """Mean cosine similarity between the final hidden states of different real tokens of held-out reviews."""
    model.eval()
    states = []
    for ids, mask in held_out_batches(held, tokenizer):
        hidden = model.electra(input_ids=ids, attention_mask=mask).last_hidden_state
        states.append(hidden[mask.bool() & ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))])
    unit = F.normalize(torch.cat(states)[:2000], dim=-1)
    similarity = unit @ unit.T
    return round(float(similarity[~torch.eye(len(unit), dtype=torch.bool)].mean()), 4)


def table() -> None:
    """Each logged arm at the token counts all arms reached: the measures in one markdown table."""
    rows = {}
    for path in sorted(OUT.glob("*.jsonl")):
        rows[path.stem] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    measures = ("held_out_masked_ce", "auc_uniform", "auc_generator")
    print("| run | tokens | tokens/s | " + " | ".join(measures) + " |")
    print("|---|---:|---:|" + "---:|" * len(measures))
    for name, log in rows.items():
        for row in log[:: max(1, len(log) // 6)] + log[-1:]:
            speed = row["tokens"] / row["seconds"] if row["seconds"] else 0
            cells = " | ".join(str(row.get(m, "")) for m in measures)
            print(f"| {name} | {row['tokens'] / 1e6:.1f} M | {speed:.0f} | {cells} |")


def probe_table() -> None:
    """The logged probes grouped by base, variant, labels, epochs and fine-tuning rate: every seed's accuracy and
    ROC AUC and their means, in one markdown table; then the frozen-feature (`linear`) probes."""
    groups: dict[tuple, list[dict]] = {}
    for line in (OUT / "probes.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "roc_auc" in row:  # probes logged before AUC was measured are not comparable seed for seed
            key = (row["model"], row["variant"], row["train_size"], row.get("epochs", 1), row["learning_rate"])
            groups.setdefault(key, []).append(row)
    print("| base | variant | labels | epochs | lr | weight RMS | accuracy per seed | mean | ROC AUC per seed | mean |")
    print("|---|---|---:|---:|---:|---:|---|---:|---|---:|")
    for (model, variant, size, epochs, rate), rows in sorted(groups.items()):
        accuracy = [r["accuracy"] for r in rows]
        auc = [r["roc_auc"] for r in rows]
        print(
            f"| {model} | {variant} | {size:,} | {epochs} | {rate:g} | {rows[0]['weight_rms']} | "
            f"{' / '.join(map(str, accuracy))} | {sum(accuracy) / len(accuracy):.4f} | "
            f"{' / '.join(map(str, auc))} | {sum(auc) / len(auc):.4f} |"
        )
    if (OUT / "linear.jsonl").exists():
        print("\n| base | variant | seed | labels | mean-pooled ROC AUC | [CLS] ROC AUC |")
        print("|---|---|---:|---:|---:|---:|")
        for line in (OUT / "linear.jsonl").read_text().splitlines():
            r = json.loads(line)
            print(
                f"| {r['model']} | {r['variant']} | {r['seed']} | {r['train_size']:,} | {r['mean_roc_auc']} | "
                f"{r['cls_roc_auc']} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("--vocab-size", type=int, default=16000)
    r = commands.add_parser("run")
    r.add_argument("--arm", choices=ARMS, required=True)
    r.add_argument("--vocab-size", type=int, default=16000, help="the vocabulary `prepare` made")
    r.add_argument("--name", help="log name [default: the arm]")
    r.add_argument("--minutes", type=float, default=6.0)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--dropout", type=float, help="dropout while pretraining [default: ELECTRA's 0.1]")
    r.add_argument("--lr", type=float, default=5e-4)
    r.add_argument("--warmup", type=int, default=200, help="linear warmup steps, then constant")
    r.add_argument("--batch-size", type=int, default=32, help="packed sequences of 128 (unpacked: as many tokens)")
    r.add_argument("--generator-width", type=int, default=0, help="[default: the mini preset's 32]")
    r.add_argument("--every", type=int, default=500_000, help="measure every this many tokens")
    r.add_argument("--gradient-every", type=int, default=50)
    r.add_argument("--no-clip", dest="clip", action="store_false")
    r.add_argument("--uniform-replacements", type=float, default=0.0)
    r.add_argument("--sampling-temperature", type=float, default=1.0)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--save", type=Path)
    c = commands.add_parser("context")
    c.add_argument("--model", type=Path, required=True)
    b = commands.add_parser("probe")
    b.add_argument("--model", type=Path, required=True)
    b.add_argument("--train-size", type=int, default=20_000)
    b.add_argument("--test-size", type=int, default=3_000)
    b.add_argument("--variants", nargs="+", default=["pretrained", "random", "embeddings"])
    b.add_argument("--seeds", nargs="+", type=int, default=[0], help="fine-tuning (and fresh-weight) seeds")
    b.add_argument("--lr", type=float, default=3e-4, help="fine-tuning learning rate [default: the benchmark's]")
    b.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (the best by validation is kept)")
    f = commands.add_parser("linear")
    f.add_argument("--model", type=Path, required=True)
    f.add_argument("--train-size", type=int, default=20_000)
    f.add_argument("--test-size", type=int, default=10_000)
    f.add_argument("--variants", nargs="+", default=["pretrained", "random"])
    f.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of the fresh weights")
    commands.add_parser("table")
    commands.add_parser("probe-table")
    a = commands.add_parser("attention")
    a.add_argument("--model", type=Path, nargs="+", required=True)
    options = parser.parse_args()
    if options.command == "prepare":
        prepare(options.vocab_size)
    elif options.command == "run":
        run(options)
    elif options.command == "probe":
        arguments = (options.train_size, options.test_size, options.variants, options.seeds, options.lr)
        probe(options.model, *arguments, options.epochs)
    elif options.command == "linear":
        linear(options.model, options.train_size, options.test_size, options.variants, options.seeds)
    elif options.command == "attention":
        attention(options.model)
    elif options.command == "probe-table":
        probe_table()
    elif options.command == "context":
        context(options.model)
    else:
        table()


if __name__ == "__main__":
    main()
