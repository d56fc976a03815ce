"""Is `rs pretrain` learning? A short run and the discriminator's ROC AUC on generator replacements.

The discriminator's accuracy at a 0.5 threshold stays at "all original" for a long time, which hides whether
it learns anything; the AUC of its logits does not. 0.5 means it has learned nothing about replacements;
an AUC on uniform-random replacements above the AUC on generator samples means it learned token priors but
not context. Used to find out why the pretrained base of bench/pretrain_vs_random.py lost to random weights.

    python bench/pretrain_diagnostics.py --corpus reviews.csv --steps 1500 --learning-rate 5e-4 --warmup 0.1

Prints one line: the settings, the last logged losses, generator accuracy at masked positions, and the two AUCs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def discriminator_auc(folder: Path, texts: list[str], seed: int = 0) -> dict:
    from sklearn.metrics import roc_auc_score
    from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining

    from review_sentiment.pretrain import (
        PackedBatch,
        choose_mask_positions,
        mask_for_generator,
        pack_sequences,
        replaced_token_labels,
        tie_embeddings,
    )

    tokenizer = AutoTokenizer.from_pretrained(folder)
    discriminator = ElectraForPreTraining.from_pretrained(folder).eval()
    generator = ElectraForMaskedLM.from_pretrained(folder / "generator").eval()
    tie_embeddings(generator, discriminator)
    tokens = tokenizer(texts, add_special_tokens=False)["input_ids"]
    max_length = discriminator.config.max_position_embeddings
    sequences = pack_sequences(tokens, max_length, tokenizer.cls_token_id, tokenizer.sep_token_id)[:64]
    batch = PackedBatch.from_sequences(sequences, tokenizer.pad_token_id, tokenizer.cls_token_id)
    ids, real = batch.input_ids, batch.real
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        candidates = real & ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
        positions = choose_mask_positions(candidates, 0.15, rng)
        generator_input = mask_for_generator(ids, positions, tokenizer.mask_token_id, rng)
        hidden = generator.electra(**batch.model_inputs(generator_input)).last_hidden_state
        logits = generator.generator_lm_head(generator.generator_predictions(hidden[positions])).float()
        sampled = torch.multinomial(torch.softmax(logits, -1), 1, generator=rng).squeeze(-1)
        results = {"generator_masked_accuracy": round(float((logits.argmax(-1) == ids[positions]).float().mean()), 3)}
        uniform = torch.randint(5, len(tokenizer), (int(positions.sum()),), generator=rng)
        for name, replacement in (("auc_generator_samples", sampled), ("auc_uniform_random", uniform)):
            corrupted = ids.clone()
            corrupted[positions] = replacement
            labels = replaced_token_labels(ids, corrupted)
            scores = discriminator(**batch.model_inputs(corrupted)).logits
            results[name] = round(float(roc_auc_score(labels[real].numpy(), scores[real].numpy())), 3)
    return results


def main() -> None:
    from review_sentiment.config import PretrainArguments
    from review_sentiment.normalize import normalize_texts
    from review_sentiment.pretrain import pretrain
    from review_sentiment.tables import find_text_column, read_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="unlabeled reviews for pretraining")
    parser.add_argument("--held-out", type=Path, help="reviews to measure AUC on [default: the corpus's last 600]")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--size", default="mini")
    parser.add_argument("--output", type=Path, default=Path("bench/results/diagnostic-pretrain"))
    options = parser.parse_args()

    started = time.perf_counter()
    args = PretrainArguments(
        size=options.size, max_steps=options.steps, learning_rate=options.learning_rate, warmup_ratio=options.warmup
    )
    result = pretrain(options.corpus, args, output_dir=options.output, force=True, quiet=True)
    table = read_table(options.held_out or options.corpus)
    texts = normalize_texts(table[find_text_column(table)].tolist()[-600:])
    scores = discriminator_auc(options.output, [t for t in texts if t])
    print(
        f"size {options.size} lr {options.learning_rate or 'preset'} warmup {options.warmup} steps {result.steps} "
        f"({time.perf_counter() - started:.0f}s): last {result.final} {scores}",
        flush=True,
    )


if __name__ == "__main__":
    main()
