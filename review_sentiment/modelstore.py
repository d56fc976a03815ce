"""The model folder: Hugging Face `save_pretrained` output plus `rs_meta.json` and a model card.

models/<name>/
  config.json, model.safetensors     the classifier (transformers.pipeline loads the folder)
  tokenizer.json, tokenizer_config.json
  rs_meta.json                       labels, normalization recipe, base, training args, data, metrics
  README.md                          model card generated from rs_meta.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from review_sentiment.errors import RsError
from review_sentiment.io import AtomicPath
from review_sentiment.normalize import NormalizationRecipe

META_FILENAME = "rs_meta.json"
META_FORMAT_VERSION = 1
TRANSFORMER, TFIDF = "transformer", "tfidf"
MODELS_DIR = Path("models")

# Files that mark a folder as some other tool's model (or an rs base) rather than an rs classifier
FOREIGN_MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "rs_pretrain.json", "rs_base.json")
# A tokenizer needs its settings plus one of these vocabularies (WordPiece/BPE JSON or text, or SentencePiece)
TOKENIZER_CONFIG = "tokenizer_config.json"
TOKENIZER_VOCABULARIES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
# Weights in pickle-based formats: rs never opens them, since unpickling can run code
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")
_RECOPY = "Copy the complete folder again, or re-train it with `rs finetune`."


def library_versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in (
        "review-sentiment",
        "torch",
        "transformers",
        "tokenizers",
        "kiwipiepy",
        "pandas",
        "scikit-learn",
    ):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def save_model_folder(
    write_model: Callable[[Path], dict | None], meta: dict, output_dir: str | Path, *, force: bool = False
) -> Path:
    """Write the folder into a temporary sibling and rename it into place, so a crash leaves no half model.

    `write_model(folder)` writes the model's own files and may return more metadata (e.g. a weights digest).
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not force:
        raise RsError(f"{output_dir} already exists. Pass --name with another name, or --force to replace it.")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with AtomicPath(output_dir, directory=True) as staging:
        meta = {"format_version": META_FORMAT_VERSION, **meta, **(write_model(staging) or {})}
        (staging / META_FILENAME).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        (staging / "README.md").write_text(model_card(meta), encoding="utf-8")
    return output_dir


def read_meta(model_dir: str | Path) -> dict:
    """The rs metadata of a model folder, checked for shape; a folder without it is not an rs model."""
    model_dir = Path(model_dir)
    if model_dir.is_file():
        folder = model_dir.parent if (model_dir.parent / META_FILENAME).exists() else "the folder that holds it"
        raise RsError(
            f"{model_dir} is a file, not a model folder: pass --model {folder} (the folder with {META_FILENAME})."
        )
    if not model_dir.is_dir():
        raise RsError(f"No model folder at {model_dir}. Train one with `rs finetune`, or pass --model DIR.")
    if not any(model_dir.iterdir()):
        raise RsError(
            f"{model_dir} is empty: there is no model in it. Train one with `rs finetune`, or pass --model DIR."
        )
    meta_path = model_dir / META_FILENAME
    if not meta_path.exists():
        if any((model_dir / name).exists() for name in FOREIGN_MODEL_FILES):
            raise RsError(
                f"{model_dir} has no {META_FILENAME}: it is not a model made by `rs finetune` but by another tool, "
                "e.g. a Hugging Face checkpoint — to fine-tune from it pass it as "
                f"`rs finetune REVIEWS --base {model_dir}`."
            )
        raise RsError(
            f"{model_dir} has no {META_FILENAME}: it is not a model made by `rs finetune`. "
            "Pass --model with a folder that `rs finetune` wrote."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: invalid JSON or not UTF-8
        raise RsError(f"{meta_path} is not valid JSON ({error}); the model folder is damaged. {_RECOPY}") from None
    if not isinstance(meta, dict):
        raise RsError(f"{meta_path} does not hold a JSON object; the model folder is damaged. {_RECOPY}")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RsError(f"{meta_path} has format_version {version!r}, not a whole number; the model folder is damaged.")
    if version > META_FORMAT_VERSION:
        raise RsError(f"{model_dir} was made by a newer rs (format {version}); upgrade rs.")
    for key in ("labels", "normalization"):
        if key not in meta:
            raise RsError(f"{meta_path} lacks {key!r}; the model folder is incomplete. {_RECOPY}")
    labels = meta["labels"]
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(label, str) and label for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise RsError(
            f"{meta_path}: labels must be a non-empty list of distinct, non-empty strings, not {labels!r}; "
            f"the model folder is damaged. {_RECOPY}"
        )
    if not isinstance(meta["normalization"], dict):
        raise RsError(f"{meta_path}: normalization must be a JSON object, not {meta['normalization']!r}. {_RECOPY}")
    try:
        NormalizationRecipe.from_dict(meta["normalization"])
    except TypeError as error:
        raise RsError(f"{meta_path}: bad normalization settings ({error}). {_RECOPY}") from None
    digest = meta.get("weights_sha256")
    if model_type_of(meta) == TFIDF and not (isinstance(digest, str) and digest.startswith("sha256:")):
        raise RsError(
            f"{meta_path} lacks the weights' digest (weights_sha256), so the TF-IDF weights cannot be verified. "
            "Re-train the model with `rs finetune --base tfidf`."
        )
    if model_type_of(meta) not in (TRANSFORMER, TFIDF):
        raise RsError(
            f"{meta_path} has model_type {model_type_of(meta)!r}, which this rs does not know "
            f"(it knows {TRANSFORMER!r} and {TFIDF!r}); upgrade rs."
        )
    return meta


def model_type_of(meta: dict) -> str:
    return meta.get("model_type", TRANSFORMER)


def save_transformer(model, tokenizer) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)

    return write


def load_transformer_folder(model_dir: str | Path):
    """Load (model, tokenizer, meta) from an rs transformer folder, checking the metadata against the weights.

    Only safetensors weights are read (never pickle), no code from the folder is run (`auto_map` is refused), and
    every tensor must match the architecture in config.json: transformers would otherwise initialise missing or
    misshapen tensors at random and only log a warning.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    if model_type_of(meta) != TRANSFORMER:
        raise RsError(f"{model_dir} holds a {model_type_of(meta)} model, not a transformer.")
    _check_transformer_files(model_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            model_dir,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # report misshapen tensors below instead of a RuntimeError
        )
    except SafetensorError as error:
        raise RsError(
            f"The safetensors weights in {model_dir} are damaged or truncated ({_one_line(error)}). {_RECOPY}"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise RsError(f"Cannot load the model in {model_dir}: {_one_line(error)}. {_RECOPY}") from None
    _check_loaded_weights(model_dir, model, loading)
    config_labels = [model.config.id2label.get(i) for i in range(model.config.num_labels)]
    if config_labels != meta["labels"]:
        raise RsError(
            f"{model_dir}: {META_FILENAME} lists labels {meta['labels']} but the weights have {config_labels}."
        )
    if len(tokenizer) > model.config.vocab_size:
        raise RsError(
            f"{model_dir}: the tokenizer has {len(tokenizer)} tokens but the model only "
            f"{model.config.vocab_size}; the folder mixes files of different models."
        )
    if tokenizer.pad_token_id is None:
        raise RsError(f"{model_dir}: the tokenizer has no padding token; its tokenizer files are incomplete. {_RECOPY}")
    _check_max_length(model_dir, meta, model.config, tokenizer)
    model.eval()
    return model, tokenizer, meta


def _check_transformer_files(model_dir: Path) -> None:
    """Refuse an incomplete folder, pickle-only weights and custom code before transformers reads anything."""
    if not (model_dir / "model.safetensors").exists() and not list(model_dir.glob("model-*.safetensors")):
        pickles = sorted({path.name for pattern in PICKLE_WEIGHTS for path in model_dir.glob(pattern)})
        if pickles:
            raise RsError(
                f"{model_dir} has weights only in pickle format ({', '.join(pickles[:3])}), which rs never opens "
                "because unpickling can run code; rs only loads model.safetensors. Re-save the model with "
                "`save_pretrained(folder, safe_serialization=True)` where you trust it, or re-train with `rs finetune`."
            )
        raise RsError(f"{model_dir} is incomplete: model.safetensors is missing. {_RECOPY}")
    config = _json_object(model_dir / "config.json")
    tokenizer_config = _json_object(model_dir / TOKENIZER_CONFIG)
    if not any((model_dir / name).exists() for name in TOKENIZER_VOCABULARIES):
        raise RsError(
            f"{model_dir} is incomplete: it has no tokenizer vocabulary (tokenizer.json or vocab.txt). {_RECOPY}"
        )
    for name, settings in (("config.json", config), (TOKENIZER_CONFIG, tokenizer_config)):
        if "auto_map" in settings:
            raise RsError(
                f"{model_dir / name} asks for custom code (auto_map {json.dumps(settings['auto_map'])}); rs never runs "
                "code from a model folder. Fine-tune a base whose architecture transformers knows (e.g. ELECTRA, BERT)."
            )
    from transformers import CONFIG_MAPPING, __version__

    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise RsError(
            f"{model_dir / 'config.json'} has model type {model_type!r}, which transformers {__version__} does not "
            f"know; upgrade transformers, or re-train the model with `rs finetune`."
        )


def _json_object(path: Path) -> dict:
    if not path.exists():
        raise RsError(f"{path.parent} is incomplete: {path.name} is missing. {_RECOPY}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RsError(
            f"{path} is not valid JSON ({_one_line(error)}); the model folder is damaged. {_RECOPY}"
        ) from None
    if not isinstance(data, dict):
        raise RsError(f"{path} does not hold a JSON object; the model folder is damaged. {_RECOPY}")
    return data


def _check_loaded_weights(model_dir: Path, model, loading: dict) -> None:
    """Refuse weights whose tensors do not match the architecture (transformers only warns and initialises them)."""
    mismatched = sorted(loading.get("mismatched_keys") or (), key=lambda item: item[0])
    embeddings = model.get_input_embeddings()
    embedding_names = {name for name, parameter in model.named_parameters() if parameter is embeddings.weight}
    for key, stored_shape, _ in mismatched:
        if key in embedding_names:
            raise RsError(
                f"{model_dir}: config.json says vocab_size {model.config.vocab_size} but the embeddings in the weights "
                f"have {stored_shape[0]} rows; the folder mixes files of different models. {_RECOPY}"
            )
    problems = []
    if mismatched:
        shapes = [f"{key} {tuple(stored)} instead of {tuple(expected)}" for key, stored, expected in mismatched]
        problems.append(f"wrong shape: {_some(shapes)}")
    for kind in ("missing", "unexpected"):
        keys = sorted(loading.get(f"{kind}_keys") or ())
        if keys:
            problems.append(f"{kind} tensors: {_some(keys)}")
    if loading.get("error_msgs"):
        problems.append(f"errors: {_some([_one_line(message) for message in loading['error_msgs']])}")
    if problems:
        raise RsError(
            f"{model_dir}: the weights do not match config.json ({'; '.join(problems)}); the folder mixes files of "
            f"different models or is damaged. {_RECOPY}"
        )


def model_length_limit(config, tokenizer) -> int | None:
    """The most tokens the model reads at once: the smaller of its position embeddings and the tokenizer's limit
    (a tokenizer without one says 1e30); None when neither says."""
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    return min((int(x) for x in limits if x and x < 1_000_000), default=None)


def _check_max_length(model_dir: Path, meta: dict, config, tokenizer) -> None:
    """`max_length` in the metadata must fit the model (finetune.clamp_max_length keeps it so): refused, not clamped."""
    if "max_length" not in meta:
        return
    max_length = meta["max_length"]
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise RsError(f"{model_dir / META_FILENAME}: max_length must be a positive whole number, not {max_length!r}.")
    limit = model_length_limit(config, tokenizer)
    if limit is not None and max_length > limit:
        raise RsError(
            f"{model_dir / META_FILENAME} sets max_length {max_length} but the model handles at most {limit} "
            f"tokens; set max_length to {limit} or less there (rs finetune never writes more)."
        )


def _some(items: list[str], shown: int = 3) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _one_line(error: object) -> str:
    """An exception's message as one line: its first non-empty line, shortened."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def recipe_of(meta: dict) -> NormalizationRecipe:
    return NormalizationRecipe.from_dict(meta["normalization"])


def newest_model_dir(models_dir: str | Path = MODELS_DIR) -> Path:
    """The most recently trained rs model under `models_dir` (by its metadata's creation time)."""
    models_dir = Path(models_dir)
    candidates = sorted(
        (p for p in models_dir.glob(f"*/{META_FILENAME}") if not p.parent.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    if not candidates:
        raise RsError(f"No trained model under {models_dir}/. Run `rs finetune` first, or pass --model DIR.")
    return candidates[-1].parent


def model_card(meta: dict) -> str:
    metrics = meta.get("metrics", {})
    data = meta.get("data", {})
    base = meta.get("base", {})
    lines = [
        f"# {meta.get('name', 'rs model')}",
        "",
        "Korean review sentiment classifier trained with `rs finetune` "
        f"(review-sentiment {meta.get('library_versions', {}).get('review-sentiment', '?')}).",
        "",
        f"- Labels: {', '.join(meta['labels'])}",
        f"- Base model: {base.get('source', '?')}"
        + ("" if model_type_of(meta) == TFIDF else f" (revision {base.get('revision') or 'local folder'})"),
        f"- Normalization: {NormalizationRecipe.from_dict(meta['normalization']).describe()} "
        "— `rs predict` applies it to raw text",
        f"- Training data: {data.get('path', '?')}, {data.get('rows_used', '?')} labeled reviews "
        f"({data.get('label_source', '?')}); counts {data.get('label_counts', {})}",
        ("- " if metrics.get("best_epoch") is None else f"- Best epoch {metrics['best_epoch']}: ")
        + f"validation accuracy {metrics.get('accuracy', '?')}, "
        f"macro-F1 {metrics.get('macro_f1', '?')} on {data.get('rows_validation', '?')} held-out reviews",
        f"- Calibration: {describe_calibration(meta)}",
        "",
        "## Use",
        "",
        "```bash",
        "rs predict reviews.csv -o labeled.csv --model <this folder>",
        "```",
        "",
        "```python",
        *(
            [
                "from review_sentiment.scoring import Predictor",
                "labels = Predictor('<this folder>').predict(['배송 빠르고 좋아요'])  # normalizes like rs predict",
            ]
            if model_type_of(meta) == TFIDF
            else [
                "from transformers import pipeline",
                "classify = pipeline('text-classification', model='<this folder>')",
                "# normalize text first (review_sentiment.normalize) for the same results as rs predict",
            ]
        ),
        "```",
        "",
        "## Training arguments",
        "",
        "```json",
        json.dumps(meta.get("training_args", {}), indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def describe_calibration(meta: dict) -> str:
    calibration = meta.get("calibration")
    if not isinstance(calibration, dict) or "temperature" not in calibration:
        return "none (trained before rs calibrated its models: confidences are the raw scores)"
    raw, calibrated = calibration.get("validation_raw", {}), calibration.get("validation_calibrated", {})
    return (
        f"temperature {calibration['temperature']:g} (temperature scaling on {calibration.get('fitted_on_rows', '?')} "
        f"validation reviews; ECE {raw.get('ece', '?')} → {calibrated.get('ece', '?')}, "
        f"{calibration.get('binning', '')}); rs predict applies it, --no-calibration shows the raw scores"
    )


def list_models(models_dir: str | Path = MODELS_DIR) -> list[dict]:
    """One summary per folder under `models_dir`: rs classifiers (rs_meta.json) and pretrained bases
    (rs_pretrain.json), newest first; folders rs cannot read are listed with the reason."""
    rows = []
    for folder in sorted(p for p in Path(models_dir).glob("*") if p.is_dir() and not p.name.startswith(".")):
        meta_path, pretrain_path = folder / META_FILENAME, folder / "rs_pretrain.json"
        try:
            if meta_path.exists():
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                base = meta.get("base", {})
                rows.append(
                    {
                        "name": folder.name,
                        "kind": meta.get("model_type", TRANSFORMER),
                        "architecture": base.get("model_type"),  # electra, bert; None for tfidf
                        "base": base.get("alias") or base.get("source") or base.get("name", "?"),
                        "labels": [_label_name(label) for label in meta.get("labels", [])],
                        "training_rows": meta.get("data", {}).get("rows_train"),
                        "validation_macro_f1": meta.get("metrics", {}).get("macro_f1"),
                        "created": meta.get("created", ""),
                    }
                )
            elif pretrain_path.exists():
                meta = json.loads(pretrain_path.read_text(encoding="utf-8"))
                base = meta.get("base") or {}
                rows.append(
                    {
                        "name": folder.name,
                        "kind": "pretrained base",
                        "base": base.get("source") or f"scratch ({meta.get('arguments', {}).get('size', '?')})",
                        "labels": [],
                        "training_rows": meta.get("corpus", {}).get("reviews"),
                        "validation_macro_f1": None,
                        "created": meta.get("created", ""),
                    }
                )
        except (OSError, ValueError, TypeError, AttributeError) as error:  # unreadable or not the expected shape
            rows.append(
                {
                    "name": folder.name,
                    "kind": f"unreadable: {error}",
                    "base": "",
                    "labels": [],
                    "training_rows": None,
                    "validation_macro_f1": None,
                    "created": "",
                }
            )
    return sorted(rows, key=lambda row: row["created"], reverse=True)


def _label_name(label: object) -> str:
    if not isinstance(label, str):
        raise TypeError(f"labels must be names, got {label!r}")
    return label


def model_details(folder: str | Path) -> tuple[dict[str, str], dict]:
    """What `rs models NAME` shows: one line per fact of a classifier's rs_meta.json (or a pretrained base's
    rs_pretrain.json), and the whole metadata for --json."""
    folder = Path(folder)
    pretrain_path = folder / "rs_pretrain.json"
    if not (folder / META_FILENAME).exists() and pretrain_path.exists():
        meta = json.loads(pretrain_path.read_text(encoding="utf-8"))
        arguments = meta.get("arguments", {})
        return {
            "name": folder.name,
            "folder": str(folder),
            "kind": "pretrained base (use it as `rs finetune --base FOLDER`)",
            "from": (meta.get("base") or {}).get("source") or f"scratch, size {arguments.get('size', '?')}",
            "corpus": json.dumps(meta.get("corpus", {}), ensure_ascii=False),
            "created": meta.get("created", ""),
        }, meta
    meta = read_meta(folder)
    data, metrics, base = meta.get("data", {}), meta.get("metrics", {}), meta.get("base", {})
    revision = f" @ {base['revision']}" if base.get("revision") else ""
    details = {
        "name": meta.get("name", folder.name),
        "folder": str(folder),
        "kind": model_type_of(meta),
        "base": f"{base.get('source') or base.get('name', '?')}{revision}",
        "labels": ", ".join(meta.get("labels", [])),
        "created": meta.get("created", ""),
        "trained on": f"{data.get('path', '?')} (text column '{data.get('text_column', '?')}', labels from the "
        f"{data.get('label_source', '?')})",
        "rows": f"{data.get('rows_train', '?')} train / {data.get('rows_validation', '?')} validation of "
        f"{data.get('rows_total', '?')} ({data.get('rows_unlabeled', 0)} without a label or in no rating bin)",
        "validation": f"accuracy {metrics.get('accuracy', '?')}, macro-F1 {metrics.get('macro_f1', '?')}"
        + (f", best epoch {metrics['best_epoch']}" if metrics.get("best_epoch") is not None else ""),
        "normalization": NormalizationRecipe.from_dict(meta["normalization"]).describe(),
        "calibration": describe_calibration(meta),
        "training arguments": json.dumps(meta.get("training_args", {}), ensure_ascii=False),
        "library versions": ", ".join(f"{k} {v}" for k, v in meta.get("library_versions", {}).items()),
    }
    if "max_length" in meta:  # transformers only
        details["max length"] = f"{meta['max_length']} tokens (longer reviews are scored in parts)"
    if data.get("rating_bins"):
        from review_sentiment.labels import RatingBins

        details["rating bins"] = RatingBins.from_dict(data["rating_bins"]).describe()
    return details, meta
