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
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from review_sentiment.bases import (
    expected_vocab_size,
    load_base_tokenizer_and_config,
    load_base_weights,
    resolve_base,
)
from review_sentiment.checkpoints import (
    RESUME_HINT,
    STATE_FILE,
    TENSORS_FILE,
    InterruptGuard,
    argument_differences,
    check_fingerprint,
    check_format,
    damaged,
    delete_checkpoint,
    join_optimizer_state,
    recover_checkpoint,
    split_optimizer_state,
    write_atomically,
    write_state,
)
from review_sentiment.config import FinetuneArguments
from review_sentiment.console import console, progress_bar
from review_sentiment.errors import Interrupted, RsError
from review_sentiment.inference import batched_probabilities, pad_batch, pick_device, use_fast_attention
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
from review_sentiment.normalize import NormalizationRecipe, ReviewNormalizer
from review_sentiment.reporting import silence_library_logs


@dataclass
class LabelOptions:
    """Where the gold labels are: a label column, or a star-rating column with its scale and bins."""

    label_col: str | None = None
    rating_col: str | None = None
    rating_scale: int | None = None
    rating_bins: str | None = None


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


def training_data_path(data_path: str | Path | None, processed_dir: str | Path = PROCESSED_DIR) -> Path:
    """The file to train on: `data_path`, or the one `rs preprocess` wrote last."""
    path = (Path(data_path) if data_path else latest_processed_file(processed_dir)).resolve()
    if not path.exists():
        raise RsError(f"No such file: {data_path or path}")
    return path


def load_training_data(
    data_path: str | Path | None,
    *,
    text_col: str | None = None,
    label_options: LabelOptions | None = None,
    processed_dir: str | Path = PROCESSED_DIR,
    encoding: str | None = None,
    sheet: str | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> TrainingData:
    """Read labeled reviews. A file from `rs preprocess` brings its normalized column and recipe; any other
    file is normalized here with the default recipe. Which text and label columns are used (and any warning
    about them) is said before the normalization starts."""
    label_options = label_options or LabelOptions()
    path = training_data_path(data_path, processed_dir)
    table = read_reviews(path, encoding, sheet)
    sidecar = read_sidecar(path)
    from_preprocess = bool(sidecar) and sidecar.get("normalized_column") in table.columns and text_col is None
    if from_preprocess:
        recipe = NormalizationRecipe.from_dict(sidecar["recipe"])
        choice = choose_text_column(table.columns, table.head(SAMPLE_ROWS), sidecar["text_column"])
        choice.reason = "the column `rs preprocess` normalized"
    else:
        recipe = NormalizationRecipe()
        choice = choose_text_column(table.columns, table.head(SAMPLE_ROWS), text_col)
    gold = read_gold_labels(
        table,
        label_options.label_col,
        label_options.rating_col,
        label_options.rating_scale,
        label_options.rating_bins,
    )
    say(f"Data: {path} — {len(table):,} rows · text column {choice.describe()} · labels from the {gold.source}")
    for warning in [*choice.warnings, *gold.warnings]:
        say(f"[yellow]Warning:[/] {warning}")
    if from_preprocess:
        normalized = table[sidecar["normalized_column"]].tolist()
    else:
        normalized = ReviewNormalizer(recipe).normalize(table[choice.name].tolist(), "Normalizing")
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
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    limit = min(int(x) for x in limits if x and x < 1_000_000)
    if requested > limit:
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
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return _default_name_prefix(base_part, data_path) + stamp


def _default_name_prefix(base_part: str, data_path: Path) -> str:
    return re.sub(r"[^\w.-]+", "-", f"{base_part}-{table_stem(data_path)}-")


def _default_named_checkpoint(models_dir: Path, base_part: str, data_path: Path) -> Path | None:
    """The newest checkpoint of a run that chose its default name (BASE-DATA-TIME) for this base and data, so
    that rerunning the same command finds it although the time in the name has moved on."""
    prefix = _default_name_prefix(base_part, data_path)
    stamp = re.compile(re.escape(prefix) + r"\d{8}-\d{6}" + re.escape(CHECKPOINT_SUFFIX))
    found = set()
    for path in models_dir.glob(f"*{prefix}*{CHECKPOINT_SUFFIX}*"):
        name = path.name.removeprefix(".").removesuffix(".old")
        if stamp.fullmatch(name) and (path.name == name or path.name == f".{name}.old"):
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


def checkpoint_dir_for(output_dir: str | Path) -> Path:
    """Where fine-tuning into `output_dir` keeps its checkpoint: a sibling folder, never inside the model."""
    output_dir = Path(output_dir)
    return output_dir.with_name(output_dir.name + CHECKPOINT_SUFFIX)


def _weights_on_cpu(model) -> dict:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def _precision(device: str):
    """The autocast dtype fine-tuning uses on `device` (None: fp32)."""
    import torch

    if not device.startswith("cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@dataclass
class TrainingCheckpoint:
    """The resumable state of one fine-tuning run (the module docstring lists the files)."""

    folder: Path
    fingerprint: dict  # what must match to resume
    resume: bool = False  # restore it before training
    resumes: int = 0  # how often this run was resumed, once restored

    def read(self) -> dict:
        """The checkpoint's training.json, checked against this run's fingerprint."""
        path = self.folder / STATE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8
            raise damaged(self.folder, error) from None
        check_format(self.folder, state, CHECKPOINT_FORMAT)
        check_fingerprint(self.folder, _fingerprint_difference(state.get("fingerprint", {}), self.fingerprint))
        return state

    def save(self, model, optimizer, scheduler, scaler, batch_order, run: dict, best: dict) -> None:
        """Write the checkpoint into a hidden sibling, then swap it in for the previous one."""
        import numpy
        import torch
        from safetensors.torch import save_file, save_model

        with write_atomically(self.folder) as staging:
            save_model(model, str(staging / _CHECKPOINT_MODEL))
            best_weights = None
            if "state" in best:
                best_weights = "model" if run["best_is_current"] else "best"
                if best_weights == "best":
                    save_file(best["state"], str(staging / _CHECKPOINT_BEST))
            optimizer_tensors, optimizer_state = split_optimizer_state(optimizer.state_dict())
            tensors = {"rng.torch": torch.get_rng_state(), "rng.batch_order": batch_order}
            if self.fingerprint["device"] == "cuda":
                for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
                    tensors[f"rng.cuda.{index}"] = cuda_state
            save_file({**tensors, **optimizer_tensors}, str(staging / TENSORS_FILE))
            numpy_state = numpy.random.get_state()
            state = {
                "run": run,
                "best": {key: value for key, value in best.items() if key != "state"},
                "best_weights": best_weights,
                "optimizer": optimizer_state,
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "python_rng": random.getstate(),
                "numpy_rng": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
            }
            write_state(staging, CHECKPOINT_FORMAT, self.fingerprint, state)
            (staging / "README.txt").write_text(
                "Checkpoint of an interrupted `rs finetune` run: not a model, `rs predict` cannot use it.\n"
                f"To continue, {RESUME_HINT}; to start over, rerun it with --force (deletes this folder).\n"
                "It is deleted when the model folder is saved.\n",
                encoding="utf-8",
            )

    def restore(self, model, optimizer, scheduler, scaler):
        """Load the checkpoint into the freshly built model, optimizer, scheduler and scaler, and restore the RNG
        states. Returns (batch-order generator state, run counters, best)."""
        import numpy
        import torch
        from safetensors.torch import load_file, load_model

        state = self.read()
        try:
            load_model(model, str(self.folder / _CHECKPOINT_MODEL), device=str(next(model.parameters()).device))
            tensors = load_file(str(self.folder / TENSORS_FILE))
            best = dict(state["best"])
            if state["best_weights"] == "model":
                best["state"] = _weights_on_cpu(model)
            elif state["best_weights"] == "best":
                best["state"] = load_file(str(self.folder / _CHECKPOINT_BEST))
        except (OSError, RuntimeError, KeyError) as error:
            raise damaged(self.folder, error) from None
        optimizer.load_state_dict(join_optimizer_state(tensors, state["optimizer"]))
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(tensors["rng.torch"])
        cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(len(tensors)) if f"rng.cuda.{i}" in tensors]
        if cuda_states:
            torch.cuda.set_rng_state_all(cuda_states)
        random.setstate((state["python_rng"][0], tuple(state["python_rng"][1]), state["python_rng"][2]))
        name, keys, *rest = state["numpy_rng"]
        numpy.random.set_state((name, numpy.array(keys, dtype=numpy.uint32), *rest))
        run = state["run"]
        run["resumes"] = self.resumes = run.get("resumes", 0) + 1
        return tensors["rng.batch_order"], run, best


def _fingerprint_difference(saved: dict, current: dict) -> str:
    """What differs between a checkpoint's fingerprint and this run's, in words ('' when nothing does)."""
    differences = []
    for key in [*current, *(key for key in saved if key not in current)]:
        old, new = saved.get(key), current.get(key)
        if old == new:
            continue
        if key == "data":
            differences.append("the training data differs (another file, rows, labels or normalization)")
        elif key == "training_args" and isinstance(old, dict) and isinstance(new, dict):
            differences.extend(argument_differences(old, new, _OPTION_NAMES))
        else:
            differences.append(f"{key.replace('_', ' ')} was {old} there, {new} now")
    return "; ".join(differences)


# --------------------------------------------------------------------------------------- training loop


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
    say=print,
    *,
    checkpoint: TrainingCheckpoint | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[list[dict], dict]:
    """The training loop. Returns the per-epoch history and the best epoch's scores and weights ("state").

    With `checkpoint`, it saves one after every epoch and on Ctrl-C (then raises Interrupted), and
    first restores it when `checkpoint.resume`. `on_step(epoch, step)` is called after every completed step.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    weights = _class_weights([targets[i] for i in train_rows], len(label_names)) if args.class_weights else None
    loss_function = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device) if weights else None
    )
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    parameters = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in parameters if not n.endswith(no_decay)], "weight_decay": args.weight_decay},
            {"params": [p for n, p in parameters if n.endswith(no_decay)], "weight_decay": 0.0},
        ],
        lr=args.learning_rate,
    )
    total_steps = math.ceil(len(train_rows) / args.batch_size) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * args.warmup_ratio), total_steps)
    amp_dtype = _precision(device)
    use_amp = amp_dtype is not None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    generator = torch.Generator().manual_seed(args.seed)
    validation_gold = [targets[i] for i in validation_rows]

    # Everything below that changes during training is in `run`, `best`, `batch_order` (the generator's state
    # before the current epoch drew its batches), the model, optimizer, scheduler, scaler and the RNGs.
    run: dict = {
        "epoch": 1,  # the epoch being trained
        "position": 0,  # its batches done
        "step": 0,  # all batches done
        "done": False,
        "losses": [],  # this epoch's
        "tokens": 0,
        "slots": 0,
        "epoch_seconds": 0.0,
        "history": [],
        "epochs_without_improvement": 0,
        "best_is_current": False,
        "resumes": 0,
    }
    best: dict = {"macro_f1": -1.0}
    batch_order = generator.get_state()
    if checkpoint is not None and checkpoint.resume:
        batch_order, run, best = checkpoint.restore(model, optimizer, scheduler, scaler)
        finished = " (training had finished: writing the model)" if run["done"] else ""
        say(f"Resuming from {checkpoint.folder} at step {run['step']} of {total_steps}{finished}")
    saved_at = run["step"] if checkpoint is not None and checkpoint.resume else None  # step of the last checkpoint
    consistent = True  # whether model, optimizer, RNGs and `run` describe one moment of training
    unsaved = False  # whether that moment is newer than the last checkpoint
    guard = InterruptGuard(say)

    def save() -> None:
        nonlocal saved_at, unsaved
        checkpoint.save(model, optimizer, scheduler, scaler, batch_order, run, best)
        saved_at, unsaved = run["step"], False

    try:
        with guard.installed(), progress_bar() as progress:
            task = progress.add_task("Training", total=total_steps, completed=run["step"], info="", start=run["step"])
            while not run["done"]:
                epoch = run["epoch"]
                model.train()
                generator.set_state(batch_order)
                batches = length_grouped_batches(train_rows, encoded, args.batch_size, generator)
                resumed_at, seconds_before = time.perf_counter(), run["epoch_seconds"]
                for position in range(run["position"], len(batches)):
                    rows = batches[position]
                    with guard.hold():
                        consistent = unsaved = False
                        ids, mask = pad_batch([encoded[r] for r in rows], pad_token_id)
                        gold = torch.tensor([targets[r] for r in rows], device=device)
                        with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                        loss = loss_function(logits.float(), gold)
                        optimizer.zero_grad(set_to_none=True)
                        scaler.scale(loss).backward()
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        scaler.step(optimizer)
                        scaler.update()
                        scheduler.step()
                        run["losses"].append(loss.item())
                        run["tokens"] += int(mask.sum())
                        run["slots"] += mask.numel()
                        run["epoch_seconds"] = seconds_before + time.perf_counter() - resumed_at
                        run["position"] = position + 1
                        run["step"] += 1
                        run["best_is_current"] = False
                        consistent = unsaved = True
                        progress.update(
                            task,
                            advance=1,
                            info=f"epoch {epoch}/{args.epochs} loss {np.mean(run['losses'][-50:]):.4f}",
                        )
                        if on_step:
                            on_step(epoch, run["step"])

                # A Ctrl-C during validation stops at once: it changes nothing that a checkpoint holds.
                model.eval()
                with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                    probabilities = batched_probabilities(
                        model, [encoded[i] for i in validation_rows], pad_token_id, batch_size=64, device=device
                    )
                scores = _scores(validation_gold, probabilities.argmax(axis=1).tolist(), label_names)
                with guard.hold():
                    consistent = unsaved = False
                    history = run["history"]
                    history.append(
                        {
                            "epoch": epoch,
                            "train_loss": round(float(np.mean(run["losses"])), 4),
                            **scores,
                            "train_tokens_per_second": round(run["tokens"] / max(run["epoch_seconds"], 1e-9), 1),
                            "padding_share": round(1 - run["tokens"] / run["slots"], 4),
                        }
                    )
                    improved = scores["macro_f1"] > best["macro_f1"]
                    say(
                        f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f} · validation accuracy "
                        f"{scores['accuracy']:.4f} · macro-F1 {scores['macro_f1']:.4f}{'  (best)' if improved else ''}"
                    )
                    stop = epoch == args.epochs
                    if improved:
                        best = {"epoch": epoch, **scores, "state": _weights_on_cpu(model)}
                        run["epochs_without_improvement"] = 0
                    else:
                        run["epochs_without_improvement"] += 1
                        patience = args.early_stopping_patience
                        if patience and run["epochs_without_improvement"] >= patience:
                            say(
                                "Early stopping: no better validation macro-F1 for "
                                f"{run['epochs_without_improvement']} epochs."
                            )
                            stop = True
                    batch_order = generator.get_state()
                    run.update(
                        epoch=epoch + 1,
                        position=0,
                        done=stop,
                        losses=[],
                        tokens=0,
                        slots=0,
                        epoch_seconds=0.0,
                        best_is_current=improved,
                    )
                    consistent = unsaved = True
                    if checkpoint is not None:
                        save()
    except KeyboardInterrupt:
        if checkpoint is None:
            raise
        if consistent and unsaved and run["step"] > 0:
            save()
        epoch_part = "training had finished" if run["done"] else f"epoch {min(run['epoch'], args.epochs)}"
        if consistent and saved_at is not None:
            message = (
                f"Stopped at step {run['step']} of {total_steps} ({epoch_part}); checkpoint saved in "
                f"{checkpoint.folder}. To continue, {RESUME_HINT}."
            )
        elif saved_at is not None:
            message = (
                f"Stopped during step {run['step'] + 1} of {total_steps}; the checkpoint of step {saved_at} in "
                f"{checkpoint.folder} is kept. To continue from there, {RESUME_HINT}."
            )
        else:
            message = "Stopped before the first training step was complete: nothing to resume. Rerun to start over."
        raise Interrupted(message) from None
    return run["history"], best


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
    text_col: str | None = None,
    label_options: LabelOptions | None = None,
    processed_dir: str | Path = PROCESSED_DIR,
    device: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    quiet: bool = False,
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
    say = (lambda message: None) if quiet else console.print
    silence_library_logs()
    warnings: list[str] = []

    if name is not None and (not name.strip() or Path(name).name != name or name in (".", "..")):
        raise RsError(f"--name {name!r} must be a plain folder name (no / or ..); use --output for another place.")
    is_tfidf = base_name.lower() == TFIDF
    # What can fail without reading the data fails first: the base (offline, a folder that does not exist),
    # the data file's name, the output folder. Reading and normalizing a large file takes minutes.
    base = None if is_tfidf else resolve_base(base_name, base_revision)
    data_path = training_data_path(data_path, processed_dir)
    if label_options and isinstance(label_options.rating_bins, str):
        RatingBins.parse(label_options.rating_bins, label_options.rating_scale or 10)  # its spelling, at once
    base_files = None if is_tfidf else load_base_tokenizer_and_config(base)
    base_part = TFIDF if is_tfidf else (base.alias or Path(base.source).name)
    default_checkpoint = looked = None
    name_given = name is not None or output_dir is not None
    if not is_tfidf and not name_given:
        default_checkpoint = _default_named_checkpoint(Path(models_dir), base_part, data_path)
    if default_checkpoint is not None and resume:
        output_dir = default_checkpoint.with_name(default_checkpoint.name.removesuffix(CHECKPOINT_SUFFIX))
    name = name or default_model_name(base_part, data_path)
    output_dir = Path(output_dir) if output_dir else Path(models_dir) / name
    checkpoint_dir = (
        None if is_tfidf else (default_checkpoint if default_checkpoint is not None else checkpoint_dir_for(output_dir))
    )
    if is_tfidf:
        if resume:
            say("The TF-IDF baseline trains in seconds and keeps no checkpoint: --resume trains it again.")
    elif recover_checkpoint(checkpoint_dir):
        if not (resume or force):
            raise RsError(
                f"An interrupted run left a checkpoint in {checkpoint_dir}. Pass --resume to continue it "
                "(with the same options), or --force to start over and delete it."
            )
        if not resume:
            delete_checkpoint(checkpoint_dir)
            checkpoint_dir = checkpoint_dir_for(output_dir)
    elif resume:
        looked = (
            checkpoint_dir
            if default_checkpoint is not None or name_given
            else Path(models_dir) / (_default_name_prefix(base_part, data_path) + "*" + CHECKPOINT_SUFFIX)
        )
        resume = False
    if output_dir.exists() and not force:
        raise RsError(f"{output_dir} already exists. Pass --name with another name, or --force to replace it.")
    if looked is not None:
        say(f"No checkpoint to resume ({looked}): starting from the beginning.")

    data = load_training_data(
        data_path,
        text_col=text_col,
        label_options=label_options,
        processed_dir=processed_dir,
        encoding=encoding,
        sheet=sheet,
        say=say,
    )
    label_names = sort_labels(data.labels)
    if len(label_names) < 2:
        found = f"only {label_names[0]!r}" if label_names else "no labeled rows"
        raise RsError(f"Training needs at least two classes; {data.path} has {found} ({data.label_source}).")
    train_rows, validation_rows = stratified_split(data.labels, args.validation_fraction, args.seed)
    if len(validation_rows) < 30:
        warnings.append(
            f"Only {len(validation_rows)} reviews are held out for validation: the reported scores"
            f"{'' if is_tfidf else ' and the choice of the best epoch'} are noisy. More labeled data (or "
            "--validation-fraction) helps."
        )
    counts = ", ".join(f"{label} {data.labels.count(label):,}" for label in label_names)
    say(
        f"{len(data.texts):,} labeled reviews ({counts}); skipped: {data.unlabeled_note}, "
        f"{data.rows_empty_text} with empty text"
    )

    split = (train_rows, validation_rows)
    if is_tfidf:
        trained = _fit_tfidf(data, label_names, split, args, warnings, say)
    else:
        try:
            trained = _fine_tune_transformer(
                data, label_names, split, base, base_files, args, device, warnings, say, checkpoint_dir, resume, on_step
            )
        except Interrupted:
            raise
        except KeyboardInterrupt:  # before training started: a checkpoint being resumed is still there
            if not resume:
                raise
            raise Interrupted(
                f"Stopped before training resumed; the checkpoint in {checkpoint_dir} is kept. To continue, "
                f"{RESUME_HINT}."
            ) from None

    data_info = {
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
        "rows_train": len(train_rows),
        "rows_validation": len(validation_rows),
        "label_counts": {label: data.labels.count(label) for label in label_names},
        "truncated": trained.truncated,
    }
    best = trained.best
    metrics = {
        "best_epoch": best["epoch"],
        "accuracy": best["accuracy"],
        "macro_f1": best["macro_f1"],
        "selected_on": "validation macro-F1",
        "history": trained.history,
    }
    seconds = round(time.perf_counter() - started, 1)
    meta = {
        "name": output_dir.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "review-sentiment",
        "model_type": TFIDF if is_tfidf else TRANSFORMER,
        "labels": label_names,
        "normalization": data.recipe.to_dict(),
        **trained.meta,
        "data": data_info,
        "metrics": metrics,
        "train_seconds": seconds,
        "warnings": warnings,
        "library_versions": library_versions(),
    }
    try:
        save_model_folder(trained.write, meta, output_dir, force=force)
    except KeyboardInterrupt:
        if is_tfidf:
            raise
        raise Interrupted(
            f"Stopped while saving the model; training had finished and its checkpoint in {checkpoint_dir} is "
            f"kept. To write the model, {RESUME_HINT}."
        ) from None
    if not is_tfidf:
        delete_checkpoint(checkpoint_dir)
    return FinetuneResult(
        output_dir, label_names, best["epoch"], metrics, trained.history, data_info, warnings, seconds
    )


@dataclass
class _Trained:
    write: Callable[[Path], dict | None]  # writes the model files into a folder
    meta: dict  # model-specific metadata: base, max length, device...
    history: list[dict]
    best: dict
    truncated: int = 0


def _fine_tune_transformer(
    data, label_names, split, base, base_files, args, device, warnings, say, checkpoint_dir, resume, on_step
) -> _Trained:
    import torch
    from transformers import set_seed

    train_rows, validation_rows = split
    tokenizer, config = base_files
    expected = expected_vocab_size(base)
    if expected and config.vocab_size != expected:
        warnings.append(
            f"{base.source} has vocabulary {config.vocab_size}, expected {expected} for --base "
            f"{base.alias}: check the revision."
        )
    max_length = clamp_max_length(args.max_length, tokenizer, config, warnings)
    for warning in warnings:
        say(f"[yellow]Warning:[/] {warning}")
    device = pick_device(device)
    precision = _precision(device)
    checkpoint = TrainingCheckpoint(
        checkpoint_dir,
        {
            "data": data.fingerprint(),
            "labels": label_names,
            "training_args": args.to_dict(),
            "base": {"source": base.source, "revision": base.revision, "commit": getattr(config, "_commit_hash", None)},
            "max_length": max_length,
            "device": torch.device(device).type,
            "precision": str(precision).removeprefix("torch.") if precision else "fp32",
        },
        resume,
    )
    if resume:
        checkpoint.read()  # a mismatch fails before the weights are loaded

    set_seed(args.seed)  # before the classifier head is initialized
    label_ids = {label: i for i, label in enumerate(label_names)}
    model = load_base_weights(
        base, num_labels=len(label_names), id2label=dict(enumerate(label_names)), label2id=label_ids
    )
    model.config.problem_type = "single_label_classification"
    use_fast_attention(model, device)
    model.to(device)

    encoded = tokenizer(data.texts, truncation=True, max_length=max_length)["input_ids"]
    targets = [label_ids[label] for label in data.labels]
    say(
        f"Base: {base.source}{' @ ' + base.revision if base.revision else ''} · labels {label_names} · "
        f"train {len(train_rows)} / validation {len(validation_rows)} · max length {max_length} · {device}"
    )
    history, best = train_classifier(
        model,
        encoded,
        targets,
        train_rows,
        validation_rows,
        label_names,
        args,
        device,
        tokenizer.pad_token_id,
        say,
        checkpoint=checkpoint,
        on_step=on_step,
    )
    model.load_state_dict(best.pop("state"))
    model.to("cpu")
    meta = {
        "max_length": max_length,
        "base": {
            **base.to_dict(),
            "commit": getattr(config, "_commit_hash", None),
            "vocab_size": config.vocab_size,
            "model_type": config.model_type,
        },
        "training_args": args.to_dict(),
        "device": device,
        "resumed": checkpoint.resumes,
    }
    truncated = sum(len(ids) >= max_length for ids in encoded)
    return _Trained(save_transformer(model, tokenizer), meta, history, best, truncated)


def _fit_tfidf(data, label_names, split, args, warnings, say) -> _Trained:
    from review_sentiment.baseline import WEIGHTS_FILE, TfidfClassifier, TfidfSettings
    from review_sentiment.baseline import weights_digest as file_digest

    train_rows, validation_rows = split
    for warning in warnings:
        say(f"[yellow]Warning:[/] {warning}")
    say(
        f"Base: TF-IDF + logistic regression · labels {label_names} · train {len(train_rows)} / "
        f"validation {len(validation_rows)}"
    )
    settings = TfidfSettings()
    fit_started = time.perf_counter()
    classifier = TfidfClassifier.fit(
        [data.texts[i] for i in train_rows], [data.labels[i] for i in train_rows], label_names, settings
    )
    fit_seconds = time.perf_counter() - fit_started
    probabilities = classifier.predict_proba([data.texts[i] for i in validation_rows])
    scores = _scores(
        [label_names.index(data.labels[i]) for i in validation_rows], probabilities.argmax(axis=1).tolist(), label_names
    )
    say(f"Fitted in {fit_seconds:.1f}s")
    history = [{**scores, "fit_seconds": round(fit_seconds, 1)}]  # one fit: no epochs

    def write(folder: Path) -> dict:
        classifier.save(folder)
        return {"weights_sha256": file_digest(folder / WEIGHTS_FILE)}

    meta = {
        "base": {"name": TFIDF, "source": "TF-IDF (char_wb + word n-grams) + logistic regression"},
        "training_args": {
            "tfidf": settings.to_dict(),
            "validation_fraction": args.validation_fraction,
            "seed": args.seed,
        },
        "features": {"char": len(classifier.char.vocabulary_), "word": len(classifier.word.vocabulary_)},
        "device": "cpu",
    }
    return _Trained(write, meta, history, {"epoch": None, **scores})
