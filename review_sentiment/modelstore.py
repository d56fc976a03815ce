"""The model folder: Hugging Face `save_pretrained` output plus `rs_meta.json` and a model card.

models/<name>/
  config.json, model.safetensors     the classifier (transformers.pipeline loads the folder)
  tokenizer.json, tokenizer_config.json
  rs_meta.json                       labels, normalization recipe, base, training args, data, metrics
  README.md                          model card generated from rs_meta.json
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from review_sentiment.errors import RsError
from review_sentiment.normalize import NormalizationRecipe
from review_sentiment.tables import make_shareable

META_FILENAME = "rs_meta.json"
META_FORMAT_VERSION = 1
TRANSFORMER, TFIDF = "transformer", "tfidf"
MODELS_DIR = Path("models")


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
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        meta = {"format_version": META_FORMAT_VERSION, **meta, **(write_model(staging) or {})}
        (staging / META_FILENAME).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        (staging / "README.md").write_text(model_card(meta), encoding="utf-8")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        make_shareable(staging)
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def read_meta(model_dir: str | Path) -> dict:
    """The rs metadata of a model folder; a folder without it is not an rs model."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise RsError(f"No model folder at {model_dir}. Train one with `rs finetune`, or pass --model DIR.")
    meta_path = model_dir / META_FILENAME
    if not meta_path.exists():
        raise RsError(f"{model_dir} has no {META_FILENAME}: it is not a model made by `rs finetune`.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RsError(f"{meta_path} is not valid JSON ({error}); the model folder is damaged.") from None
    if meta.get("format_version", 0) > META_FORMAT_VERSION:
        raise RsError(f"{model_dir} was made by a newer rs (format {meta['format_version']}); upgrade rs.")
    for key in ("labels", "normalization"):
        if key not in meta:
            raise RsError(f"{meta_path} lacks {key!r}; the model folder is incomplete.")
    return meta


def model_type_of(meta: dict) -> str:
    return meta.get("model_type", TRANSFORMER)


def save_transformer(model, tokenizer) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)

    return write


def load_transformer_folder(model_dir: str | Path):
    """Load (model, tokenizer, meta) from an rs transformer folder, checking the metadata against the weights."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    if model_type_of(meta) != TRANSFORMER:
        raise RsError(f"{model_dir} holds a {model_type_of(meta)} model, not a transformer.")
    if not (model_dir / "model.safetensors").exists() and not list(model_dir.glob("model-*.safetensors")):
        raise RsError(f"{model_dir} has no model.safetensors; rs only loads safetensors weights.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, local_files_only=True, trust_remote_code=False, use_safetensors=True
        )
    except (OSError, ValueError) as error:
        raise RsError(f"Cannot load the model in {model_dir}: {error}") from None
    config_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if config_labels != meta["labels"]:
        raise RsError(
            f"{model_dir}: {META_FILENAME} lists labels {meta['labels']} but the weights have {config_labels}."
        )
    if len(tokenizer) > model.config.vocab_size:
        raise RsError(
            f"{model_dir}: the tokenizer has {len(tokenizer)} tokens but the model only "
            f"{model.config.vocab_size}; the folder mixes files of different models."
        )
    model.eval()
    return model, tokenizer, meta


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
        "Korean review sentiment classifier fine-tuned with `rs finetune` "
        f"(review-sentiment {meta.get('library_versions', {}).get('review-sentiment', '?')}).",
        "",
        f"- Labels: {', '.join(meta['labels'])}",
        f"- Base model: {base.get('source', '?')}"
        + ("" if model_type_of(meta) == TFIDF else f" (revision {base.get('revision') or 'local folder'})"),
        f"- Normalization: {NormalizationRecipe.from_dict(meta['normalization']).describe()} "
        "— `rs predict` applies it to raw text",
        f"- Training data: {data.get('path', '?')}, {data.get('rows_used', '?')} labeled reviews "
        f"({data.get('label_source', '?')}); counts {data.get('label_counts', {})}",
        f"- Best epoch {metrics.get('best_epoch', '?')}: validation accuracy {metrics.get('accuracy', '?')}, "
        f"macro-F1 {metrics.get('macro_f1', '?')} on {data.get('rows_validation', '?')} held-out reviews",
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
                "from review_sentiment.predict import Predictor",
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
                        "base": base.get("alias") or base.get("source") or base.get("name", "?"),
                        "labels": ", ".join(meta.get("labels", [])),
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
                        "labels": "",
                        "training_rows": meta.get("corpus", {}).get("reviews"),
                        "validation_macro_f1": None,
                        "created": meta.get("created", ""),
                    }
                )
        except (OSError, json.JSONDecodeError) as error:
            rows.append(
                {
                    "name": folder.name,
                    "kind": f"unreadable: {error}",
                    "base": "",
                    "labels": "",
                    "training_rows": None,
                    "validation_macro_f1": None,
                    "created": "",
                }
            )
    return sorted(rows, key=lambda row: row["created"], reverse=True)
