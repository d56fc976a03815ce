"""rs finetune: train a Korean ELECTRA (or any local checkpoint) into a review-sentiment classifier.

Checkpoints and --resume. Fine-tuning a transformer saves a checkpoint beside the model folder it will write,
`<model folder>.rs-checkpoint/` (models/NAME.rs-checkpoint/ by default: it has no rs_meta.json, so `rs predict`
and `rs models` never take it for a model), at the end of every epoch and on Ctrl-C, and deletes it once the
model folder is saved. It holds everything the rest of the run depends on, so `--resume` ends with the same
weights and history as an uninterrupted run (bit-identical on a CPU):

  model.safetensors       the current weights
  best.safetensors        the best epoch's weights, when they are not the current ones (early stopping keeps them)
  training.safetensors    AdamW's moments and step counts; the RNG states: torch's global one (dropout), CUDA's,
                          and the generator that shuffles the batches, as it was when this epoch drew them
  training.json           epoch, batches done in it and their losses, history, best scores, epochs without
                          improvement, the scheduler's, GradScaler's and AdamW's other state, Python's and NumPy's
                          RNG states, and the fingerprint of what must match to resume: data, labels, training
                          arguments, base and revision, max length, device kind and precision
  README.txt              what the folder is

Ctrl-C (or SIGTERM) during a training step is held until the step is complete, and the checkpoint is then
saved at that step: at most one step is lost, not an epoch. A second Ctrl-C stops at once, mid-step; then the
last checkpoint saved is kept, an equally exact place to resume from. A checkpoint is written into a hidden
sibling and renamed into place, so an interrupted save leaves the previous one. The TF-IDF baseline trains in
seconds and keeps no checkpoint: --resume there trains it again.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np

from review_sentiment.bases import (
    ResolvedBase,
    expected_vocab_size,
    load_base_tokenizer_and_config,
    load_base_weights,
    resolve_base,
)
from review_sentiment.calibration import calibration_record
from review_sentiment.checkpoints import (
    RESUME_HINT,
    Checkpoint,
    FingerprintWords,
    JsonStateDict,
    ModuleWeights,
    OptimizerState,
    PerProcess,
    Stored,
    StoredValue,
    default_name,
    delete_checkpoint,
    is_default_name,
    left_a_checkpoint,
    nothing_to_resume,
    recover_checkpoint,
    rng_states,
)
from review_sentiment.config import FinetuneArguments
from review_sentiment.cpu_training import (
    PackedReviews,
    can_pack_classifier,
    packed_classifier_logits,
    use_cheap_dropout,
    use_fast_training_kernels,
)
from review_sentiment.distributed import Processes, launched_world_size, training_processes
from review_sentiment.errors import RsError
from review_sentiment.inference import batched_probabilities, pad_batch, use_fast_attention
from review_sentiment.io import (
    PROCESSED_DIR,
    SAMPLE_ROWS,
    choose_text_column,
    latest_processed_file,
    read_reviews,
    read_sidecar,
    table_stem,
)
from review_sentiment.labels import RatingBins, read_gold_labels, sort_labels
from review_sentiment.modelstore import (
    MODELS_DIR,
    TFIDF,
    TRANSFORMER,
    library_versions,
    save_model_folder,
    save_transformer,
)
from review_sentiment.normalize import NormalizationRecipe, normalize_reviews
from review_sentiment.options import LabelOptions, ReadOptions
from review_sentiment.reporting import SILENT, Reporter, silence_library_logs
from review_sentiment.training import (
    EpochEnd,
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


@dataclass
class TrainingData:
    path: Path
    texts: list[str]  # normalized
    labels: list[str]
    recipe: NormalizationRecipe
    text_column: str
    label_source: str
    rating_scale: int | None  # 5 or 10 when the labels came from star ratings
    rating_bins: dict | None  # RatingBins.to_dict() when the labels came from star ratings
    unlabeled_note: str
    rows_total: int
    rows_unlabeled: int
    rows_empty_text: int
    from_preprocess: bool

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(f"{label}\t{text}\n".encode())
        return "sha256:" + digest.hexdigest()


@dataclass
class FinetuneResult:
    output_dir: Path
    labels: list[str]
    best_epoch: int | None  # None for the TF-IDF baseline, which has no epochs
    metrics: dict
    history: list[dict]
    data: dict
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    calibration: dict = field(default_factory=dict)  # the temperature and validation ECE/Brier/NLL before and after


def training_data_path(data_path: str | Path | None, processed_dir: str | Path = PROCESSED_DIR) -> Path:
    """The file to train on: `data_path`, or the one `rs preprocess` wrote last."""
    path = (Path(data_path) if data_path else latest_processed_file(processed_dir)).resolve()
    if not path.exists():
        raise RsError(f"No such file: {data_path or path}")
    return path


def load_training_data(
    data_path: str | Path | None,
    *,
    reading: ReadOptions = ReadOptions(),
    labels: LabelOptions = LabelOptions(),
    processed_dir: str | Path = PROCESSED_DIR,
    reporter: Reporter = SILENT,
) -> TrainingData:
    """Read labeled reviews. A file from `rs preprocess` brings its normalized column and recipe; any other
    file is normalized here with the default recipe. Which text and label columns are used (and any warning
    about them) is said before the normalization starts."""
    path = training_data_path(data_path, processed_dir)
    table = read_reviews(path, reading.encoding, reading.sheet)
    sidecar = read_sidecar(path)
    from_preprocess = bool(sidecar) and sidecar.get("normalized_column") in table.columns and reading.text_col is None
    if from_preprocess:
        recipe = NormalizationRecipe.from_dict(sidecar["recipe"])
        choice = choose_text_column(table.columns, table.head(SAMPLE_ROWS), sidecar["text_column"])
        choice.reason = "the column `rs preprocess` normalized"
    else:
        recipe = NormalizationRecipe()
        choice = choose_text_column(table.columns, table.head(SAMPLE_ROWS), reading.text_col)
    gold = read_gold_labels(table, labels.label_col, labels.rating_col, labels.rating_scale, labels.rating_bins)
    reporter.message(
        f"Data: {path} — {len(table):,} rows · text column {choice.describe()} · labels from the {gold.source}"
    )
    for warning in [*choice.warnings, *gold.warnings]:
        reporter.warning(warning)
    if from_preprocess:
        normalized = table[sidecar["normalized_column"]].tolist()
    else:
        normalized = normalize_reviews(recipe, table[choice.name].tolist(), reporter)
    keep = [
        i for i, (text, label) in enumerate(zip(normalized, gold.labels, strict=True)) if label is not None and text
    ]
    return TrainingData(
        path=path,
        texts=[normalized[i] for i in keep],
        labels=[gold.labels[i] for i in keep],
        recipe=recipe,
        text_column=choice.name,
        label_source=gold.source,
        rating_scale=gold.rating_bins.scale if gold.rating_bins else None,
        rating_bins=gold.rating_bins.to_dict() if gold.rating_bins else None,
        unlabeled_note=gold.describe_unlabeled(),
        rows_total=len(table),
        rows_unlabeled=gold.n_unlabeled,
        rows_empty_text=sum(
            1 for text, label in zip(normalized, gold.labels, strict=True) if label is not None and not text
        ),
        from_preprocess=from_preprocess,
    )


def clamp_max_length(requested: int, tokenizer, config, warnings: list[str]) -> int:
    """The requested length, clamped to the base model's positions and the tokenizer's limit."""
    from review_sentiment.modelstore import model_length_limit

    limit = model_length_limit(config, tokenizer)
    if limit is not None and requested > limit:
        warnings.append(f"--max-length {requested} exceeds what the base model supports ({limit}); using {limit}.")
        return limit
    return requested


def stratified_split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    from sklearn.model_selection import train_test_split

    counts = Counter(labels)
    rare = {label: n for label, n in counts.items() if n < 2}
    if rare:
        raise RsError(
            f"Each label needs at least 2 examples to hold one out for validation; found {rare}. "
            "Add examples, or relabel/remove those rows."
        )
    n_validation = max(len(counts), round(len(labels) * fraction))
    if len(labels) - n_validation < len(counts):
        raise RsError(f"Only {len(labels)} labeled reviews: too few to train and validate. Add more data.")
    indices = list(range(len(labels)))
    train, validation = train_test_split(indices, test_size=n_validation, stratify=labels, random_state=seed)
    return sorted(train), sorted(validation)


def default_model_name(base_part: str, data_path: Path) -> str:
    return default_name(_default_name_prefix(base_part, data_path))


def _default_name_prefix(base_part: str, data_path: Path) -> str:
    return re.sub(r"[^\w.-]+", "-", f"{base_part}-{table_stem(data_path)}-")


def _default_named_checkpoint(models_dir: Path, base_part: str, data_path: Path) -> Path | None:
    """The newest checkpoint of a run that chose its default name (BASE-DATA-TIME) for this base and data, so
    that rerunning the same command finds it although the time in the name has moved on."""
    prefix = _default_name_prefix(base_part, data_path)
    found = set()
    for path in models_dir.glob(f"*{prefix}*{CHECKPOINT_SUFFIX}*"):
        name = path.name.removeprefix(".").removesuffix(".old")
        if is_default_name(name, prefix, CHECKPOINT_SUFFIX) and (path.name == name or path.name == f".{name}.old"):
            found.add(name)
    return models_dir / max(found) if found else None


def _scores(gold: list[int], predicted: list[int], labels: list[str]) -> dict:
    """Validation accuracy and macro-F1, computed as `rs evaluate` computes them."""
    from review_sentiment.metrics import classification_scores

    scores = classification_scores(gold, predicted, list(range(len(labels))))
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def length_grouped_batches(rows: list[int], encoded: list[list[int]], batch_size: int, generator) -> list[list[int]]:
    """Shuffled batches of reviews of similar length, so little compute goes to padding.

    Rows are shuffled, cut into pools of 50 batches, sorted by length within each pool, batched, and the
    batches shuffled again (like transformers' group_by_length).
    """
    import torch

    shuffled = [rows[i] for i in torch.randperm(len(rows), generator=generator).tolist()]
    pool = batch_size * 50
    batches = []
    for start in range(0, len(shuffled), pool):
        by_length = sorted(shuffled[start : start + pool], key=lambda row: len(encoded[row]))
        batches.extend(by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _class_weights(train_targets: list[int], n_classes: int) -> list[float]:
    """Inverse class frequency ("balanced"), so a rare class such as neutral is not ignored."""
    counts = Counter(train_targets)
    return [len(train_targets) / (n_classes * counts[i]) for i in range(n_classes)]


# ------------------------------------------------------------------------------------ checkpoints


CHECKPOINT_SUFFIX = ".rs-checkpoint"
CHECKPOINT_FORMAT = 1
_CHECKPOINT_MODEL = "model.safetensors"
_CHECKPOINT_BEST = "best.safetensors"

# How the training arguments are spelled on the command line, for messages.
_OPTION_NAMES = {
    "learning_rate": "--learning-rate",
    "batch_size": "--batch-size",
    "max_length": "--max-length",
    "epochs": "--epochs",
    "validation_fraction": "--validation-fraction",
    "early_stopping_patience": "--patience",
    "class_weights": "--no-class-weights",
    "seed": "--seed",
}

_FINGERPRINT_WORDS = FingerprintWords(
    arguments_key="training_args",
    option_names=_OPTION_NAMES,
    described={
        "data": lambda old, new: "the training data differs (another file, rows, labels or normalization)",
        "processes": lambda old, new: (
            f"it was trained by {old} processes, this run has {new}: resume "
            "it with as many (torchrun --nproc_per_node / accelerate launch --num_processes)"
        ),
    },
    other=lambda key, old, new: f"{key.replace('_', ' ')} was {old} there, {new} now",
)


def checkpoint_dir_for(output_dir: str | Path) -> Path:
    """Where fine-tuning into `output_dir` keeps its checkpoint: a sibling folder, never inside the model."""
    output_dir = Path(output_dir)
    return output_dir.with_name(output_dir.name + CHECKPOINT_SUFFIX)


def finetune_checkpoint(folder: Path, fingerprint: dict) -> Checkpoint:
    """The resumable state of one fine-tuning run (`_ClassifierTraining.stored` says what it holds)."""
    return Checkpoint(
        folder,
        fingerprint,
        CHECKPOINT_FORMAT,
        _FINGERPRINT_WORDS,
        readme="Checkpoint of an interrupted `rs finetune` run: not a model, `rs predict` cannot use it.\n"
        f"To continue, {RESUME_HINT}; to start over, rerun it with --force (deletes this folder).\n"
        "It is deleted when the model folder is saved.\n",
    )


def _weights_on_cpu(model) -> dict:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


# --------------------------------------------------------------------------------------- training loop


@dataclass
class FinetuneProgress:
    """What changes during fine-tuning besides the model, optimizer, scheduler, scaler, RNGs and the best epoch;
    "run" in training.json."""

    epoch: int = 1  # the epoch being trained
    position: int = 0  # its batches done
    step: int = 0  # all batches done
    done: bool = False
    losses: list[float] = field(default_factory=list)  # this epoch's
    tokens: int = 0
    slots: int = 0
    epoch_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    epochs_without_improvement: int = 0
    best_is_current: bool = False  # whether the current weights are the best epoch's (none trained since)
    resumes: int = 0


@dataclass
class BestEpoch:
    """The epoch with the best validation macro-F1 so far (none yet: -1), and its weights on the CPU."""

    epoch: int | None = None
    accuracy: float | None = None
    macro_f1: float = -1.0
    weights: dict | None = None

    def scores(self) -> dict:
        """As "best" in training.json: the scores there are."""
        scores = {"epoch": self.epoch, "accuracy": self.accuracy, "macro_f1": self.macro_f1}
        return {key: value for key, value in scores.items() if value is not None}


@dataclass
class _BestWeights:
    """The best epoch in a checkpoint: its scores as "best", and as "best_weights" where its weights are ("model":
    the current ones, "best": best.safetensors, None: no epoch yet). After `ModuleWeights`, which restores the
    current ones."""

    training: _ClassifierTraining

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        from safetensors.torch import save_file

        best, where = self.training.best, None
        if best.weights is not None:
            where = "model" if self.training.progress.best_is_current else "best"
            if where == "best":
                save_file(best.weights, str(folder / _CHECKPOINT_BEST))
        state["best"], state["best_weights"] = best.scores(), where

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        from safetensors.torch import load_file

        weights = None
        if state["best_weights"] == "model":
            weights = _weights_on_cpu(self.training.model)
        elif state["best_weights"] == "best":
            weights = load_file(str(folder / _CHECKPOINT_BEST))
        self.training.best = BestEpoch(**state["best"], weights=weights)


@dataclass
class _ClassifierTraining:
    """One fine-tuning run once set up: the data, the model and what trains it, and what changes."""

    model: object  # the model itself, whose weights a checkpoint holds
    network: object  # what trains it: the model, or the model wrapped for DDP
    processes: Processes
    encoded: list[list[int]]
    targets: list[int]
    train_rows: list[int]
    validation_rows: list[int]
    label_names: list[str]
    args: FinetuneArguments
    device: str
    pad_token_id: int
    loss_function: object
    summed_loss: object  # the loss summed over a batch, weighted as loss_function weighs it
    class_weights: list[float] | None
    optimizer: object
    scheduler: object
    scaler: object
    amp_dtype: object  # None: fp32
    shuffler: object  # the generator that shuffles the batches
    batch_order: object  # its state before the current epoch drew its batches
    total_steps: int
    packed: bool = False  # several reviews to a row (cpu_training.PackedReviews) instead of one padded row each
    progress: FinetuneProgress = field(default_factory=FinetuneProgress)
    best: BestEpoch = field(default_factory=BestEpoch)

    def stored(self) -> list[Stored]:
        """What a checkpoint holds (the module docstring lists the files)."""
        return [
            ModuleWeights(_CHECKPOINT_MODEL, self.model),
            _BestWeights(self),
            OptimizerState("optimizer", self.optimizer),
            JsonStateDict("scheduler", self.scheduler),
            JsonStateDict("scaler", self.scaler),
            *self._rng_states(),
            StoredValue("rng.batch_order", lambda: self.batch_order, self._restore_batch_order, tensor=True),
            StoredValue("run", lambda: asdict(self.progress), self._restore_progress),
        ]

    def _rng_states(self) -> list[Stored]:
        if self.processes.world_size == 1:
            return rng_states(self.device, all_cuda_devices=True, python_and_numpy=True)
        # each process draws its own dropout, on its own GPU
        return [PerProcess(rng_states(self.device, python_and_numpy=True), self.processes)]

    def _restore_batch_order(self, state) -> None:
        self.batch_order = state

    def _restore_progress(self, saved: dict) -> None:
        self.progress = FinetuneProgress(**saved)
        self.progress.resumes += 1

    def autocast(self, scoring: bool = False):
        """Mixed precision where the run uses it (a no-op in fp32). `scoring`: validation, in the precision
        `rs predict` uses on this device (fp32 on a CPU, half on a GPU), so that the best epoch and the calibration
        temperature are chosen on the probabilities predict will compute."""
        import torch

        device_type = torch.device(self.device).type
        enabled = self.amp_dtype is not None and not (scoring and device_type == "cpu")
        return torch.autocast(device_type, dtype=self.amp_dtype, enabled=enabled)

    def train_step(self, rows: list[int]) -> float:
        """One optimizer step on the reviews `rows` (of every process together); returns the loss and counts the
        tokens."""
        import torch

        processes = self.processes
        mine, share = processes.part_of(rows), 1.0
        if not mine:  # fewer reviews than processes: a stand-in keeps this one in step, counting for nothing
            mine, share = rows[:1], 0.0
        if self.packed:
            batch = PackedReviews.of([self.encoded[r] for r in mine], self.pad_token_id)
            mine = [mine[i] for i in batch.order]
            with self.autocast():
                logits = packed_classifier_logits(self.model, batch)
            tokens, slots = batch.tokens, batch.input_ids.numel()
        else:
            ids, mask = pad_batch([self.encoded[r] for r in mine], self.pad_token_id)
            with self.autocast():
                logits = self.network(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            tokens, slots = int(mask.sum()), mask.numel()
        gold = torch.tensor([self.targets[r] for r in mine], device=self.device)
        if processes.world_size == 1:
            loss = self.loss_function(logits.float(), gold)
        else:
            # This process's part of the whole batch's (weighted) mean loss, times the processes: DDP averages
            # the gradients, so together they are the gradient of that mean, as one process computes it.
            batch_weight = sum(self.class_weights[self.targets[r]] for r in rows) if self.class_weights else len(rows)
            loss = self.summed_loss(logits.float(), gold) * (share * processes.world_size / batch_weight)
        self.optimizer.zero_grad(set_to_none=True)
        processes.backward(self.scaler.scale(loss))
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        loss_value, tokens, slots = loss.item(), tokens * share, slots * share
        if processes.world_size > 1:
            loss_value, tokens, slots = processes.sum([loss_value / processes.world_size, tokens, slots])
        self.progress.tokens += int(tokens)
        self.progress.slots += int(slots)
        return loss_value

    def validate(self) -> dict:
        """Validation accuracy and macro-F1 of the current weights."""
        probabilities, gold = self.validation_probabilities()
        return _scores(gold, probabilities.argmax(axis=1).tolist(), self.label_names)

    def validation_probabilities(self) -> tuple[np.ndarray, list[int]]:
        """The current weights' class probabilities for the validation reviews, and their gold classes."""

        self.network.eval()
        if self.processes.world_size > 1:
            return self._validation_across_processes()
        with self.autocast(scoring=True):
            probabilities = batched_probabilities(
                self.model,
                [self.encoded[i] for i in self.validation_rows],
                self.pad_token_id,
                batch_size=64,
                device=self.device,
            )
        return probabilities, [self.targets[i] for i in self.validation_rows]

    def _validation_across_processes(self):
        """(probabilities, gold) of the validation reviews, each process scoring its share of the batches;
        accelerate's `gather_for_metrics` drops the reviews repeated to give every process as many."""
        import torch
        from torch.utils.data import DataLoader

        def batch(rows):
            ids, mask = pad_batch([self.encoded[r] for r in rows], self.pad_token_id)
            return ids, mask, torch.tensor([self.targets[r] for r in rows])

        by_length = sorted(self.validation_rows, key=lambda r: len(self.encoded[r]))  # little padding
        loader = self.processes.validation_loader(DataLoader(by_length, batch_size=64, collate_fn=batch))
        probabilities, gold = [], []
        with (
            torch.inference_mode(),
            self.autocast(scoring=True),
        ):
            for ids, mask, targets in loader:
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                batch_probabilities, batch_gold = self.processes.gather_for_metrics(
                    (torch.softmax(logits.float(), dim=-1), targets)
                )
                probabilities.append(batch_probabilities.cpu())
                gold.append(batch_gold.cpu())
        return torch.cat(probabilities).numpy(), torch.cat(gold).tolist()

    def end_epoch(self, scores: dict, reporter: Reporter) -> None:
        """Record the epoch, keep its weights if they are the best, decide whether to stop; start the next."""
        progress, args, epoch = self.progress, self.args, self.progress.epoch
        progress.history.append(
            {
                "epoch": epoch,
                "train_loss": round(float(np.mean(progress.losses)), 4),
                **scores,
                "train_tokens": progress.tokens,  # real tokens trained on (padding not counted)
                "train_seconds": round(progress.epoch_seconds, 2),  # the epoch's steps alone (no validation)
                "train_tokens_per_second": round(progress.tokens / max(progress.epoch_seconds, 1e-9), 1),
                "padding_share": round(1 - progress.tokens / progress.slots, 4),
            }
        )
        improved = scores["macro_f1"] > self.best.macro_f1
        reporter.message(
            f"epoch {epoch}: train loss {progress.history[-1]['train_loss']:.4f} · validation accuracy "
            f"{scores['accuracy']:.4f} · macro-F1 {scores['macro_f1']:.4f}{'  (best)' if improved else ''}"
        )
        stop = epoch == args.epochs
        if improved:
            self.best = BestEpoch(epoch, scores["accuracy"], scores["macro_f1"], _weights_on_cpu(self.model))
            progress.epochs_without_improvement = 0
        else:
            progress.epochs_without_improvement += 1
            patience = args.early_stopping_patience
            if patience and progress.epochs_without_improvement >= patience:
                reporter.message(
                    f"Early stopping: no better validation macro-F1 for {progress.epochs_without_improvement} epochs."
                )
                stop = True
        self.batch_order = self.shuffler.get_state()
        progress.epoch, progress.position, progress.done = epoch + 1, 0, stop
        progress.losses, progress.tokens, progress.slots, progress.epoch_seconds = [], 0, 0, 0.0
        progress.best_is_current = improved

    def stop_words(self) -> StopWords:
        def detail() -> str:
            progress = self.progress
            return (
                f" ({'training had finished' if progress.done else f'epoch {min(progress.epoch, self.args.epochs)}'})"
            )

        return StopWords(
            step=lambda step: f"step {step} of {self.total_steps}",
            detail=detail,
            nothing_kept="Stopped before the first training step was complete: nothing to resume. Rerun to start over.",
        )


def _classifier_steps(training: _ClassifierTraining, loop: TrainingLoop, reporter: Reporter) -> Iterator[Event]:
    """Fine-tuning as events: StepEnd after every step, EpochEnd after every epoch's validation, then TrainingEnd."""
    progress, args = training.progress, training.args
    while not progress.done:
        epoch = progress.epoch
        training.network.train()
        training.shuffler.set_state(training.batch_order)
        batches = length_grouped_batches(training.train_rows, training.encoded, args.batch_size, training.shuffler)
        resumed_at, seconds_before = time.perf_counter(), progress.epoch_seconds
        for position in range(progress.position, len(batches)):
            with loop.held():
                with loop.changing(current=progress.step + 1):
                    progress.losses.append(training.train_step(batches[position]))
                    progress.epoch_seconds = seconds_before + time.perf_counter() - resumed_at
                    progress.position = position + 1
                    progress.step += 1
                    progress.best_is_current = False
                info = f"epoch {epoch}/{args.epochs} loss {np.mean(progress.losses[-50:]):.4f}"
                yield StepEnd(progress.step, info, hook=(epoch, progress.step))

        # A Ctrl-C during validation stops at once: it changes nothing that a checkpoint holds.
        scores = training.validate()
        with loop.held():
            with loop.changing(current=progress.step + 1):
                training.end_epoch(scores, reporter)
            yield EpochEnd(epoch)
    yield TrainingEnd()


def _set_up_training(
    model, encoded, targets, train_rows, validation_rows, label_names, args, device, pad_token_id, processes
) -> _ClassifierTraining:
    """The loss, AdamW (fused; no decay on biases and LayerNorm), the warmup + linear schedule, mixed precision
    on a GPU and the seeded batch order (the same in every process: they split the same batches)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    weights = _class_weights([targets[i] for i in train_rows], len(label_names)) if args.class_weights else None
    weight = torch.tensor(weights, dtype=torch.float32, device=device) if weights else None
    loss_function = torch.nn.CrossEntropyLoss(weight=weight)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    parameters = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in parameters if not n.endswith(no_decay)], "weight_decay": args.weight_decay},
            {"params": [p for n, p in parameters if n.endswith(no_decay)], "weight_decay": 0.0},
        ],
        lr=args.learning_rate,
        # One kernel for all parameters instead of a loop of tensor ops: on the base shape the epoch of
        # bench/training_speed.py took 221 s instead of 258 s on 2 CPU cores (what Trainer uses by default).
        fused=torch.device(device).type in ("cpu", "cuda") or None,
    )
    total_steps = math.ceil(len(train_rows) / args.batch_size) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * args.warmup_ratio), total_steps)
    amp_dtype = training_precision(device, args.precision)
    shuffler = torch.Generator().manual_seed(args.seed)
    return _ClassifierTraining(
        model=model,
        network=processes.prepare(model),
        processes=processes,
        encoded=encoded,
        targets=targets,
        train_rows=train_rows,
        validation_rows=validation_rows,
        label_names=label_names,
        args=args,
        device=device,
        pad_token_id=pad_token_id,
        loss_function=loss_function,
        summed_loss=torch.nn.CrossEntropyLoss(weight=weight, reduction="sum"),
        class_weights=weights,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16),
        amp_dtype=amp_dtype,
        shuffler=shuffler,
        batch_order=shuffler.get_state(),
        total_steps=total_steps,
        packed=can_pack_classifier(model, device, processes.world_size),
    )


def train_classifier(
    model,
    encoded: list[list[int]],
    targets: list[int],
    train_rows: list[int],
    validation_rows: list[int],
    label_names: list[str],
    args: FinetuneArguments,
    device: str,
    pad_token_id: int,
    reporter: Reporter = SILENT,
    *,
    checkpoint: Checkpoint | None = None,
    saved: dict | None = None,
    on_step: Callable[[int, int], None] | None = None,
    processes: Processes | None = None,
) -> tuple[FinetuneProgress, BestEpoch, dict]:
    """The training loop. Returns the run's progress (its per-epoch history, how often it was resumed), the
    best epoch with its weights (now in `model`), and its calibration on the validation split (the temperature,
    `calibration.calibration_record`).

    With `checkpoint`, it saves one after every epoch and on Ctrl-C (then raises Interrupted); with `saved` (the
    checkpoint's training.json, read) it first restores it. `on_step(epoch, step)` is called after every step.
    With `processes` (several: see distributed.py) each trains on its part of every batch.
    """
    processes = processes or Processes(device)
    training = _set_up_training(
        model, encoded, targets, train_rows, validation_rows, label_names, args, device, pad_token_id, processes
    )
    if saved is not None:
        checkpoint.restore(saved, training.stored())
        finished = " (training had finished: writing the model)" if training.progress.done else ""
        reporter.message(
            f"Resuming from {checkpoint.folder} at step {training.progress.step} of {training.total_steps}{finished}"
        )
    loop = TrainingLoop(
        "Training",
        training.total_steps,
        step=training.progress.step,
        resumed=saved is not None,
        save=None if checkpoint is None else lambda: checkpoint.save(training.stored(), processes),
        checkpoint_folder=None if checkpoint is None else checkpoint.folder,
        words=training.stop_words(),
        reporter=reporter,
        on_step=on_step,
        save_after_epoch=True,
        processes=processes,
    )
    loop.run(_classifier_steps(training, loop, reporter))
    model.load_state_dict(training.best.weights)
    # after the best epoch is chosen, on the same split (Guo et al. 2017): the temperature keeps every label
    calibration = calibration_record(*training.validation_probabilities())
    return training.progress, training.best, calibration


# --------------------------------------------------------------------------------------- the trainers


@dataclass
class Fitted:
    """What a trainer's fit leaves for the model folder's metadata."""

    history: list[dict]
    best: BestEpoch
    calibration: dict  # calibration.calibration_record on the validation split
    truncated: int = 0  # reviews cut at the maximum length


class ClassifierTrainer(Protocol):
    """One way of training a classifier (transformer fine-tuning, TF-IDF): what `finetune` calls, in order."""

    model_type: str
    name_part: str  # the base's part of a default model name
    picks_an_epoch: bool  # whether validation also chooses the best epoch

    def load_base(self) -> None:
        """Load what can fail before the data is read (a base offline, a folder that does not exist)."""

    def place(
        self, output_dir: Path | None, name: str | None, models_dir: Path, data_path: Path, resume: bool, force: bool
    ) -> Path:
        """The model folder (`output_dir` where the user named it): find a checkpoint to resume, refuse to
        overwrite without --force."""

    def check(self, warnings: list[str]) -> None:
        """Add the warnings about the base and the options (said before training)."""

    def prepare(self, data: TrainingData, label_names: list[str]) -> None:
        """Build the model (and restore a checkpoint)."""

    def describe(self, label_names: list[str], split: tuple[list[int], list[int]]) -> str:
        """The line that says what is trained on what."""

    def fit(self, data: TrainingData, label_names: list[str], split: tuple[list[int], list[int]]) -> Fitted:
        """Train, select and keep the model to write."""

    def write(self, folder: Path) -> dict | None:
        """Write the model files into `folder`; return extra metadata (digests)."""

    def metadata(self) -> dict:
        """The model-specific part of rs_meta.json: base, training arguments, device…"""

    def interrupted_before(self) -> str | None:
        """The message for Ctrl-C before training is done (None: a plain KeyboardInterrupt)."""

    def interrupted_saving(self) -> str | None:
        """The message for Ctrl-C while the model folder is saved (None: a plain KeyboardInterrupt)."""

    def finish(self) -> None:
        """The model folder is saved: delete what the run kept to resume."""


def _output_dir(output_dir: Path | None, name: str | None, models_dir: Path, name_part: str, data_path: Path) -> Path:
    return Path(output_dir) if output_dir else models_dir / (name or default_model_name(name_part, data_path))


def _refuse_existing(output_dir: Path, force: bool) -> None:
    if output_dir.exists() and not force:
        raise RsError(f"{output_dir} already exists. Pass --name with another name, or --force to replace it.")


class TransformerTrainer:
    """Fine-tunes a transformer base; keeps a checkpoint beside the model folder to resume (module docstring)."""

    model_type = TRANSFORMER
    picks_an_epoch = True

    def __init__(
        self,
        base: ResolvedBase,
        args: FinetuneArguments,
        processes: Processes,
        reporter: Reporter = SILENT,
        on_step: Callable[[int, int], None] | None = None,
    ):
        self.base, self.args, self.processes = base, args, processes
        self.reporter, self.on_step = reporter, on_step
        self.name_part = base.alias or Path(base.source).name
        self.resume = False
        self.precision = training_precision(processes.device, args.precision)  # before anything slow: it can fail

    def load_base(self) -> None:
        self.tokenizer, self.config = load_base_tokenizer_and_config(self.base)

    def place(self, output_dir, name, models_dir, data_path, resume, force) -> Path:
        # the main process decides (a default name holds the time) and clears; the others take its answer
        output_dir, self.checkpoint_dir, self.resume = self.processes.on_main(
            lambda: self._place(output_dir, name, models_dir, data_path, resume, force)
        )
        return output_dir

    def _place(self, output_dir, name, models_dir, data_path, resume, force) -> tuple[Path, Path, bool]:
        name_given = name is not None or output_dir is not None
        default_checkpoint = None if name_given else _default_named_checkpoint(models_dir, self.name_part, data_path)
        if default_checkpoint is not None and resume:
            output_dir = default_checkpoint.with_name(default_checkpoint.name.removesuffix(CHECKPOINT_SUFFIX))
        output_dir = _output_dir(output_dir, name, models_dir, self.name_part, data_path)
        checkpoint_dir = default_checkpoint if default_checkpoint is not None else checkpoint_dir_for(output_dir)
        looked = None
        if recover_checkpoint(checkpoint_dir):
            if not (resume or force):
                raise left_a_checkpoint(checkpoint_dir)
            if not resume:
                delete_checkpoint(checkpoint_dir)
                checkpoint_dir = checkpoint_dir_for(output_dir)
        elif resume:
            looked = (
                checkpoint_dir
                if default_checkpoint is not None or name_given
                else models_dir / (_default_name_prefix(self.name_part, data_path) + "*" + CHECKPOINT_SUFFIX)
            )
            resume = False
        _refuse_existing(output_dir, force)
        if looked is not None:
            self.reporter.message(nothing_to_resume(looked))
        return output_dir, checkpoint_dir, resume

    def check(self, warnings: list[str]) -> None:
        expected = expected_vocab_size(self.base)
        if expected and self.config.vocab_size != expected:
            warnings.append(
                f"{self.base.source} has vocabulary {self.config.vocab_size}, expected {expected} for --base "
                f"{self.base.alias}: check the revision."
            )
        self.max_length = clamp_max_length(self.args.max_length, self.tokenizer, self.config, warnings)

    def prepare(self, data: TrainingData, label_names: list[str]) -> None:
        import torch
        from transformers import set_seed

        processes = self.processes
        self.device = processes.device
        precision = self.precision
        base, config = self.base, self.config
        fingerprint = {
            "data": data.fingerprint(),
            "labels": label_names,
            "training_args": self.args.to_dict(),
            "base": {"source": base.source, "revision": base.revision, "commit": getattr(config, "_commit_hash", None)},
            "max_length": self.max_length,
            "device": torch.device(self.device).type,
            "precision": precision_name(precision),
        }
        if processes.world_size > 1:  # each process's dropout is in the checkpoint: resume with as many
            fingerprint["processes"] = processes.world_size
        self.checkpoint = finetune_checkpoint(self.checkpoint_dir, fingerprint)
        self.saved = self.checkpoint.read() if self.resume else None  # a mismatch fails before the weights load

        set_seed(self.args.seed)  # before the classifier head is initialized
        label_ids = {label: i for i, label in enumerate(label_names)}
        self.model = load_base_weights(
            base, num_labels=len(label_names), id2label=dict(enumerate(label_names)), label2id=label_ids
        )
        self.model.config.problem_type = "single_label_classification"
        if processes.rank:  # the same head everywhere (above), but each process its own dropout
            set_seed(self.args.seed + processes.rank)
        use_fast_attention(self.model, self.device)
        # in bf16 autocast sends the Linear layers to oneDNN's bf16 kernels (AMX, AVX512-BF16); fp32 ones skip that
        use_fast_training_kernels(self.model, self.device, processes.world_size, linear=precision is None)
        use_cheap_dropout(self.model, self.device)
        self.model.to(self.device)
        self.encoded = self.tokenizer(data.texts, truncation=True, max_length=self.max_length)["input_ids"]
        self.targets = [label_ids[label] for label in data.labels]

    def describe(self, label_names, split) -> str:
        revision = " @ " + self.base.revision if self.base.revision else ""
        spread = self.processes.describe()
        return (
            f"Base: {self.base.source}{revision} · labels {label_names} · train {len(split[0])} / validation "
            f"{len(split[1])} · max length {self.max_length} · {self.device} {precision_name(self.precision)}"
            f"{' · ' + spread if spread else ''}"
        )

    def fit(self, data, label_names, split) -> Fitted:
        progress, best, calibration = train_classifier(
            self.model,
            self.encoded,
            self.targets,
            *split,
            label_names,
            self.args,
            self.device,
            self.tokenizer.pad_token_id,
            self.reporter,
            checkpoint=self.checkpoint,
            saved=self.saved,
            on_step=self.on_step,
            processes=self.processes,
        )
        self.model.to("cpu")
        self.resumes = progress.resumes
        truncated = sum(len(ids) >= self.max_length for ids in self.encoded)
        return Fitted(progress.history, best, calibration, truncated)

    def write(self, folder: Path) -> dict | None:
        return save_transformer(self.model, self.tokenizer)(folder)

    def metadata(self) -> dict:
        return {
            "max_length": self.max_length,
            "base": {
                **self.base.to_dict(),
                "commit": getattr(self.config, "_commit_hash", None),
                "vocab_size": self.config.vocab_size,
                "model_type": self.config.model_type,
            },
            "training_args": self.args.to_dict(),
            "device": self.device,
            "precision": precision_name(self.precision),  # what --precision (auto by default) was on this machine
            **({"processes": self.processes.world_size} if self.processes.world_size > 1 else {}),
            "resumed": self.resumes,
        }

    def interrupted_before(self) -> str | None:
        return before_resume(self.checkpoint_dir) if self.resume else None  # the checkpoint is untouched

    def interrupted_saving(self) -> str | None:
        return while_writing("saving the model", self.checkpoint_dir, "the model")

    def finish(self) -> None:
        delete_checkpoint(self.checkpoint_dir)


class TfidfTrainer:
    """Fits the TF-IDF + logistic-regression baseline: seconds on a CPU, no epochs, no checkpoint."""

    model_type = TFIDF
    name_part = TFIDF
    picks_an_epoch = False

    def __init__(self, args: FinetuneArguments, reporter: Reporter = SILENT):
        self.args, self.reporter = args, reporter

    def load_base(self) -> None:
        pass

    def place(self, output_dir, name, models_dir, data_path, resume, force) -> Path:
        if resume:
            self.reporter.message(
                "The TF-IDF baseline trains in seconds and keeps no checkpoint: --resume trains it again."
            )
        output_dir = _output_dir(output_dir, name, models_dir, TFIDF, data_path)
        _refuse_existing(output_dir, force)
        return output_dir

    def check(self, warnings: list[str]) -> None:
        pass

    def prepare(self, data: TrainingData, label_names: list[str]) -> None:
        pass

    def describe(self, label_names, split) -> str:
        return (
            f"Base: TF-IDF + logistic regression · labels {label_names} · train {len(split[0])} / "
            f"validation {len(split[1])}"
        )

    def fit(self, data, label_names, split) -> Fitted:
        from review_sentiment.baseline import TfidfClassifier, TfidfSettings

        train_rows, validation_rows = split
        self.settings = TfidfSettings()
        fit_started = time.perf_counter()
        self.classifier = TfidfClassifier.fit(
            [data.texts[i] for i in train_rows], [data.labels[i] for i in train_rows], label_names, self.settings
        )
        fit_seconds = time.perf_counter() - fit_started
        probabilities = self.classifier.predict_proba([data.texts[i] for i in validation_rows])
        gold = [label_names.index(data.labels[i]) for i in validation_rows]
        scores = _scores(gold, probabilities.argmax(axis=1).tolist(), label_names)
        self.reporter.message(f"Fitted in {fit_seconds:.1f}s")
        history = [{**scores, "fit_seconds": round(fit_seconds, 1)}]  # one fit: no epochs
        best = BestEpoch(None, scores["accuracy"], scores["macro_f1"])
        return Fitted(history, best, calibration_record(probabilities, gold))

    def write(self, folder: Path) -> dict | None:
        from review_sentiment.baseline import WEIGHTS_FILE, weights_digest

        self.classifier.save(folder)
        return {"weights_sha256": weights_digest(folder / WEIGHTS_FILE)}

    def metadata(self) -> dict:
        return {
            "base": {"name": TFIDF, "source": "TF-IDF (char_wb + word n-grams) + logistic regression"},
            "training_args": {
                "tfidf": self.settings.to_dict(),
                "validation_fraction": self.args.validation_fraction,
                "seed": self.args.seed,
            },
            "features": {"char": len(self.classifier.char.vocabulary_), "word": len(self.classifier.word.vocabulary_)},
            "device": "cpu",
        }

    def interrupted_before(self) -> str | None:
        return None

    def interrupted_saving(self) -> str | None:
        return None

    def finish(self) -> None:
        pass


# --------------------------------------------------------------------------------------- the command


def finetune(
    data_path: str | Path | None,
    base_name: str,
    args: FinetuneArguments | None = None,
    *,
    base_revision: str | None = None,
    name: str | None = None,
    output_dir: str | Path | None = None,
    models_dir: str | Path = MODELS_DIR,
    force: bool = False,
    reading: ReadOptions = ReadOptions(),
    labels: LabelOptions = LabelOptions(),
    processed_dir: str | Path = PROCESSED_DIR,
    device: str | None = None,
    reporter: Reporter = SILENT,
    resume: bool = False,
    on_step: Callable[[int, int], None] | None = None,
) -> FinetuneResult:
    """Train a classifier on labeled reviews: fine-tune `base_name` (keeping the best epoch by validation
    macro-F1), or with `base_name="tfidf"` fit the TF-IDF + logistic-regression baseline.

    Fine-tuning keeps a checkpoint in `<output_dir>.rs-checkpoint/` (see the module docstring); `resume`
    continues from it (or starts afresh, with a note, when there is none), `force` deletes it and starts over.
    Ctrl-C raises Interrupted, a KeyboardInterrupt whose message says how to continue. `on_step(epoch,
    step)` is called after every training step (tests use it to interrupt a run at a known point).
    """
    started = time.perf_counter()
    args = args or FinetuneArguments()
    silence_library_logs()
    warnings: list[str] = []

    if name is not None and (not name.strip() or Path(name).name != name or name in (".", "..")):
        raise RsError(f"--name {name!r} must be a plain folder name (no / or ..); use --output for another place.")
    # What can fail without reading the data fails first: the base (offline, a folder that does not exist),
    # the data file's name, the output folder. Reading and normalizing a large file takes minutes.
    trainer: ClassifierTrainer
    if base_name.lower() == TFIDF:
        if launched_world_size() > 1:
            raise RsError("The TF-IDF baseline trains in one process: run it without torchrun / accelerate launch.")
        processes = Processes("cpu")
        trainer = TfidfTrainer(args, reporter)
    else:
        base = resolve_base(base_name, base_revision)
        processes = training_processes(device)
        reporter = reporter if processes.is_main else SILENT  # one process reports
        trainer = TransformerTrainer(base, args, processes, reporter, on_step)
    data_path = training_data_path(data_path, processed_dir)
    if isinstance(labels.rating_bins, str):
        RatingBins.parse(labels.rating_bins, labels.rating_scale or 10)  # its spelling, at once
    trainer.load_base()
    output_dir = trainer.place(output_dir, name, Path(models_dir), data_path, resume, force)

    data = load_training_data(
        data_path,
        reading=reading,
        labels=labels,
        processed_dir=processed_dir,
        reporter=reporter,
    )
    label_names = sort_labels(data.labels)
    if len(label_names) < 2:
        found = f"only {label_names[0]!r}" if label_names else "no labeled rows"
        raise RsError(f"Training needs at least two classes; {data.path} has {found} ({data.label_source}).")
    split = stratified_split(data.labels, args.validation_fraction, args.seed)
    if len(split[1]) < 30:
        warnings.append(
            f"Only {len(split[1])} reviews are held out for validation: the reported scores"
            f"{' and the choice of the best epoch' if trainer.picks_an_epoch else ''} are noisy. More labeled data "
            "(or --validation-fraction) helps."
        )
    counts = ", ".join(f"{label} {data.labels.count(label):,}" for label in label_names)
    reporter.message(
        f"{len(data.texts):,} labeled reviews ({counts}); skipped: {data.unlabeled_note}, "
        f"{data.rows_empty_text} with empty text"
    )

    with interrupted_as(trainer.interrupted_before()):
        trainer.check(warnings)
        for warning in warnings:
            reporter.warning(warning)
        trainer.prepare(data, label_names)
        reporter.message(trainer.describe(label_names, split))
        fitted = trainer.fit(data, label_names, split)

    data_info = _data_info(data, label_names, split, fitted.truncated)
    best = fitted.best
    metrics = {
        "best_epoch": best.epoch,
        "accuracy": best.accuracy,
        "macro_f1": best.macro_f1,
        "selected_on": "validation macro-F1",
        "history": fitted.history,
    }
    seconds = round(time.perf_counter() - started, 1)
    meta = {
        "name": output_dir.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "review-sentiment",
        "model_type": trainer.model_type,
        "labels": label_names,
        "normalization": data.recipe.to_dict(),
        **trainer.metadata(),
        "data": data_info,
        "metrics": metrics,
        "calibration": fitted.calibration,
        "train_seconds": seconds,
        "warnings": warnings,
        "library_versions": library_versions(),
    }
    with interrupted_as(trainer.interrupted_saving()):  # the other processes wait for the main one's folder
        processes.on_main(lambda: save_model_folder(trainer.write, meta, output_dir, force=force))
    processes.on_main(trainer.finish)
    return FinetuneResult(
        output_dir, label_names, best.epoch, metrics, fitted.history, data_info, warnings, seconds, fitted.calibration
    )


def _data_info(data: TrainingData, label_names: list[str], split: tuple[list[int], list[int]], truncated: int) -> dict:
    """The data part of rs_meta.json."""
    return {
        "path": str(data.path),
        "fingerprint": data.fingerprint(),
        "text_column": data.text_column,
        "label_source": data.label_source,
        "rating_scale": data.rating_scale,  # rs evaluate bins ratings on the same scale
        "rating_bins": data.rating_bins,  # ... and into the same classes
        "from_preprocess": data.from_preprocess,
        "rows_total": data.rows_total,
        "rows_used": len(data.texts),
        "rows_unlabeled": data.rows_unlabeled,
        "rows_empty_text": data.rows_empty_text,
        "rows_train": len(split[0]),
        "rows_validation": len(split[1]),
        "label_counts": {label: data.labels.count(label) for label in label_names},
        "truncated": truncated,
    }
