"""rs pretrain: ELECTRA replaced-token detection (RTD) on your own reviews.

ELECTRA (Clark et al., ICLR 2020, "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than
Generators"; reference code google-research/electra) trains two Transformer encoders together:

- a small *generator*, a masked language model: 15 % of the tokens of each sequence are chosen anew for
  every batch (`pretrain_helpers.mask`), 85 % of those are replaced by [MASK] and 15 % left as they are
  (no random tokens), and the generator is trained with cross-entropy on the chosen positions only;
- a *discriminator* that reads the sequence with the chosen positions replaced by tokens *sampled* from
  the generator's softmax (temperature 1, no gradient through the sampling: `run_pretraining._get_fake_data`)
  and predicts for every real token whether it was replaced. A sampled token equal to the original counts
  as original. Its loss is sigmoid cross-entropy averaged over all non-padding tokens.

Total loss = MLM loss + λ·discriminator loss with λ = 50 (`disc_weight`). Generator and discriminator
share the token (and position) embeddings, and the generator's output layer is tied to them; the paper
finds generators 1/4-1/2 of the discriminator's width work best (Section 3.2), so the presets use 1/4.
AdamW with weight decay 0.01, linear warmup, then linear decay to zero (`model/optimization.py`).
After pretraining only the discriminator is kept: it is an ordinary `--base` for `rs finetune`.

Continued pretraining (`--base koelectra-small`) starts from a published discriminator and, where one is
published (KoELECTRA v3), its generator; otherwise a new generator 1/4 as wide is built on the
discriminator's embeddings. The ELECTRA paper only pretrains from scratch and says nothing about the
learning rate for continuing; the reference code, resumed from a released checkpoint, simply carries on its
exhausted linear schedule (learning rate ≈ 0). Domain-adaptive pretraining (Gururangan et al. 2020, "Don't
Stop Pretraining") restarts warmup + decay and, for the smaller task-adaptive runs (batch 256), uses a peak
of 1e-4, a sixth of RoBERTa's original rate. We follow that: continuing uses a fresh warmup + linear decay
with a peak of 1/5 of the from-scratch rate of the size (1e-4 for ELECTRA-Small's 5e-4); `--learning-rate`
overrides it.

Differences from the reference, for CPU budgets: the number of masked positions is 15 % of the maskable tokens
rather than of all tokens, positions are drawn without replacement, sequences are packed differently, `mini`
samples the replacements at temperature 2 (`sample_replacements` says why), and 5 % of the reviews (at most
500) are held out to measure the pair (`replacement_measures`). Reviews are short (NSMC averages about 17
tokens), so several are packed into each sequence instead of padding each one to the maximum length (the
reference packs sentences into two segments that attend to each other). Here every review keeps its own [CLS]
… [SEP] frame, attends only to itself and starts at position 0 (`PackedBatch`, after Krell et al. 2021,
packing without cross-contamination), so pretraining sees reviews exactly as fine-tuning and prediction do;
the padding share is reported.

Checkpoints and --resume. Pretraining saves a checkpoint in `OUTPUT/checkpoint/` every --checkpoint-minutes, on
Ctrl-C and when training ends (it is kept with the outputs). It holds everything the rest of the run depends on,
so `--resume` ends with the same weights and history as an uninterrupted run (bit-identical on a CPU):

  discriminator/, generator/  both models (config.json + model.safetensors); the tokenizer beside them
  training.safetensors        AdamW's moments and step counts; the RNG states: torch's global one (dropout),
                              CUDA's when training on a GPU, and the generator that masks and samples
  training.json               step, tokens, loss history and the steps not yet summarized in it, the schedule
                              plan, the scheduler's and AdamW's other state, and the fingerprint of what must match
                              to resume: the corpus, every argument that changes the result (size, learning rate,
                              batch size, max length, seed, vocabulary size, epochs/steps/minutes budget, ...),
                              the base and the device kind

No pickle is written or read. Ctrl-C (or SIGTERM) during a step is held until the step is complete and the
checkpoint is then saved at that step; a second Ctrl-C stops at once, keeping the last checkpoint. A checkpoint
is written into a hidden sibling and renamed into place, so an interrupted save leaves the previous one. Without
--name/-o, `--resume` continues the newest unfinished default-named run (pretrained-ORIGIN-CORPUS-TIME) of this
size or base and corpus; with no checkpoint to resume it starts from the beginning, with a note.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from review_sentiment.bases import ResolvedBase, load_base_tokenizer_and_config, load_base_weights, resolve_base
from review_sentiment.checkpoints import (
    RESUME_HINT,
    Checkpoint,
    FingerprintWords,
    JsonStateDict,
    OptimizerState,
    PerProcess,
    PretrainedFolder,
    Stored,
    StoredValue,
    damaged,
    default_name,
    is_default_name,
    left_a_checkpoint,
    nothing_to_resume,
    recover_checkpoint,
    rng_states,
    staging_dir,
)
from review_sentiment.config import PretrainArguments
from review_sentiment.distributed import Processes, training_processes
from review_sentiment.errors import RsError
from review_sentiment.io import SAMPLE_ROWS, choose_text_column, read_reviews, table_stem
from review_sentiment.modelstore import MODELS_DIR, library_versions
from review_sentiment.normalize import NormalizationRecipe, normalize_reviews
from review_sentiment.options import ReadOptions
from review_sentiment.reporting import SILENT, Reporter, silence_library_logs
from review_sentiment.training import (
    Event,
    StepEnd,
    StopWords,
    TrainingEnd,
    TrainingLoop,
    before_resume,
    interrupted_as,
    precision_name,
    training_precision,
    while_writing,
)

PRETRAIN_META = "rs_pretrain.json"
PRETRAIN_RECIPE_VERSION = 2  # 2: mini samples at temperature 2; 5 % of the reviews held out to measure
GENERATOR_DIR = "generator"
CHECKPOINT_DIR = "checkpoint"
CONTINUED_LR_FACTOR = 0.2
# A new generator starts at the unigram level, where its samples look like the corpus's own tokens: a checkpoint
# continued at temperature 1 drifts towards the collapse mini showed from scratch (measured on a mini checkpoint,
# 10 minutes: token cosine 0.87 -> 0.92 at temperature 1, 0.83 at 2; fine-tuning AUC 0.889 -> 0.882 and 0.884).
NEW_GENERATOR_TEMPERATURE = 2.0

# Published generators that match a base alias's discriminator (same vocabulary and embeddings).
PUBLISHED_GENERATORS = {
    "koelectra": "monologg/koelectra-base-v3-generator",
    "koelectra-small": "monologg/koelectra-small-v3-generator",
}


# ----------------------------------------------------------------------------------------- the RTD task


def pack_sequences(token_lists: list[list[int]], max_length: int, cls_id: int, sep_id: int) -> list[list[int]]:
    """Pack tokenized reviews greedily into sequences [CLS] a [SEP] [CLS] b [SEP] … of at most `max_length`.

    Every review keeps the [CLS] … [SEP] frame it has in fine-tuning; `PackedBatch` keeps the reviews of a
    sequence from seeing each other. A review longer than a whole sequence is truncated to fit one on its own.
    """
    sequences: list[list[int]] = []
    current: list[int] = []
    for tokens in token_lists:
        if not tokens:
            continue
        block = [cls_id, *tokens[: max_length - 2], sep_id]
        if len(current) + len(block) > max_length:
            sequences.append(current)
            current = []
        current.extend(block)
    if current:
        sequences.append(current)
    return sequences


@dataclass
class PackedBatch:
    """Packed sequences as model inputs in which each review sees only itself, at the positions it has alone.

    Packing without cross-contamination (Krell et al. 2021, "Efficient Sequence Packing without
    Cross-contamination"): a block-diagonal attention mask keeps the reviews of a sequence apart and position
    ids restart at every [CLS], so pretraining sees each review exactly as fine-tuning and prediction do (one
    review from position 0), while no compute is spent on padding. Without it, a model would first have to
    learn which neighbours belong to the same review, and positions past a review's length would be trained
    that fine-tuning never uses.
    """

    input_ids: object  # long [batch, length]
    real: object  # bool [batch, length]: not padding
    position_ids: object  # long [batch, length]
    attention_mask: object  # float [batch, 1, length, length]: 0 where a token may attend, a large negative elsewhere

    @classmethod
    def from_sequences(cls, sequences: list[list[int]], pad_token_id: int, cls_token_id: int) -> PackedBatch:
        import torch

        from review_sentiment.inference import pad_batch, reviews_apart_mask

        input_ids, padding_mask = pad_batch(sequences, pad_token_id)
        real = padding_mask.bool()
        review = torch.cumsum(input_ids == cls_token_id, dim=1) * real  # 1, 2, … per review; 0 for padding
        index = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        review_start = torch.cummax(torch.where(input_ids == cls_token_id, index, 0), dim=1).values
        position_ids = torch.where(real, index - review_start, 0)
        return cls(input_ids, real, position_ids, reviews_apart_mask(review))

    def to(self, device) -> PackedBatch:
        return PackedBatch(*(getattr(self, name).to(device) for name in self.__dataclass_fields__))

    def model_inputs(self, input_ids) -> dict:
        return {"input_ids": input_ids, "attention_mask": self.attention_mask, "position_ids": self.position_ids}


def choose_mask_positions(candidates, mask_prob: float, rng):
    """Choose round(mask_prob × candidates) positions (at least one) per sequence, uniformly at random.

    `candidates` is a bool tensor [batch, length]: real tokens that are not [CLS]/[SEP]/[PAD].
    """
    import torch

    counts = candidates.sum(dim=1)
    to_mask = torch.clamp(torch.round(counts.float() * mask_prob).long(), min=1)
    to_mask = torch.minimum(to_mask, counts)
    scores = torch.rand(candidates.shape, generator=rng, device=candidates.device)
    scores = scores.masked_fill(~candidates, -1.0)
    ranks = scores.argsort(dim=1, descending=True).argsort(dim=1)
    return (ranks < to_mask.unsqueeze(1)) & candidates


def mask_for_generator(input_ids, positions, mask_token_id: int, rng, keep_prob: float = 0.15):
    """The generator's input: chosen positions become [MASK], except `keep_prob` of them left unchanged."""
    import torch

    keep = torch.rand(positions.shape, generator=rng, device=positions.device) < keep_prob
    return input_ids.masked_fill(positions & ~keep, mask_token_id)


def replaced_token_labels(original_ids, corrupted_ids):
    """Discriminator targets: 1 where the token differs from the original, 0 where it is the original —
    including sampled tokens that happen to equal the original."""
    return (corrupted_ids != original_ids).long()


def masked_lm_logits(generator, batch: PackedBatch, positions, mask_token_id: int, rng):
    """The generator's logits [chosen positions, vocabulary] for the batch with the chosen positions masked.

    Like the reference, the vocabulary projection runs only at the chosen positions."""
    generator_input = mask_for_generator(batch.input_ids, positions, mask_token_id, rng)
    hidden = generator.electra(**batch.model_inputs(generator_input)).last_hidden_state
    return generator.generator_lm_head(generator.generator_predictions(hidden[positions])).float()


def sample_replacements(logits, args, special_ids, rng):
    """The discriminator's replacement tokens for the chosen positions: samples of the generator's softmax at
    `args.sampling_temperature`; a share `args.uniform_replacements` of them uniformly random non-special tokens
    instead (an experiment of bench/pretrain_experiments.py; 0 in every preset).

    Why a temperature above 1 from scratch: while the generator is near its unigram plateau, its samples are
    distributed like the corpus's own tokens, so a token's identity says nothing about whether it was replaced,
    and until the discriminator learns context its best answer is the same for every token. It reaches that
    answer by mapping every token to nearly the same hidden state (mean cosine 0.997 after 1 M tokens, against
    0.37 in random weights), an encoder that fine-tunes worse than random weights. Flatter samples keep token
    identity informative (cosine 0.87; README, Pretraining)."""
    import torch

    probabilities = torch.softmax(logits / args.sampling_temperature, dim=-1)
    # inverse-CDF sampling, one uniform draw per position: torch.multinomial draws one exponential per vocabulary
    # entry, 408 ms for 600 positions x 32,000 on 2 cores against 39 ms here (10 % of a small-model step)
    cumulative = probabilities.cumsum(dim=-1)
    draws = torch.rand(len(cumulative), 1, generator=rng, device=cumulative.device) * cumulative[:, -1:]
    # right=True: the first token whose cumulative probability exceeds the draw, never one of probability 0
    sampled = torch.searchsorted(cumulative, draws, right=True).squeeze(-1).clamp_(max=logits.shape[-1] - 1)
    if args.uniform_replacements:
        vocabulary = torch.ones(logits.shape[-1], device=logits.device)
        vocabulary[special_ids[special_ids < len(vocabulary)]] = 0.0
        uniform = torch.multinomial(vocabulary, len(sampled), replacement=True, generator=rng)
        chosen = torch.rand(len(sampled), generator=rng, device=sampled.device) < args.uniform_replacements
        sampled = torch.where(chosen, uniform, sampled)
    return sampled


@dataclass
class StepResult:
    loss: float
    generator_loss: float
    discriminator_loss: float
    replaced_accuracy: float  # on replaced tokens
    original_accuracy: float  # on original tokens
    replaced: int
    tokens: int


def rtd_step(generator, discriminator, batch: PackedBatch, special_ids, mask_token_id, args, rng):
    """One replaced-token-detection forward pass; returns (loss tensor, StepResult without the backward)."""
    generator_loss, discriminator_loss, result = rtd_losses(
        generator, discriminator, batch, special_ids, mask_token_id, args, rng
    )
    return generator_loss + args.disc_weight * discriminator_loss, result


def rtd_losses(generator, discriminator, batch: PackedBatch, special_ids, mask_token_id, args, rng):
    """The generator's MLM loss and the discriminator's loss as tensors, and the step's StepResult."""
    import torch
    import torch.nn.functional as F

    input_ids, real = batch.input_ids, batch.real
    positions = choose_mask_positions(real & ~torch.isin(input_ids, special_ids), args.mask_prob, rng)
    logits = masked_lm_logits(generator, batch, positions, mask_token_id, rng)
    generator_loss = F.cross_entropy(logits, input_ids[positions])

    with torch.no_grad():  # sampling is not differentiable; the discriminator's loss does not reach the generator
        sampled = sample_replacements(logits, args, special_ids, rng)
    corrupted = input_ids.clone()
    corrupted[positions] = sampled
    labels = replaced_token_labels(input_ids, corrupted)

    discriminator_logits = discriminator(**batch.model_inputs(corrupted)).logits.float()
    discriminator_loss = F.binary_cross_entropy_with_logits(discriminator_logits[real], labels[real].float())
    with torch.no_grad():
        predicted = (discriminator_logits > 0).long()
        is_replaced = (labels == 1) & real
        is_original = (labels == 0) & real
        replaced = int(is_replaced.sum())
        result = StepResult(
            loss=float(generator_loss + args.disc_weight * discriminator_loss),
            generator_loss=float(generator_loss),
            discriminator_loss=float(discriminator_loss),
            replaced_accuracy=float((predicted[is_replaced] == 1).float().mean()) if replaced else float("nan"),
            original_accuracy=float((predicted[is_original] == 0).float().mean()),
            replaced=replaced,
            tokens=int(real.sum()),
        )
    return generator_loss, discriminator_loss, result


def replaced_token_detection(generator, discriminator, special_ids, mask_token_id: int, args, rng):
    """The generator and discriminator as one module whose forward is `rtd_step` on a PackedBatch: what DDP
    wraps (one wrapper, as they share their embeddings)."""
    import torch

    class ReplacedTokenDetection(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = generator, discriminator

        def forward(self, batch: PackedBatch):
            return rtd_step(self.generator, self.discriminator, batch, special_ids, mask_token_id, args, rng)

    return ReplacedTokenDetection()


def _combined(result: StepResult, share: float, slots: float, seconds: float, processes) -> tuple:
    """(StepResult, slots, seconds) of a step as all processes made it together: the losses averaged over the
    processes (as the gradients are), the accuracies over all their tokens, the counts summed, the seconds
    averaged (so that every process plans the same schedule and stops at the same step)."""
    originals = (result.tokens - result.replaced) * share
    replaced = result.replaced * share
    totals = processes.sum(
        [
            result.loss * share,
            result.generator_loss * share,
            result.discriminator_loss * share,
            share,
            result.replaced_accuracy * replaced if replaced else 0.0,
            replaced,
            result.original_accuracy * originals if originals else 0.0,
            originals,
            slots,
            seconds,
        ]
    )
    loss, generator_loss, discriminator_loss, parts, right_replaced, replaced, right_originals, originals = totals[:8]
    combined = StepResult(
        loss=loss / parts,
        generator_loss=generator_loss / parts,
        discriminator_loss=discriminator_loss / parts,
        replaced_accuracy=right_replaced / replaced if replaced else float("nan"),
        original_accuracy=right_originals / originals if originals else float("nan"),
        replaced=int(replaced),
        tokens=int(replaced + originals),
    )
    return combined, totals[8], totals[9] / processes.world_size


# ------------------------------------------------------------------------------------ held-out measures

HELD_OUT_REVIEWS = 500  # at most; 5 % of a smaller corpus, none under 200 reviews
HISTORY_EVERY = 50  # steps summarized per history entry
MEASURE_EVERY = 250  # steps; a multiple of HISTORY_EVERY: the measures go into history entries


def split_held_out(token_lists: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
    """(training reviews, held-out reviews): 5 % of the shuffled reviews, at most 500, kept out of training
    to measure what the pair has learned. A corpus of fewer than 200 reviews keeps them all for training."""
    count = min(HELD_OUT_REVIEWS, len(token_lists) // 20)
    if count < 10:
        return token_lists, []
    return token_lists[count:], token_lists[:count]


def replacement_measures(
    generator, discriminator, reviews: list[list[int]], tokenizer, max_length: int, seed: int = 0
) -> dict:
    """What the pair has learned, on reviews it did not train on, each alone as in fine-tuning:

    - `held_out_generator_loss`: the generator's cross-entropy at 15 % of the tokens, all shown as [MASK]
      (the unigram level of a corpus is its floor without context);
    - `held_out_auc`: the discriminator's ROC AUC over all tokens but [CLS]/[SEP] after those positions are
      replaced by samples of the generator's softmax at temperature 1, whatever the training's temperature
      (0.5: it cannot tell them from the originals; a sample equal to the original counts as original).
    Fixed positions and samples (`seed`), no dropout; the models' training mode and the RNGs of training are
    left as they were."""
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import roc_auc_score

    from review_sentiment.inference import pad_batch

    device = next(discriminator.parameters()).device
    special_ids = torch.tensor(tokenizer.all_special_ids)
    rng = torch.Generator().manual_seed(seed)
    modes = generator.training, discriminator.training
    reviews = sorted(reviews, key=len)  # little padding
    loss_sum, masked, scores, labels = 0.0, 0, [], []
    try:
        generator.eval()
        discriminator.eval()
        with torch.no_grad():
            for start in range(0, len(reviews), 100):
                rows = [
                    [tokenizer.cls_token_id, *review[: max_length - 2], tokenizer.sep_token_id]
                    for review in reviews[start : start + 100]
                ]
                ids, attention = pad_batch(rows, tokenizer.pad_token_id)
                candidates = attention.bool() & ~torch.isin(ids, special_ids)
                positions = choose_mask_positions(candidates, 0.15, rng)
                ids, attention = ids.to(device), attention.to(device)
                positions, candidates = positions.to(device), candidates.to(device)
                masked_ids = ids.masked_fill(positions, tokenizer.mask_token_id)
                hidden = generator.electra(input_ids=masked_ids, attention_mask=attention).last_hidden_state
                logits = generator.generator_lm_head(generator.generator_predictions(hidden[positions])).float()
                loss_sum += float(F.cross_entropy(logits, ids[positions], reduction="sum"))
                masked += int(positions.sum())
                sampled = torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=rng).squeeze(-1)
                corrupted = ids.clone()
                corrupted[positions] = sampled.to(device)
                # Scored where a token can be replaced: [CLS] and [SEP] never are, and would raise the AUC for free.
                scores.append(discriminator(input_ids=corrupted, attention_mask=attention).logits[candidates].cpu())
                labels.append((corrupted != ids)[candidates].cpu())
    finally:
        generator.train(modes[0])
        discriminator.train(modes[1])
    labels, scores = torch.cat(labels), torch.cat(scores).float()
    auc = float(roc_auc_score(labels.numpy(), scores.numpy())) if 0 < int(labels.sum()) < len(labels) else None
    return {
        "held_out_generator_loss": round(loss_sum / max(1, masked), 4),
        "held_out_auc": None if auc is None else round(auc, 4),
    }


# --------------------------------------------------------------------------------------- models


def new_electra_pair(tokenizer, args: PretrainArguments):
    """A fresh discriminator and a generator 1/4 as wide that shares its embeddings (pretraining from scratch)."""
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    size = args.model_size
    common = {
        "vocab_size": len(tokenizer),
        "embedding_size": size.embedding_size,
        "max_position_embeddings": args.max_length,
        "pad_token_id": tokenizer.pad_token_id,
    }
    discriminator = ElectraForPreTraining(
        ElectraConfig(
            hidden_size=size.hidden_size,
            num_hidden_layers=size.num_layers,
            num_attention_heads=size.num_heads,
            intermediate_size=size.intermediate_size,
            **common,
        )
    )
    generator = ElectraForMaskedLM(
        ElectraConfig(
            hidden_size=size.generator_hidden_size,
            num_hidden_layers=size.num_layers,
            num_attention_heads=max(1, size.generator_hidden_size // 64),
            intermediate_size=size.generator_hidden_size * 4,
            **common,
        )
    )
    tie_embeddings(generator, discriminator)
    return generator, discriminator


def generator_for(discriminator):
    """A generator 1/4 as wide as a loaded discriminator, on the discriminator's embeddings."""
    from transformers import ElectraConfig, ElectraForMaskedLM

    config = discriminator.config
    hidden = max(64, config.hidden_size // 4)
    generator = ElectraForMaskedLM(
        ElectraConfig(
            vocab_size=config.vocab_size,
            embedding_size=config.embedding_size,
            hidden_size=hidden,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=max(1, hidden // 64),
            intermediate_size=hidden * 4,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
            pad_token_id=config.pad_token_id,
        )
    )
    tie_embeddings(generator, discriminator)
    return generator


def tie_embeddings(generator, discriminator) -> None:
    """Share the discriminator's embedding module with the generator and tie the generator's output layer to it."""
    if generator.config.embedding_size != discriminator.config.embedding_size:
        raise RsError(
            f"The generator's embedding size ({generator.config.embedding_size}) differs from the "
            f"discriminator's ({discriminator.config.embedding_size}); they cannot share embeddings."
        )
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight


def _local_generator(base: ResolvedBase) -> Path | None:
    """The `generator/` folder an earlier `rs pretrain` saved beside a local base, if there is one."""
    folder = Path(base.source) / GENERATOR_DIR
    return folder if base.is_local and (folder / "config.json").exists() else None


def has_generator(base: ResolvedBase) -> bool:
    """Whether continuing `base` starts from a trained generator (its `generator/` folder or a published one)."""
    return _local_generator(base) is not None or base.alias in PUBLISHED_GENERATORS


def load_continued_pair(base: ResolvedBase):
    """Discriminator (and generator where one exists) of a checkpoint to continue pretraining from."""
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    try:
        tokenizer, config = load_base_tokenizer_and_config(base)
    except RsError as error:
        generator = PUBLISHED_GENERATORS.get(base.alias or "")
        if generator is None:
            raise
        folder = base.source.split("/")[-1]
        raise RsError(
            f"{error} Download its generator into that folder too, so pretraining continues with it: "
            f"`hf download {generator} --local-dir {folder}/{GENERATOR_DIR}`."
        ) from None
    if config.model_type != "electra":
        raise RsError(f"rs pretrain continues ELECTRA checkpoints; {base.source} is a {config.model_type} model.")
    discriminator = load_base_weights(base, ElectraForPreTraining)
    generator = None
    local_generator = _local_generator(base)
    if local_generator is not None:
        generator = load_base_weights(resolve_base(str(local_generator)), ElectraForMaskedLM)
    elif base.alias in PUBLISHED_GENERATORS:
        generator_base = resolve_base(PUBLISHED_GENERATORS[base.alias])
        load_base_tokenizer_and_config(generator_base)  # fails fast and clearly when offline
        generator = load_base_weights(generator_base, ElectraForMaskedLM)
    if generator is None or generator.config.vocab_size != discriminator.config.vocab_size:
        generator = generator_for(discriminator)
    else:
        tie_embeddings(generator, discriminator)
    return tokenizer, generator, discriminator


# ---------------------------------------------------------------------------------------- the corpus


@dataclass
class PretrainResult:
    output_dir: Path
    steps: int
    tokens_seen: int
    tokens_per_second: float
    padding_share: float
    final: dict
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by: str = ""


def read_corpus(
    path: str | Path,
    recipe: NormalizationRecipe,
    reading: ReadOptions = ReadOptions(),
    reporter: Reporter = SILENT,
) -> list[str]:
    """The corpus's non-empty normalized reviews; the text column used is said before normalizing."""
    table = read_reviews(path, reading.encoding, reading.sheet)
    choice = choose_text_column(table.columns, table.head(SAMPLE_ROWS), reading.text_col)
    reporter.message(f"Corpus: {path} — {len(table)} rows · text column {choice.describe()}")
    for warning in choice.warnings:
        reporter.warning(warning)
    texts = normalize_reviews(recipe, table[choice.name].tolist(), reporter)
    texts = [text for text in texts if text]
    if not texts:
        raise RsError(f"{path} has no non-empty reviews to pretrain on.")
    return texts


def corpus_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def _default_name_prefix(args: PretrainArguments, base: ResolvedBase | None, corpus: Path) -> str:
    origin = (base.alias or Path(base.source).name) if base else args.size
    return f"pretrained-{origin}-{table_stem(corpus)}-".replace("/", "-")


def default_pretrain_name(args: PretrainArguments, base: ResolvedBase | None, corpus: Path) -> str:
    return default_name(_default_name_prefix(args, base, corpus))


def scratch_learning_rate(config) -> float:
    """The from-scratch learning rate of the size preset closest to a discriminator's shape."""
    from review_sentiment.config import MODEL_SIZES

    def distance(size):
        return (abs(size.hidden_size - config.hidden_size), abs(size.num_layers - config.num_hidden_layers))

    return min(MODEL_SIZES.values(), key=distance).learning_rate


def rtd_optimizer(generator, discriminator, learning_rate: float, weight_decay: float):
    """AdamW (fused) over both models' parameters, the shared embeddings once (`optimization.py` of the reference:
    eps 1e-6, no weight decay on biases and LayerNorm). Returns (optimizer, the parameter list for clipping)."""
    import torch

    named = {id(p): (n, p) for model in (discriminator, generator) for n, p in model.named_parameters()}
    no_decay = ("bias", "LayerNorm.weight")
    decay = [p for n, p in named.values() if not n.endswith(no_decay)]
    exempt = [p for n, p in named.values() if n.endswith(no_decay)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]
    # fused: one kernel for the whole update instead of a loop of tensor ops per parameter (as rs finetune)
    fused = decay[0].device.type in ("cpu", "cuda") or None
    return torch.optim.AdamW(groups, lr=learning_rate, eps=1e-6, fused=fused), decay + exempt


def steps_for_budget(
    step: int, train_seconds: float, since_step: int, since_seconds: float, budget_seconds: float
) -> int:
    """The total steps that end training when the time budget does, planned at `step` from the speed of the steps
    after `since_step` (trained by `since_seconds`; at the first calibration 0 and 0: all steps)."""
    seconds_per_step = (train_seconds - since_seconds) / (step - since_step)
    return max(step + 1, step + int((budget_seconds - train_seconds) / seconds_per_step))


def _schedule(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


# ------------------------------------------------------------------------------------ checkpoints and --resume


CHECKPOINT_FORMAT = 1
DISCRIMINATOR_DIR = "discriminator"
_UNPLANNED = 10**9  # planned steps with only --max-minutes, until the speed is measured
# With --max-minutes the schedule is planned from the speed of the first 10 steps, then again from that of steps
# 11-60 and of steps 61-300, each time from the steps since the last plan: the first steps carry one-time costs
# (allocations, kernel choice) and early steps stay slower for a while; a plan from the first 10 ended a 60-minute
# benchmark run after 45 minutes, one from steps 11-60 after 52 (steps 11-60 at 75 a minute, the rest at 86).
CALIBRATION_STEPS = (10, 60, 300)

# How the arguments that change the result are spelled on the command line, for messages.
_OPTION_NAMES = {
    "size": "--size",
    "max_length": "--max-length",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "epochs": "--epochs",
    "max_steps": "--max-steps",
    "max_minutes": "--max-minutes",
    "seed": "--seed",
    "vocab_size": "--vocab-size",
    "sampling_temperature": "--sampling-temperature",
}


def pretrain_precision(device: str, requested: str):
    """The autocast dtype of a pretraining step (None: fp32): as fine-tuning's, but never fp16, which would need
    loss scaling (auto on a GPU without bf16 trains in fp32)."""
    import torch

    dtype = training_precision(device, requested)
    return None if dtype == torch.float16 else dtype


def resume_fingerprint(args: PretrainArguments, base: ResolvedBase | None, device: str, processes: int = 1) -> dict:
    """What must match to resume a checkpoint, but the corpus (added once it is read): every argument that changes
    the result (all but --checkpoint-minutes), the base, the device kind and the processes of a distributed run."""
    import torch

    if base is None:
        origin = None
    elif base.is_local:
        origin = str(Path(base.source).resolve())
    else:
        origin = f"{base.source}@{base.revision}" if base.revision else base.source
    arguments = {key: value for key, value in args.to_dict().items() if key != "checkpoint_minutes"}
    fingerprint = {
        "arguments": arguments,
        "base": origin,
        "device": torch.device(device).type,
        "precision": precision_name(pretrain_precision(device, args.precision)),  # what auto is on this machine
        "recipe": PRETRAIN_RECIPE_VERSION,
    }
    if processes > 1:  # each process's RNGs are in the checkpoint: resume with as many
        fingerprint["processes"] = processes
    return fingerprint


def _shown(value) -> str:
    return "not given" if value is None else str(value)


_FROM_SCRATCH = "not given (from scratch)"
_FINGERPRINT_WORDS = FingerprintWords(
    arguments_key="arguments",
    option_names=_OPTION_NAMES,
    described={
        "corpus": lambda old, new: "the corpus differs (another file, other rows or another --text-col)",
        "base": lambda old, new: f"--base was {old or _FROM_SCRATCH} there, {new or _FROM_SCRATCH} now",
        "processes": lambda old, new: (
            f"it was trained by {old} processes, this run has {new}: resume "
            "it with as many (torchrun --nproc_per_node / accelerate launch --num_processes)"
        ),
    },
    other=lambda key, old, new: f"--{key} was {_shown(old)} there, {_shown(new)} now",
    shown=_shown,
    saved_only=False,  # read before the corpus is: its fingerprint is added to this run's later
)


def _refuse_other_recipe(folder: Path, saved: dict) -> None:
    recipe = saved.get("fingerprint", {}).get("recipe", 1)  # recipe 1 did not record itself
    if recipe != PRETRAIN_RECIPE_VERSION:
        raise RsError(
            f"The checkpoint in {folder} was made by an earlier rs (pretraining recipe {recipe}; this rs "
            f"trains recipe {PRETRAIN_RECIPE_VERSION}) and cannot be resumed by it; rerun without --resume and "
            "with --force to start over, or finish it with the rs version that made it."
        )


def pretrain_checkpoint(output_dir: Path, fingerprint: dict) -> Checkpoint:
    """The resumable state of a pretraining run, in OUTPUT/checkpoint/ (`_Run.stored` says what it holds)."""
    return Checkpoint(
        output_dir / CHECKPOINT_DIR,
        fingerprint,
        CHECKPOINT_FORMAT,
        _FINGERPRINT_WORDS,
        readme="Checkpoint of an `rs pretrain` run: not a base, use the folder above it.\n"
        f"To continue an interrupted run, {RESUME_HINT}; to start over, rerun it with --force.\n",
        older_files=("state.pt",),  # the pickled state of rs before safetensors checkpoints
        check_older=_refuse_other_recipe,
    )


def load_checkpoint_models(folder: Path):
    """The tokenizer, generator and discriminator saved in a checkpoint (safetensors only)."""
    from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining

    options = {"local_files_only": True, "trust_remote_code": False}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **options)
        discriminator = ElectraForPreTraining.from_pretrained(
            folder / DISCRIMINATOR_DIR, use_safetensors=True, **options
        )
        generator = ElectraForMaskedLM.from_pretrained(folder / GENERATOR_DIR, use_safetensors=True, **options)
    except (OSError, ValueError) as error:
        raise damaged(folder, error) from None
    tie_embeddings(generator, discriminator)
    return tokenizer, generator, discriminator


def upgraded_state(saved_state: dict) -> dict:
    """A checkpoint's run state in this rs's form. Checkpoints written before `calibration_step` existed recorded
    only the training time at the first calibration (step 10), so their latest calibration is taken to be that."""
    state = dict(saved_state)
    state.setdefault("calibration_step", CALIBRATION_STEPS[0] if state.get("calibrations") else 0)
    return state


def _has_checkpoint(folder: Path) -> bool:
    return folder.is_dir() or staging_dir(folder, "old").is_dir()


def _interrupted_default_run(models_dir: Path, prefix: str) -> Path | None:
    """The newest output folder named by default (PREFIX + start time) whose run left a checkpoint and did not
    finish, so that rerunning the same command with --resume finds it although the time in the name has moved on."""
    if not models_dir.is_dir():
        return None
    found = [
        folder
        for folder in models_dir.iterdir()
        if is_default_name(folder.name, prefix)
        and folder.is_dir()
        and not (folder / PRETRAIN_META).exists()
        and _has_checkpoint(folder / CHECKPOINT_DIR)
    ]
    return max(found, key=lambda folder: folder.name, default=None)


@dataclass
class _Place:
    """Where a run writes, and whether it resumes a checkpoint there."""

    output_dir: Path
    checkpoint: Checkpoint
    resume: bool
    stale: Path | None  # an unfinished default-named run that --force discards


def _where_to_write(
    corpus_path: Path,
    args: PretrainArguments,
    base: ResolvedBase | None,
    processes: Processes,
    output_dir: str | Path | None,
    models_dir: str | Path,
    resume: bool,
    force: bool,
    reporter: Reporter,
) -> _Place:
    """The output folder and its checkpoint; refuses to start over on a run without --force. The main process
    decides (a default name holds the time), the others take its answer."""
    output_dir, resume, stale = processes.on_main(
        lambda: _decide_where(corpus_path, args, base, output_dir, models_dir, resume, force, reporter)
    )
    fingerprint = resume_fingerprint(args, base, processes.device, processes.world_size)
    return _Place(output_dir, pretrain_checkpoint(output_dir, fingerprint), resume, stale)


def _decide_where(
    corpus_path: Path,
    args: PretrainArguments,
    base: ResolvedBase | None,
    output_dir: str | Path | None,
    models_dir: str | Path,
    resume: bool,
    force: bool,
    reporter: Reporter,
) -> tuple[Path, bool, Path | None]:
    """(output folder, whether to resume, an unfinished default-named run that --force discards)."""
    looked = None  # where --resume looked for a checkpoint in vain
    stale = None
    if output_dir is None:
        prefix = _default_name_prefix(args, base, corpus_path)
        interrupted = _interrupted_default_run(Path(models_dir), prefix)
        if interrupted is not None and resume:
            output_dir = interrupted
        elif interrupted is not None and not force:
            raise left_a_checkpoint(interrupted / CHECKPOINT_DIR)
        else:
            stale = interrupted
            if resume:
                looked = Path(models_dir) / (prefix + "*") / CHECKPOINT_DIR
            output_dir = Path(models_dir) / default_pretrain_name(args, base, corpus_path)
    output_dir = Path(output_dir)
    checkpoint_folder = output_dir / CHECKPOINT_DIR
    has_checkpoint = recover_checkpoint(checkpoint_folder)
    if resume and not has_checkpoint:
        looked = looked or checkpoint_folder
        resume = False
    if output_dir.exists() and not (resume or force):
        if looked is not None:
            raise RsError(
                f"{output_dir} already exists and holds no checkpoint to resume. Pass --name with another name, "
                "or --force to start over in it."
            )
        if (output_dir / PRETRAIN_META).exists():
            raise RsError(
                f"{output_dir} holds a finished run. Pass --name with another name, or --force to start over "
                "(--resume would only write the same outputs again)."
            )
        if has_checkpoint:
            raise left_a_checkpoint(checkpoint_folder)
        raise RsError(f"{output_dir} already exists. Pass --name with another name, or --force to start over in it.")
    if looked is not None:
        reporter.message(nothing_to_resume(looked))
    return output_dir, resume, stale


# ---------------------------------------------------------------------------------------- the run


@dataclass
class SchedulePlan:
    """The learning-rate schedule's plan: warmup, then linear decay to zero at `total` steps."""

    total: int  # planned steps (_UNPLANNED with only --max-minutes, until the speed is measured)
    warmup: int
    cap: int  # the most steps the other budgets allow


@dataclass
class PretrainState:
    """What changes during pretraining besides the models, optimizer, scheduler, plan and RNGs; "state" in
    training.json."""

    step: int = 0
    tokens_seen: int = 0
    padded: int = 0
    slots: int = 0
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    window: list[StepResult] = field(default_factory=list)  # the steps since the last history entry
    calibrations: int = 0  # how many of CALIBRATION_STEPS have planned the schedule to fit the time budget
    calibration_step: int = 0  # the step of the latest calibration, and the training time then
    calibration_seconds: float = 0.0
    stopped_by: str | None = None  # set when the time budget ends training
    resumes: int = 0

    @classmethod
    def from_saved(cls, saved: dict) -> PretrainState:
        """The state a checkpoint's training.json holds (an older checkpoint's too: `upgraded_state`)."""
        restored = upgraded_state(saved)
        restored["window"] = [StepResult(**result) for result in restored["window"]]
        return cls(**restored)


@dataclass
class _Run:
    """A pretraining run once set up: the corpus, the models, what trains them and what changes."""

    args: PretrainArguments
    device: str
    base: ResolvedBase | None
    corpus_path: Path
    recipe: NormalizationRecipe
    reviews: int
    fingerprint: str
    tokens: int  # of all reviews, held-out ones included
    training_tokens: int
    sequences: list[list[int]]
    held_out: list[list[int]]
    max_length: int
    tokenizer: object
    generator: object
    discriminator: object
    network: object  # both, as one module: what a step runs (wrapped for DDP in a distributed run)
    amp_dtype: object  # None: fp32
    processes: Processes
    learning_rate: float
    optimizer: object
    parameters: list  # clipped together
    scheduler: object
    rng: object  # masks and samples
    special_ids: object
    plan: SchedulePlan
    budget_seconds: float | None
    state: PretrainState = field(default_factory=PretrainState)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.sequences) / self.args.batch_size)

    @property
    def finished(self) -> bool:
        return self.state.step >= self.plan.total or bool(self.state.stopped_by)

    def of_total(self) -> str:
        return f" of {self.plan.total}" if self.plan.total < _UNPLANNED else ""

    def stored(self) -> list[Stored]:
        """What a checkpoint holds (the module docstring lists the files)."""
        return [
            PretrainedFolder(DISCRIMINATOR_DIR, self.discriminator),
            PretrainedFolder(GENERATOR_DIR, self.generator),
            PretrainedFolder("", self.tokenizer),
            *self._rng_states(),
            OptimizerState("optimizer", self.optimizer),
            JsonStateDict("scheduler", self.scheduler),
            StoredValue("plan", lambda: asdict(self.plan), lambda saved: vars(self.plan).update(saved)),
            StoredValue("state", lambda: asdict(self.state), self._restore_state),
        ]

    def _rng_states(self) -> list[Stored]:
        # dropout on a GPU draws from the generator of the device that masks and samples
        states = rng_states(str(self.rng.device), {"rng.masking": self.rng})
        # in a distributed run each process masks, samples and drops out on its own
        return states if self.processes.world_size == 1 else [PerProcess(states, self.processes)]

    def _restore_state(self, saved: dict) -> None:
        self.state = PretrainState.from_saved(saved)
        self.state.resumes += 1

    def train_step(self, rows: list[int]) -> StepResult:
        """One optimizer step on the packed sequences `rows` (of every process together)."""
        import torch

        processes = self.processes
        mine, share = processes.part_of(rows), 1.0
        if not mine:  # fewer sequences than processes: a stand-in keeps this one in step, counting for nothing
            mine, share = rows[:1], 0.0
        batch = PackedBatch.from_sequences(
            [self.sequences[r] for r in mine], self.tokenizer.pad_token_id, self.tokenizer.cls_token_id
        )
        step_started = time.perf_counter()
        # DDP averages the processes' gradients: of the mean loss over each one's tokens (standard data
        # parallelism; the sequences are packed to one length, so the parts weigh about the same)
        with torch.autocast(torch.device(self.device).type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            loss, result = self.network(batch.to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        processes.backward(loss * share)
        torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        slots, seconds = batch.input_ids.numel() * share, time.perf_counter() - step_started
        if processes.world_size > 1:
            result, slots, seconds = _combined(result, share, slots, seconds, processes)
        state = self.state
        state.step += 1
        state.tokens_seen += result.tokens
        state.padded += int(slots) - result.tokens
        state.slots += int(slots)
        state.train_seconds += seconds
        state.window.append(result)
        return result

    def calibrate(self) -> int | None:
        """With a time budget, at each of CALIBRATION_STEPS: plan the schedule to end when the budget does, from
        the speed since the last plan. Returns the new total, or None where the plan stays."""
        state, plan = self.state, self.plan
        if not (
            self.budget_seconds
            and state.calibrations < len(CALIBRATION_STEPS)
            and state.step >= CALIBRATION_STEPS[state.calibrations]
        ):
            return None
        planned = steps_for_budget(
            state.step, state.train_seconds, state.calibration_step, state.calibration_seconds, self.budget_seconds
        )
        plan.total = min(plan.cap, planned)
        if state.step < plan.warmup:  # past warmup the decay only stretches
            plan.warmup = max(1, int(plan.total * self.args.warmup_ratio))
        state.calibration_step, state.calibration_seconds = state.step, state.train_seconds
        state.calibrations += 1
        return plan.total

    def summarize(self) -> dict:
        """The history entry of the steps since the last one; with the held-out measures every MEASURE_EVERY
        steps and at the end."""
        entry = _summarize(self.state.step, self.state.window)
        measure = self.state.step % MEASURE_EVERY == 0 or self.finished
        if self.held_out and measure and self.processes.is_main:  # the one that writes the history
            entry.update(
                replacement_measures(
                    self.generator, self.discriminator, self.held_out, self.tokenizer, self.max_length, self.args.seed
                )
            )
        return entry


def _pretrain_steps(run: _Run, loop: TrainingLoop) -> Iterator[Event]:
    """Pretraining as events: StepEnd after every step, TrainingEnd after the last one is summarized."""
    import torch

    state, args = run.state, run.args
    order_epoch, order = -1, None
    run.discriminator.train()
    run.generator.train()
    while state.step < run.plan.total and not state.stopped_by:
        with loop.held():
            with loop.changing(current=state.step + 1):
                epoch, position = divmod(state.step, run.steps_per_epoch)
                if epoch != order_epoch:  # each epoch visits the sequences in its own seeded order
                    seeded = torch.Generator().manual_seed(args.seed + epoch)
                    order, order_epoch = torch.randperm(len(run.sequences), generator=seeded), epoch
                result = run.train_step(order[position * args.batch_size : (position + 1) * args.batch_size].tolist())
                total = run.calibrate()
                if run.budget_seconds and state.train_seconds >= run.budget_seconds:
                    state.stopped_by = "time budget"
                if state.step % HISTORY_EVERY == 0 or state.step == run.plan.total or state.stopped_by:
                    state.history.append(run.summarize())
                    state.window = []
            yield StepEnd(state.step, _progress_info(result, state.history), total, hook=(state.step, result))
    with loop.held():
        if state.window:
            with loop.changing(current=None):
                state.history.append(run.summarize())
                state.window = []
        yield TrainingEnd()


def _load_models(base: ResolvedBase | None, place: _Place, texts: list[str], args: PretrainArguments, continued):
    """(tokenizer, generator, discriminator): the checkpoint's when resuming, `continued` (loaded from the base),
    or a new pair on a WordPiece vocabulary trained on the corpus."""
    if place.resume:
        return load_checkpoint_models(place.checkpoint.folder)
    if base is not None:
        return continued
    from transformers import ElectraTokenizer

    from review_sentiment.vocab import train_wordpiece_vocab

    vocab = train_wordpiece_vocab(texts, args.vocab_size or args.model_size.vocab_size)
    tokenizer = ElectraTokenizer(
        vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=args.max_length
    )
    return (tokenizer, *new_electra_pair(tokenizer, args))


def _planned_steps(args: PretrainArguments, steps_per_epoch: int) -> int:
    """The steps the budgets allow; with only --max-minutes, the plan is refined from the measured speed."""
    budgets = [args.max_steps]
    if args.epochs is not None or not (args.max_steps or args.max_minutes):
        budgets.append(math.ceil(steps_per_epoch * (args.epochs or 1.0)))
    return min((b for b in budgets if b), default=_UNPLANNED)


def _set_up(
    corpus_path: Path,
    args: PretrainArguments,
    base: ResolvedBase | None,
    processes: Processes,
    place: _Place,
    saved: dict | None,
    read: Callable[[NormalizationRecipe], list[str]],
    reporter: Reporter,
) -> _Run:
    """Read the corpus, build or load the models, the optimizer, schedule and RNGs (`read` reads the corpus)."""
    import torch
    from transformers import set_seed

    from review_sentiment.cpu_training import use_cheap_dropout, use_fast_training_kernels
    from review_sentiment.inference import use_fast_attention

    device = processes.device
    recipe = NormalizationRecipe()
    set_seed(args.seed)
    # a continued base is loaded before the corpus work, so a missing checkpoint fails fast
    continued = load_continued_pair(base) if base is not None and not place.resume else None
    texts = read(recipe)
    fingerprint = corpus_fingerprint(texts)
    place.checkpoint.fingerprint["corpus"] = fingerprint
    if place.resume:
        place.checkpoint.check(saved)
    tokenizer, generator, discriminator = _load_models(base, place, texts, args, continued)
    max_positions = discriminator.config.max_position_embeddings
    max_length = min(args.max_length, max_positions)
    if max_length < args.max_length:
        reporter.warning(f"--max-length {args.max_length} exceeds the model's {max_positions} positions.")

    token_lists = tokenizer(texts, add_special_tokens=False)["input_ids"]
    random.Random(args.seed).shuffle(token_lists)
    training_lists, held_out = split_held_out(token_lists)
    sequences = pack_sequences(training_lists, max_length, tokenizer.cls_token_id, tokenizer.sep_token_id)
    planned = _planned_steps(args, math.ceil(len(sequences) / args.batch_size))

    amp_dtype = pretrain_precision(device, args.precision)
    for model in (generator, discriminator):
        use_fast_attention(model, device)
        # in bf16 autocast sends the Linear layers to oneDNN's bf16 kernels (AMX, AVX512-BF16); fp32 ones skip that
        use_fast_training_kernels(model, device, processes.world_size, linear=amp_dtype is None)
        use_cheap_dropout(model, device)
        model.to(device)
    if processes.rank:  # the same models everywhere (above), but each process its own dropout
        set_seed(args.seed + processes.rank)
    learning_rate = args.learning_rate or (
        CONTINUED_LR_FACTOR * scratch_learning_rate(discriminator.config) if base else args.model_size.learning_rate
    )
    optimizer, parameters = rtd_optimizer(generator, discriminator, learning_rate, args.weight_decay)
    # each process masks and samples its own (rank 0 as one process does)
    rng = torch.Generator(device=device).manual_seed(args.seed + processes.rank)
    special_ids = torch.tensor(tokenizer.all_special_ids, device=device)
    plan = SchedulePlan(total=planned, warmup=max(1, int(planned * args.warmup_ratio)), cap=planned)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _schedule(step, plan.warmup, plan.total))
    return _Run(
        args=args,
        device=device,
        base=base,
        corpus_path=corpus_path,
        recipe=recipe,
        reviews=len(texts),
        fingerprint=fingerprint,
        tokens=sum(map(len, token_lists)),
        training_tokens=sum(map(len, training_lists)),
        sequences=sequences,
        held_out=held_out,
        max_length=max_length,
        tokenizer=tokenizer,
        generator=generator,
        discriminator=discriminator,
        network=processes.prepare(
            replaced_token_detection(generator, discriminator, special_ids, tokenizer.mask_token_id, args, rng)
        ),
        amp_dtype=amp_dtype,
        processes=processes,
        learning_rate=learning_rate,
        optimizer=optimizer,
        parameters=parameters,
        scheduler=scheduler,
        rng=rng,
        special_ids=special_ids,
        plan=plan,
        budget_seconds=args.max_minutes * 60 if args.max_minutes else None,
    )


def _start(run: _Run, place: _Place, saved: dict | None, force: bool, reporter: Reporter) -> None:
    """Restore the checkpoint being resumed, or clear what --force discards; say what the run trains."""
    if place.resume:
        place.checkpoint.restore(saved, run.stored())
        finished = " (training had finished: writing the outputs)" if run.state.step >= run.plan.total else ""
        reporter.message(f"Resuming {place.output_dir} at step {run.state.step}{run.of_total()}{finished}")
    else:

        def clear() -> None:
            for folder in (place.stale, place.output_dir if force else None):
                if folder is not None and folder.exists():
                    shutil.rmtree(folder)

        run.processes.on_main(clear)
    origin = "continuing " + run.base.source if run.base else "from scratch, size " + run.args.size
    reporter.message(
        f"Corpus: {run.corpus_path} — {run.reviews} reviews, {run.training_tokens} tokens packed into "
        f"{len(run.sequences)} sequences of ≤{run.max_length} ({len(run.held_out)} reviews held out) · "
        f"vocabulary {len(run.tokenizer)} · {origin} · lr {run.learning_rate:g} · {run.device} "
        f"{precision_name(run.amp_dtype)}" + (f" · {run.processes.describe()}" if run.processes.world_size > 1 else "")
    )


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # made for the checkpoint that was not saved


def _write_outputs(run: _Run, output_dir: Path) -> PretrainResult:
    """The discriminator, the generator, the tokenizer and rs_pretrain.json; the run's result."""
    state = run.state
    stopped_by = state.stopped_by or "planned steps"
    tokens_per_second = state.tokens_seen / state.train_seconds if state.train_seconds else 0.0
    padding_share = state.padded / state.slots if state.slots else 0.0
    final = state.history[-1] if state.history else {}
    discriminator, generator = run.discriminator.to("cpu"), run.generator.to("cpu")
    discriminator.save_pretrained(output_dir)
    run.tokenizer.save_pretrained(output_dir)
    generator.save_pretrained(output_dir / GENERATOR_DIR)
    run.tokenizer.save_pretrained(output_dir / GENERATOR_DIR)
    meta = {
        "kind": "electra-rtd",
        "recipe_version": PRETRAIN_RECIPE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "corpus": {
            "path": str(run.corpus_path),
            "fingerprint": run.fingerprint,
            "reviews": run.reviews,
            "tokens": run.tokens,
            "sequences": len(run.sequences),
            "held_out_reviews": len(run.held_out),
        },
        "normalization": run.recipe.to_dict(),
        "base": run.base.to_dict() if run.base else None,
        "arguments": run.args.to_dict(),
        "learning_rate": run.learning_rate,
        "planned_steps": run.plan.total,
        "steps": state.step,
        "stopped_by": stopped_by,
        "resumed": state.resumes,
        "tokens_seen": state.tokens_seen,
        "train_seconds": round(state.train_seconds, 1),
        "tokens_per_second": round(tokens_per_second, 1),
        "padding_share": round(padding_share, 4),
        "final": final,
        "history": state.history,
        "discriminator": {
            "hidden_size": discriminator.config.hidden_size,
            "layers": discriminator.config.num_hidden_layers,
            "vocab_size": discriminator.config.vocab_size,
        },
        "generator": {"hidden_size": generator.config.hidden_size},
        "device": run.device,
        "precision": precision_name(run.amp_dtype),
        **({"processes": run.processes.world_size} if run.processes.world_size > 1 else {}),
        "library_versions": library_versions(),
    }
    (output_dir / PRETRAIN_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return PretrainResult(
        output_dir=output_dir,
        steps=state.step,
        tokens_seen=state.tokens_seen,
        tokens_per_second=tokens_per_second,
        padding_share=padding_share,
        final=final,
        history=state.history,
        stopped_by=stopped_by,
    )


def _with_sampling_temperature(args: PretrainArguments, base: ResolvedBase | None) -> PretrainArguments:
    """`args` with the default sampling temperature resolved: the resume fingerprint and rs_pretrain.json hold it."""
    if args.sampling_temperature is not None:
        return args
    if base is None:
        temperature = args.model_size.sampling_temperature
    else:
        temperature = 1.0 if has_generator(base) else NEW_GENERATOR_TEMPERATURE
    return dataclasses.replace(args, sampling_temperature=temperature)


def pretrain(
    corpus_path: str | Path,
    args: PretrainArguments | None = None,
    *,
    base_name: str | None = None,
    output_dir: str | Path | None = None,
    models_dir: str | Path = MODELS_DIR,
    reading: ReadOptions = ReadOptions(),
    resume: bool = False,
    force: bool = False,
    device: str | None = None,
    reporter: Reporter = SILENT,
    on_step: Callable[[int, StepResult], None] | None = None,
) -> PretrainResult:
    """Pretrain an ELECTRA discriminator by replaced-token detection; from scratch or from `base_name`.

    A checkpoint is kept in `OUTPUT/checkpoint/` (see the module docstring). `resume` continues it (without
    `output_dir`: the newest unfinished default-named run of this size or base and corpus), or starts from the
    beginning, with a note, when there is none; `force` starts over. Ctrl-C raises Interrupted, a
    KeyboardInterrupt whose message says what was kept and how to continue. `on_step(step, result)` is called
    after every completed step (tests use it to interrupt a run at a known point).
    """
    started = time.perf_counter()
    silence_library_logs()
    corpus_path = Path(corpus_path)
    base = resolve_base(base_name) if base_name else None
    processes = training_processes(device)
    reporter = reporter if processes.is_main else SILENT  # one process reports
    args = _with_sampling_temperature(args or PretrainArguments(), base)
    place = _where_to_write(corpus_path, args, base, processes, output_dir, models_dir, resume, force, reporter)
    saved = place.checkpoint.read() if place.resume else None  # other arguments fail before the corpus is read

    with interrupted_as(before_resume(place.checkpoint.folder) if place.resume else None):
        run = _set_up(
            corpus_path,
            args,
            base,
            processes,
            place,
            saved,
            lambda recipe: read_corpus(corpus_path, recipe, reading, reporter),
            reporter,
        )
        _start(run, place, saved, force, reporter)

    checkpoint = place.checkpoint
    loop = TrainingLoop(
        "Pretraining",
        run.plan.total,
        step=run.state.step,
        resumed=place.resume,
        save=lambda: checkpoint.save(run.stored(), processes),
        checkpoint_folder=checkpoint.folder,
        words=StopWords(
            step=lambda step: f"step {step}{run.of_total()}",
            detail=lambda: " (training had finished)" if run.finished else "",
            nothing_kept="Stopped before the first checkpoint was saved: nothing to resume. Rerun the same command.",
            on_nothing_kept=lambda: processes.is_main and _remove_if_empty(place.output_dir),
        ),
        reporter=reporter,
        on_step=on_step,
        save_every_seconds=args.checkpoint_minutes * 60,
        processes=processes,
    )
    loop.run(_pretrain_steps(run, loop))
    with interrupted_as(while_writing("writing the outputs", checkpoint.folder, "them")):
        result = processes.on_main(lambda: _write_outputs(run, place.output_dir))  # the others wait for it
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else float("nan")


def _summarize(step: int, window: list[StepResult]) -> dict:
    return {
        "step": step,
        "generator_loss": round(_mean([r.generator_loss for r in window]), 4),
        "discriminator_loss": round(_mean([r.discriminator_loss for r in window]), 4),
        "replaced_accuracy": round(_mean([r.replaced_accuracy for r in window]), 4),
        "original_accuracy": round(_mean([r.original_accuracy for r in window]), 4),
    }


def _progress_info(result: StepResult, history: list[dict]) -> str:
    measured = next((entry for entry in reversed(history) if entry.get("held_out_auc") is not None), None)
    return (
        f"gen {result.generator_loss:.3f} disc {result.discriminator_loss:.3f} "
        f"acc replaced {result.replaced_accuracy:.2f} original {result.original_accuracy:.2f}"
        + (f" · held-out AUC {measured['held_out_auc']:.3f}" if measured else "")
    )
