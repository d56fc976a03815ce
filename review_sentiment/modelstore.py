"""The model folder: Hugging Face `save_pretrained` output plus `rs_meta.json` and a model card.

models/<name>/
  config.json, model.safetensors     the classifier (transformers.pipeline loads the folder)
  tokenizer.json, tokenizer_config.json
  rs_meta.json                       labels, normalization recipe, base, training args, data, metrics
  README.md                          model card generated from rs_meta.json

`rs predict` and `rs evaluate` also score Hugging Face sequence-classification checkpoints that rs did not train
(a folder without rs_meta.json, or a hub id): `model_meta` makes the same metadata from their config.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from review_sentiment.bases import hub_snapshot, is_hub_id
from review_sentiment.errors import RsError
from review_sentiment.io import AtomicPath
from review_sentiment.labels import known_label, sort_labels
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
# What a checkpoint rs did not train needs, all that is fetched for --model OWNER/NAME: never pickle weights
CHECKPOINT_FILES = (
    "config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    TOKENIZER_CONFIG,
    "special_tokens_map.json",
    "added_tokens.json",
    "merges.txt",
    *TOKENIZER_VOCABULARIES,
)
CHECKPOINT_NORMALIZATIONS = ("rs", "none")  # --normalization: rs's default recipe, or the raw text
CHECKPOINT_LENGTH = 512  # tokens per piece for a checkpoint whose config and tokenizer state no limit


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


def load_transformer_folder(model_dir: str | Path, meta: dict | None = None):
    """Load (model, tokenizer, meta) from an rs transformer folder, checking the metadata against the weights;
    `meta`: the folder's metadata when already read (for a checkpoint rs did not train, `checkpoint_meta`'s).

    Only safetensors weights are read (never pickle), no code from the folder is run (`auto_map` is refused), and
    every tensor must match the architecture in config.json: transformers would otherwise initialise missing or
    misshapen tensors at random and only log a warning.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    meta = read_meta(model_dir) if meta is None else meta
    checkpoint = meta.get("source")  # made from the config of a checkpoint rs did not train
    if model_type_of(meta) != TRANSFORMER:
        raise RsError(f"{model_dir} holds a {model_type_of(meta)} model, not a transformer.")
    _check_transformer_files(model_dir, tokenizer_config_required=checkpoint is None)
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
    if checkpoint is None and config_labels != meta["labels"]:
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


def _check_transformer_files(model_dir: Path, *, tokenizer_config_required: bool = True) -> None:
    """Refuse an incomplete folder, pickle-only weights and custom code before transformers reads anything
    (`tokenizer_config_required` False: a checkpoint rs did not train may have only a vocabulary, as old ones do)."""
    if not _has_safetensors(model_dir):
        pickles = sorted({path.name for pattern in PICKLE_WEIGHTS for path in model_dir.glob(pattern)})
        if pickles:
            raise RsError(
                f"{model_dir} has weights only in pickle format ({', '.join(pickles[:3])}), which rs never opens "
                "because unpickling can run code; rs only loads model.safetensors. Re-save the model with "
                "`save_pretrained(folder, safe_serialization=True)` where you trust it, or re-train with `rs finetune`."
            )
        raise RsError(f"{model_dir} is incomplete: model.safetensors is missing. {_RECOPY}")
    config = _json_object(model_dir / "config.json")
    tokenizer_config_path = model_dir / TOKENIZER_CONFIG
    required = tokenizer_config_required or tokenizer_config_path.exists()
    tokenizer_config = _json_object(tokenizer_config_path) if required else {}
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


def _has_safetensors(model_dir: Path) -> bool:
    return (model_dir / "model.safetensors").exists() or bool(list(model_dir.glob("model-*.safetensors")))


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


def recipe_of(meta: dict) -> NormalizationRecipe | None:
    """The model's normalization recipe; None: none (a checkpoint rs did not train, with --normalization none)."""
    stored = meta["normalization"]
    return None if stored is None else NormalizationRecipe.from_dict(stored)


def describe_normalization(meta: dict) -> str:
    """The normalization a model's texts get, e.g. "rs-normalize v2 (nfc, ...)"; for a checkpoint rs did not
    train "rs (rs-normalize v2 (...))" or "none (the raw text)", as --normalization chose."""
    recipe = recipe_of(meta)
    if "source" not in meta:
        return recipe.describe()
    return "none (the raw text)" if recipe is None else f"rs ({recipe.describe()})"


# --- Hugging Face checkpoints rs did not train ---


@dataclass(frozen=True)
class ModelLocation:
    """Where the files of --model are: a local folder, or a hub checkpoint's snapshot in the Hugging Face cache."""

    folder: Path
    hub_id: str | None = None  # owner/name, for a checkpoint from the hub
    commit: str | None = None  # the hub commit of its snapshot

    @property
    def name(self) -> str:
        """The model as the user named it: its folder, or its hub id."""
        return self.hub_id or str(self.folder)


def locate_model(model: str | Path) -> ModelLocation:
    """--model as a folder or, when it names no file or folder here and reads owner/name (`bases.is_hub_id`, as
    for --base), as a hub id: a checkpoint fetched into the Hugging Face cache unless it is there already (with a
    fast, clear error offline). A Path is always a folder; only a str can be a hub id."""
    if isinstance(model, Path) or Path(model).exists() or not is_hub_id(model):
        return ModelLocation(Path(model))
    folder = hub_snapshot(model, CHECKPOINT_FILES)
    return ModelLocation(folder, model, folder.name)


def is_checkpoint_folder(folder: Path) -> bool:
    """A Hugging Face checkpoint folder (config.json) without rs_meta.json: one rs did not train."""
    return folder.is_dir() and not (folder / META_FILENAME).exists() and (folder / "config.json").exists()


def model_meta(
    location: ModelLocation, *, labels: Sequence[str] | None = None, normalization: str | None = None
) -> dict:
    """What scoring needs to know of a model: an rs model folder's rs_meta.json or, for a Hugging Face checkpoint
    rs did not train (a folder without rs_meta.json, or a hub id), the same made from its config
    (`checkpoint_meta`). `labels` and `normalization` (--labels, --normalization) are for the latter only."""
    if location.hub_id is None and not is_checkpoint_folder(location.folder):
        meta = read_meta(location.folder)
        given = " and ".join(
            option for option, value in (("--labels", labels), ("--normalization", normalization)) if value is not None
        )
        if given:
            raise RsError(
                f"{location.folder} is a model rs trained: {given} apply only to checkpoints rs did not train. Its "
                f"labels and normalization are in its {META_FILENAME} and always apply: drop {given}."
            )
        return meta
    return checkpoint_meta(location, labels=labels, normalization=normalization)


def checkpoint_meta(
    location: ModelLocation, *, labels: Sequence[str] | None = None, normalization: str | None = None
) -> dict:
    """Metadata shaped like rs_meta.json for a Hugging Face sequence-classification checkpoint rs did not train,
    so that predict, evaluate and the batch helpers score it as they score an rs model.

    Its classes are named from config.id2label, or from `labels` (in class order) where id2label does not say
    (LABEL_0, LABEL_1); "labels" lists them in rs's order (negative, neutral, positive) and "source"/"classes" in
    the checkpoint's. `normalization` "rs" (the default) is rs's default recipe, "none" the raw text (stored as
    None). max_length is the model's own limit. "source" says where it came from."""
    from transformers import AutoConfig, AutoTokenizer

    if normalization not in (None, *CHECKPOINT_NORMALIZATIONS):
        raise RsError(f"--normalization takes {' or '.join(CHECKPOINT_NORMALIZATIONS)}, not {normalization!r}.")
    name = location.name
    _check_checkpoint_files(location)
    try:
        config = AutoConfig.from_pretrained(location.folder, local_files_only=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(location.folder, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RsError(f"Cannot load the checkpoint {name}: {_one_line(error)}.") from None
    id2label = {int(index): str(label) for index, label in config.id2label.items()}
    classes = checkpoint_classes(name, id2label, labels)
    recipe = None if normalization == "none" else NormalizationRecipe()
    return {
        "format_version": META_FORMAT_VERSION,
        "name": name,
        "model_type": TRANSFORMER,
        "labels": sort_labels(classes),
        "normalization": None if recipe is None else recipe.to_dict(),
        "max_length": model_length_limit(config, tokenizer) or CHECKPOINT_LENGTH,
        "source": {
            "checkpoint": name,
            "hub_id": location.hub_id,
            "revision": location.commit,
            "id2label": id2label,
            "classes": classes,
            "classes_from": "id2label" if labels is None else "--labels",
            "normalization": normalization or "rs",
        },
    }


def checkpoint_classes(name: str, id2label: dict[int, str], labels: Sequence[str] | None = None) -> list[str]:
    """The rs label of each of a checkpoint's classes, in its class order: from `labels` (--labels) when given,
    else from id2label's names where rs knows them all (긍정, NEGATIVE, pos). Never a guess: LABEL_0 / LABEL_1,
    0 / 1 or names rs does not know are refused unless `labels` says, and `labels` may not contradict a name rs
    knows."""
    shown = {index: id2label.get(index) for index in range(len(id2label))}
    count = len(id2label)
    if count not in (2, 3) or set(id2label) != set(range(count)):
        raise RsError(
            f"{name} has id2label {shown}: rs labels reviews negative/positive or negative/neutral/positive, so it "
            "scores checkpoints of 2 or 3 classes only."
        )
    example = "negative,positive" if count == 2 else "negative,neutral,positive"
    order = ", ".join(f"class {index}" for index in range(count))
    named = [known_label(id2label[index]) for index in range(count)]
    if labels is None:
        if None in named or len(set(named)) != count:
            raise RsError(
                f"{name} has id2label {shown}, which does not say which class is which: pass --labels {example} (in "
                f"that order: {order}) with the classes its model card gives, e.g. --labels {example} when class 0 "
                "is negative. rs never guesses."
            )
        return named
    given = [str(label).strip() for label in labels]
    if len(given) != count:
        raise RsError(
            f"--labels {','.join(given)} names {len(given)} classes but {name} has {count} (id2label {shown}): pass "
            f"one name per class, in that order ({order}), e.g. --labels {example}."
        )
    mapped = [known_label(label) for label in given]
    unknown = [label for label, canonical in zip(given, mapped, strict=True) if canonical is None]
    if unknown:
        raise RsError(
            f"--labels: {', '.join(repr(label) for label in unknown)} "
            f"{'is not a label' if len(unknown) == 1 else 'are not labels'} rs knows; use negative, neutral and "
            "positive (or 부정/중립/긍정, neg/neu/pos)."
        )
    if len(set(mapped)) != count:
        raise RsError(f"--labels {','.join(given)} gives two classes the same label; each class needs its own.")
    clashes = [
        f"class {index} is {id2label[index]!r} there, {given[index]!r} here"
        for index in range(count)
        if named[index] is not None and named[index] != mapped[index]
    ]
    if clashes:
        raise RsError(
            f"--labels {','.join(given)} contradicts the id2label of {name} ({'; '.join(clashes)}). Drop --labels: "
            "its id2label already says which class is which."
        )
    return mapped


def describe_checkpoint(meta: dict) -> str:
    """How a checkpoint rs did not train names its classes, e.g. "class 0 'LABEL_0' = negative, class 1 'LABEL_1'
    = positive (from --labels)"; "" for a model rs trained."""
    source = meta.get("source")
    if not source:
        return ""
    pairs = [f"class {index} {source['id2label'][index]!r} = {label}" for index, label in enumerate(source["classes"])]
    named_by = "--labels" if source["classes_from"] == "--labels" else "its id2label"
    return f"{', '.join(pairs)} (from {named_by})"


def _check_checkpoint_files(location: ModelLocation) -> None:
    """A checkpoint rs did not train: safetensors weights, no custom code, and a sequence classifier (a base
    model has no trained head to score with)."""
    folder, name = location.folder, location.name
    if location.hub_id and not _has_safetensors(folder):
        raise RsError(
            f"The hub checkpoint {name} (commit {location.commit}) has no safetensors weights (model.safetensors); "
            "rs never opens pickle weights such as pytorch_model.bin, because unpickling can run code. Where you "
            "trust it, load it with transformers, save it with `save_pretrained(folder, safe_serialization=True)` "
            "and pass --model with that folder."
        )
    _check_transformer_files(folder, tokenizer_config_required=False)
    architectures = _json_object(folder / "config.json").get("architectures")
    architectures = [str(a) for a in architectures] if isinstance(architectures, list) else []
    rs_base = [marker for marker in ("rs_pretrain.json", "rs_base.json") if (folder / marker).exists()]
    if rs_base or (architectures and not any(a.endswith("ForSequenceClassification") for a in architectures)):
        kind = ", ".join(architectures) or rs_base[0]
        raise RsError(
            f"{name} is a base model ({kind}), not a sentiment classifier: it has no trained classification head "
            f"to score reviews with. Fine-tune it first: rs finetune REVIEWS --base {name}."
        )


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
