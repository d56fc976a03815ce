"""rs finetune: train a Korean ELECTRA (or any local checkpoint) into a review-sentiment classifier."""

from __future__ import annotations

import hashlib
import math
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
from review_sentiment.config import FinetuneArguments
from review_sentiment.console import console, progress_bar, silence_library_logs
from review_sentiment.errors import RsError
from review_sentiment.inference import batched_probabilities, pad_batch, pick_device, use_fast_attention
from review_sentiment.labels import read_gold_labels, sort_labels
from review_sentiment.modelstore import (
    MODELS_DIR,
    TFIDF,
    TRANSFORMER,
    library_versions,
    save_model_folder,
    save_transformer,
)
from review_sentiment.normalize import NormalizationRecipe, ReviewNormalizer
from review_sentiment.preprocess import PROCESSED_DIR, latest_processed_file, read_sidecar
from review_sentiment.tables import find_text_column, read_table, table_stem


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
    best_epoch: int
    metrics: dict
    history: list[dict]
    data: dict
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def load_training_data(
    data_path: str | Path | None,
    *,
    text_col: str | None = None,
    label_options: LabelOptions | None = None,
    processed_dir: str | Path = PROCESSED_DIR,
    encoding: str | None = None,
) -> TrainingData:
    """Read labeled reviews. A file from `rs preprocess` brings its normalized column and recipe; any other
    file is normalized here with the default recipe."""
    label_options = label_options or LabelOptions()
    path = (Path(data_path) if data_path else latest_processed_file(processed_dir)).resolve()
    table = read_table(path, encoding)
    sidecar = read_sidecar(path)
    from_preprocess = bool(sidecar) and sidecar.get("normalized_column") in table.columns and text_col is None
    if from_preprocess:
        recipe = NormalizationRecipe.from_dict(sidecar["recipe"])
        text_column = sidecar["text_column"]
        normalized = table[sidecar["normalized_column"]].tolist()
    else:
        recipe = NormalizationRecipe()
        text_column = find_text_column(table, text_col)
        normalized = ReviewNormalizer(recipe).normalize(table[text_column].tolist(), "Normalizing")
    gold = read_gold_labels(
        table,
        label_options.label_col,
        label_options.rating_col,
        label_options.rating_scale,
        label_options.rating_bins,
    )
    keep = [
        i for i, (text, label) in enumerate(zip(normalized, gold.labels, strict=True)) if label is not None and text
    ]
    return TrainingData(
        path=path,
        texts=[normalized[i] for i in keep],
        labels=[gold.labels[i] for i in keep],
        recipe=recipe,
        text_column=text_column,
        label_source=gold.source,
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
    return re.sub(r"[^\w.-]+", "-", f"{base_part}-{table_stem(data_path)}-{stamp}")


def _scores(gold: list[int], predicted: list[int], labels: list[str]) -> dict:
    """Validation accuracy and macro-F1, computed as `rs evaluate` computes them."""
    from review_sentiment.evaluate import classification_scores

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
) -> tuple[list[dict], dict]:
    """The training loop. Returns the per-epoch history and the best epoch's scores and weights ("state")."""
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
    use_amp = device.startswith("cuda")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    generator = torch.Generator().manual_seed(args.seed)
    validation_gold = [targets[i] for i in validation_rows]

    history: list[dict] = []
    best: dict = {"macro_f1": -1.0}
    epochs_without_improvement = 0
    with progress_bar() as progress:
        task = progress.add_task("Training", total=total_steps, info="")
        for epoch in range(1, args.epochs + 1):
            model.train()
            losses = []
            epoch_started = time.perf_counter()
            tokens = slots = 0
            for rows in length_grouped_batches(train_rows, encoded, args.batch_size, generator):
                ids, mask = pad_batch([encoded[r] for r in rows], pad_token_id)
                tokens += int(mask.sum())
                slots += mask.numel()
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
                losses.append(loss.item())
                progress.update(task, advance=1, info=f"epoch {epoch}/{args.epochs} loss {np.mean(losses[-50:]):.4f}")

            with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                probabilities = batched_probabilities(
                    model, [encoded[i] for i in validation_rows], pad_token_id, batch_size=64, device=device
                )
            scores = _scores(validation_gold, probabilities.argmax(axis=1).tolist(), label_names)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": round(float(np.mean(losses)), 4),
                    **scores,
                    "train_tokens_per_second": round(tokens / (time.perf_counter() - epoch_started), 1),
                    "padding_share": round(1 - tokens / slots, 4),
                }
            )
            improved = scores["macro_f1"] > best["macro_f1"]
            say(
                f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f} · validation accuracy "
                f"{scores['accuracy']:.4f} · macro-F1 {scores['macro_f1']:.4f}{'  (best)' if improved else ''}"
            )
            if improved:
                state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                best = {"epoch": epoch, **scores, "state": state}
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
                if args.early_stopping_patience and epochs_without_improvement >= args.early_stopping_patience:
                    say(f"Early stopping: no better validation macro-F1 for {epochs_without_improvement} epochs.")
                    break
    return history, best


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
    quiet: bool = False,
) -> FinetuneResult:
    """Train a classifier on labeled reviews: fine-tune `base_name` (keeping the best epoch by validation
    macro-F1), or with `base_name="tfidf"` fit the TF-IDF + logistic-regression baseline."""
    started = time.perf_counter()
    args = args or FinetuneArguments()
    say = (lambda message: None) if quiet else console.print
    silence_library_logs()
    warnings: list[str] = []

    if name is not None and (not name.strip() or Path(name).name != name or name in (".", "..")):
        raise RsError(f"--name {name!r} must be a plain folder name (no / or ..); use --output for another place.")
    is_tfidf = base_name.lower() == TFIDF
    base = None if is_tfidf else resolve_base(base_name, base_revision)
    data = load_training_data(
        data_path, text_col=text_col, label_options=label_options, processed_dir=processed_dir, encoding=encoding
    )
    label_names = sort_labels(data.labels)
    if len(label_names) < 2:
        found = f"only {label_names[0]!r}" if label_names else "no labeled rows"
        raise RsError(f"Training needs at least two classes; {data.path} has {found} ({data.label_source}).")
    train_rows, validation_rows = stratified_split(data.labels, args.validation_fraction, args.seed)
    if len(validation_rows) < 30:
        warnings.append(
            f"Only {len(validation_rows)} reviews are held out for validation: the best epoch and the reported "
            "scores are noisy. More labeled data (or --validation-fraction) helps."
        )
    name = name or default_model_name(TFIDF if is_tfidf else (base.alias or Path(base.source).name), data.path)
    output_dir = Path(output_dir) if output_dir else Path(models_dir) / name
    if output_dir.exists() and not force:
        raise RsError(f"{output_dir} already exists. Pass --name with another name, or --force to replace it.")
    counts = ", ".join(f"{label} {data.labels.count(label)}" for label in label_names)
    say(
        f"Data: {data.path} — {len(data.texts)} labeled reviews ({counts}) from the {data.label_source}; "
        f"skipped: {data.unlabeled_note}, {data.rows_empty_text} with empty text"
    )

    split = (train_rows, validation_rows)
    if is_tfidf:
        trained = _fit_tfidf(data, label_names, split, args, warnings, say)
    else:
        trained = _fine_tune_transformer(data, label_names, split, base, args, device, warnings, say)

    data_info = {
        "path": str(data.path),
        "fingerprint": data.fingerprint(),
        "text_column": data.text_column,
        "label_source": data.label_source,
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
    save_model_folder(trained.write, meta, output_dir, force=force)
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


def _fine_tune_transformer(data, label_names, split, base, args, device, warnings, say) -> _Trained:
    from transformers import set_seed

    train_rows, validation_rows = split
    tokenizer, config = load_base_tokenizer_and_config(base)
    expected = expected_vocab_size(base)
    if expected and config.vocab_size != expected:
        warnings.append(
            f"{base.source} has vocabulary {config.vocab_size}, expected {expected} for --base "
            f"{base.alias}: check the revision."
        )
    max_length = clamp_max_length(args.max_length, tokenizer, config, warnings)
    for warning in warnings:
        say(f"[yellow]Warning:[/] {warning}")

    set_seed(args.seed)  # before the classifier head is initialized
    label_ids = {label: i for i, label in enumerate(label_names)}
    model = load_base_weights(
        base, num_labels=len(label_names), id2label=dict(enumerate(label_names)), label2id=label_ids
    )
    model.config.problem_type = "single_label_classification"
    device = pick_device(device)
    use_fast_attention(model, device)
    model.to(device)

    encoded = tokenizer(data.texts, truncation=True, max_length=max_length)["input_ids"]
    targets = [label_ids[label] for label in data.labels]
    say(
        f"Base: {base.source}{' @ ' + base.revision if base.revision else ''} · labels {label_names} · "
        f"train {len(train_rows)} / validation {len(validation_rows)} · max length {max_length} · {device}"
    )
    history, best = train_classifier(
        model, encoded, targets, train_rows, validation_rows, label_names, args, device, tokenizer.pad_token_id, say
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
    }
    truncated = sum(len(ids) >= max_length for ids in encoded)
    return _Trained(save_transformer(model, tokenizer), meta, history, best, truncated)


def _fit_tfidf(data, label_names, split, args, warnings, say) -> _Trained:
    from review_sentiment.baseline import WEIGHTS_FILE, TfidfClassifier, TfidfSettings, file_digest

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
    say(f"validation accuracy {scores['accuracy']:.4f} · macro-F1 {scores['macro_f1']:.4f} ({fit_seconds:.0f}s)")
    history = [{"epoch": 1, **scores, "fit_seconds": round(fit_seconds, 1)}]

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
    return _Trained(write, meta, history, {"epoch": 1, **scores})
