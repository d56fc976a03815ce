import json
import pickle
import shutil

import pytest

from review_sentiment.errors import RsError
from review_sentiment.modelstore import list_models, load_transformer_folder, read_meta, recipe_of
from review_sentiment.normalize import NormalizationRecipe

pytestmark = pytest.mark.slow


@pytest.fixture
def model_copy(tmp_path, tiny_model):
    return shutil.copytree(tiny_model, tmp_path / "model")


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _edit_meta(folder, **changes):
    _edit_json(folder / "rs_meta.json", **changes)


def _refused(load, folder, match):
    """The folder is refused with a one-line RsError matching `match`."""
    with pytest.raises(RsError, match=match) as caught:
        load(folder)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _save_weights(folder, tensors):
    from safetensors.torch import save_file

    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


class _RunsCode:
    """A pickle that creates a file when unpickled: it shows whether anything unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything calls torch.load or pickle.load(s) while loading."""
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle a file")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


# --- the good folder ---


def test_loads_with_labels_and_recipe(tiny_model):
    model, tokenizer, meta = load_transformer_folder(tiny_model)
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert recipe_of(meta) == NormalizationRecipe()
    assert not model.training


def test_harmless_extra_buffers_still_load(model_copy):
    import torch

    # older checkpoints store the position_ids buffer; transformers ignores it and so does rs
    _save_weights(model_copy, {**_weights(model_copy), "electra.embeddings.position_ids": torch.arange(128)[None]})
    load_transformer_folder(model_copy)


# --- where --model points ---


def test_a_file_instead_of_a_folder_is_refused(tiny_model):
    message = _refused(read_meta, tiny_model / "model.safetensors", "is a file, not a model folder")
    assert f"--model {tiny_model}" in message


def test_a_missing_or_empty_folder_is_refused(tmp_path):
    _refused(read_meta, tmp_path / "nothing", "No model folder")
    (tmp_path / "empty").mkdir()
    _refused(load_transformer_folder, tmp_path / "empty", "is empty")


def test_folder_without_metadata_is_refused(model_copy, tmp_path):
    (model_copy / "rs_meta.json").unlink()
    message = _refused(read_meta, model_copy, "not a model made by `rs finetune` but by another tool")
    assert f"rs finetune REVIEWS --base {model_copy}" in message
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    _refused(read_meta, tmp_path / "notes", "not a model made by `rs finetune`")


def test_an_rs_base_is_pointed_to_finetune(tiny_base):
    _refused(read_meta, tiny_base, "--base")


# --- rs_meta.json ---


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "is not valid JSON"),
        (b"\xff\xfe\x00", "is not valid JSON"),
        ("[1, 2]", "does not hold a JSON object"),
    ],
)
def test_unreadable_metadata_is_refused(model_copy, content, match):
    path = model_copy / "rs_meta.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    _refused(read_meta, model_copy, match)


@pytest.mark.parametrize("labels", ["positive", [], ["negative", "negative", "positive"], [0, 1, 2], ["", "a"], None])
def test_labels_that_are_not_distinct_strings_are_refused(model_copy, labels):
    _edit_meta(model_copy, labels=labels)
    _refused(read_meta, model_copy, "labels must be a non-empty list of distinct, non-empty strings")


@pytest.mark.parametrize("key", ["labels", "normalization"])
def test_metadata_without_a_required_key_is_refused(model_copy, key):
    meta = json.loads((model_copy / "rs_meta.json").read_text())
    del meta[key]
    (model_copy / "rs_meta.json").write_text(json.dumps(meta))
    _refused(read_meta, model_copy, f"lacks '{key}'")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"normalization": "default"}, "normalization must be a JSON object"),
        ({"normalization": {"colour": "red"}}, "Unknown normalization settings"),
        ({"format_version": "1"}, "not a whole number"),
        ({"model_type": "onnx"}, "model_type 'onnx', which this rs does not know"),
    ],
)
def test_malformed_metadata_is_refused(model_copy, changes, match):
    _edit_meta(model_copy, **changes)
    _refused(read_meta, model_copy, match)


def test_newer_format_asks_for_an_upgrade(model_copy):
    _edit_meta(model_copy, format_version=99)
    _refused(read_meta, model_copy, "upgrade rs")


def test_mismatched_labels_are_refused(model_copy):
    _edit_meta(model_copy, labels=["negative", "positive", "neutral"])
    _refused(load_transformer_folder, model_copy, "lists labels")


@pytest.mark.parametrize("max_length", [512, 0, "128", 12.5])
def test_max_length_beyond_the_model_or_not_a_count_is_refused(model_copy, max_length):
    _edit_meta(model_copy, max_length=max_length)
    match = "handles at most 128 tokens" if max_length == 512 else "max_length must be a positive whole number"
    _refused(load_transformer_folder, model_copy, match)


def test_a_shorter_max_length_is_fine(model_copy):
    _edit_meta(model_copy, max_length=64)
    assert load_transformer_folder(model_copy)[2]["max_length"] == 64


# --- incomplete folders ---


@pytest.mark.parametrize(
    ("removed", "match"),
    [
        ("config.json", "incomplete: config.json is missing"),
        ("tokenizer_config.json", "incomplete: tokenizer_config.json is missing"),
        ("tokenizer.json", r"no tokenizer vocabulary \(tokenizer.json or vocab.txt\)"),
        ("model.safetensors", "incomplete: model.safetensors is missing"),
    ],
)
def test_incomplete_folders_are_refused(model_copy, removed, match):
    (model_copy / removed).unlink()
    _refused(load_transformer_folder, model_copy, match)


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json"])
def test_damaged_settings_are_refused(model_copy, name):
    (model_copy / name).write_text("{damaged")
    _refused(load_transformer_folder, model_copy, f"{name} is not valid JSON")
    (model_copy / name).write_text('"a string"')
    _refused(load_transformer_folder, model_copy, f"{name} does not hold a JSON object")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_weights_are_refused(model_copy, damage):
    path = model_copy / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not safetensors at all", "empty": b""}[damage])
    _refused(load_transformer_folder, model_copy, "safetensors weights .* are damaged or truncated")


def test_tokenizer_without_padding_is_refused(model_copy):
    _edit_json(model_copy / "tokenizer_config.json", pad_token=None)
    _refused(load_transformer_folder, model_copy, "no padding token")


# --- weights that do not match the config ---


def test_a_missing_tensor_is_refused(model_copy):
    tensors = _weights(model_copy)
    del tensors["classifier.dense.weight"]
    _save_weights(model_copy, tensors)
    _refused(
        load_transformer_folder, model_copy, r"do not match config.json \(missing tensors: classifier.dense.weight\)"
    )


def test_an_extra_tensor_is_refused(model_copy):
    tensors = _weights(model_copy)
    _save_weights(model_copy, {**tensors, "pooler.dense.weight": tensors["classifier.dense.weight"].clone()})
    _refused(load_transformer_folder, model_copy, "unexpected tensors: pooler.dense.weight")


def test_a_tensor_of_the_wrong_shape_is_refused(model_copy):
    import torch

    _save_weights(model_copy, {**_weights(model_copy), "classifier.out_proj.weight": torch.zeros(2, 32)})
    _refused(
        load_transformer_folder, model_copy, r"wrong shape: classifier.out_proj.weight \(2, 32\) instead of \(3, 32\)"
    )


def test_weights_of_another_model_are_refused(model_copy, tiny_base):
    shutil.copy(tiny_base / "model.safetensors", model_copy / "model.safetensors")  # the base, not the classifier
    message = _refused(load_transformer_folder, model_copy, "missing tensors: classifier.dense.bias")
    assert "unexpected tensors: discriminator_predictions" in message and "and 1 more" in message


def test_config_vocab_size_must_match_the_embeddings(model_copy):
    _edit_json(model_copy / "config.json", vocab_size=1400)
    _refused(
        load_transformer_folder, model_copy, "config.json says vocab_size 1400 but the embeddings .* have 1500 rows"
    )


def test_a_config_of_another_architecture_is_refused(model_copy):
    _edit_json(model_copy / "config.json", model_type="bert")
    _refused(load_transformer_folder, model_copy, "missing tensors: bert.embeddings")


def test_unknown_model_type_is_refused(model_copy):
    _edit_json(model_copy / "config.json", model_type="nonesuch")
    _refused(load_transformer_folder, model_copy, "model type 'nonesuch', which transformers .* does not know")


def test_tokenizer_larger_than_the_embeddings_is_refused(model_copy):
    tokenizer = json.loads((model_copy / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    vocab.update({f"extra{i}": len(vocab) + i for i in range(10)})
    (model_copy / "tokenizer.json").write_text(json.dumps(tokenizer))
    _refused(load_transformer_folder, model_copy, "the tokenizer has 1510 tokens but the model only 1500")


# --- no code from the folder: no pickle, no trust_remote_code ---


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "model.pkl"])
def test_pickle_weights_are_refused_without_unpickling(model_copy, tmp_path, no_unpickling, name):
    (model_copy / "model.safetensors").unlink()
    (model_copy / name).write_bytes(pickle.dumps(_RunsCode(tmp_path / "ran")))
    _refused(load_transformer_folder, model_copy, rf"weights only in pickle format \({name}\), which rs never opens")
    assert not (tmp_path / "ran").exists()


def test_pickles_beside_safetensors_are_never_opened(model_copy, tmp_path, no_unpickling):
    for name in ("pytorch_model.bin", "training_args.bin", "tokenizer.pkl", "optimizer.pt"):
        (model_copy / name).write_bytes(pickle.dumps(_RunsCode(tmp_path / "ran")))
    load_transformer_folder(model_copy)
    assert not (tmp_path / "ran").exists()


def test_a_pickle_named_safetensors_is_refused_without_unpickling(model_copy, tmp_path, no_unpickling):
    import torch

    torch.save({"x": torch.zeros(1)}, model_copy / "model.safetensors")  # a zip of pickles, as torch.save writes
    _refused(load_transformer_folder, model_copy, "damaged or truncated")
    (model_copy / "model.safetensors").write_bytes(pickle.dumps(_RunsCode(tmp_path / "ran")))
    _refused(load_transformer_folder, model_copy, "damaged or truncated")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("name", "auto_map"),
    [
        ("config.json", {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"}),
        ("tokenizer_config.json", {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}),
    ],
)
def test_custom_code_is_refused(model_copy, name, auto_map):
    (model_copy / "modeling_x.py").write_text("raise SystemExit('custom code ran')\n")
    _edit_json(model_copy / name, auto_map=auto_map)
    _refused(
        load_transformer_folder, model_copy, f"{name} asks for custom code .* rs never runs code from a model folder"
    )


def test_list_models_reports_damaged_metadata_instead_of_failing(tmp_path, tiny_model):
    shutil.copytree(tiny_model, tmp_path / "good")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "rs_meta.json").write_text("[1, 2]")
    (tmp_path / "numbers").mkdir()
    (tmp_path / "numbers" / "rs_meta.json").write_text(json.dumps({"labels": [0, 1]}))
    kinds = {row["name"]: row["kind"] for row in list_models(tmp_path)}
    assert kinds["good"] == "transformer"
    assert kinds["list"].startswith("unreadable") and kinds["numbers"].startswith("unreadable")


# --- TF-IDF folders (the weights are digest-checked; the vocabulary file and metadata are checked here) ---


@pytest.fixture(scope="module")
def tfidf_model(tmp_path_factory):
    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune
    from tests.conftest import SAMPLE

    output = tmp_path_factory.mktemp("tfidf") / "tf"
    finetune(SAMPLE, "tfidf", FinetuneArguments(), output_dir=output)
    return output


@pytest.fixture
def tfidf_copy(tmp_path, tfidf_model):
    return shutil.copytree(tfidf_model, tmp_path / "tf")


def _load_tfidf(folder):
    from review_sentiment.scoring import Predictor

    return Predictor(folder)


def _edit_vocabulary(folder, edit):
    from review_sentiment.baseline import VOCABULARY_FILE

    stored = json.loads((folder / VOCABULARY_FILE).read_text())
    edit(stored)
    (folder / VOCABULARY_FILE).write_text(json.dumps(stored, ensure_ascii=False))


def test_tfidf_without_a_digest_is_refused(tfidf_copy):
    meta = json.loads((tfidf_copy / "rs_meta.json").read_text())
    del meta["weights_sha256"]
    (tfidf_copy / "rs_meta.json").write_text(json.dumps(meta))
    _refused(_load_tfidf, tfidf_copy, r"lacks the weights' digest \(weights_sha256\)")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda stored: stored.pop("char"), "the TF-IDF model lacks 'char'"),
        (lambda stored: stored["settings"].update(char_ngrams="x"), "n-gram settings are not"),
        (
            lambda stored: stored["word"].update({term: 0 for term in list(stored["word"])[:3]}),
            "vocabularies are damaged",
        ),
    ],
)
def test_damaged_tfidf_vocabularies_are_refused(tfidf_copy, edit, match):
    _load_tfidf(tfidf_copy)  # the intact copy loads
    _edit_vocabulary(tfidf_copy, edit)
    _refused(_load_tfidf, tfidf_copy, match)


# --- Hugging Face checkpoints rs did not train ---

LABELS3 = ("negative", "neutral", "positive")


def _checkpoint_meta(folder, **options):
    from review_sentiment.modelstore import locate_model, model_meta

    return model_meta(locate_model(folder), **options)


def test_a_checkpoint_named_label_0_is_refused_without_labels(checkpoints):
    message = _refused(_checkpoint_meta, checkpoints["numbered"], "does not say which class is which")
    assert "id2label {0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2'}" in message
    assert "--labels negative,neutral,positive (in that order: class 0, class 1, class 2)" in message


def test_labels_name_the_classes_in_the_checkpoints_order(checkpoints):
    from review_sentiment.modelstore import describe_checkpoint

    meta = _checkpoint_meta(checkpoints["numbered"], labels=("부정", "중립", "긍정"))
    assert meta["labels"] == list(LABELS3) and meta["source"]["classes"] == list(LABELS3)
    assert meta["model_type"] == "transformer" and meta["max_length"] == 128  # the tiny model's own limit
    assert "rs_meta.json" not in {path.name for path in checkpoints["numbered"].iterdir()}
    reversed_meta = _checkpoint_meta(checkpoints["numbered"], labels=("positive", "neutral", "negative"))
    assert reversed_meta["labels"] == list(LABELS3)  # rs's order for the columns, the checkpoint's below
    assert reversed_meta["source"]["classes"] == ["positive", "neutral", "negative"]
    assert describe_checkpoint(reversed_meta).startswith("class 0 'LABEL_0' = positive, class 1 'LABEL_1' = neutral")
    assert describe_checkpoint(reversed_meta).endswith("(from --labels)")


def test_korean_class_names_are_read_from_id2label(checkpoints):
    from review_sentiment.modelstore import describe_checkpoint

    meta = _checkpoint_meta(checkpoints["korean"])
    assert meta["source"]["id2label"] == {0: "긍정", 1: "중립", 2: "부정"}
    assert meta["source"]["classes"] == ["positive", "neutral", "negative"] and meta["labels"] == list(LABELS3)
    assert meta["normalization"] == NormalizationRecipe().to_dict() and meta["source"]["normalization"] == "rs"
    assert describe_checkpoint(meta) == (
        "class 0 '긍정' = positive, class 1 '중립' = neutral, class 2 '부정' = negative (from its id2label)"
    )
    assert _checkpoint_meta(checkpoints["korean"], normalization="none")["normalization"] is None


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (("negative", "positive"), r"names 2 classes but .* has 3 \(id2label \{0: 'LABEL_0'.*e.g. --labels negative"),
        (("negative", "so-so", "positive"), "'so-so' is not a label rs knows"),
        (("negative", "neg", "positive"), "gives two classes the same label"),
    ],
)
def test_labels_that_do_not_fit_are_refused(checkpoints, labels, match):
    _refused(lambda folder: _checkpoint_meta(folder, labels=labels), checkpoints["numbered"], match)


def test_labels_may_not_contradict_a_known_id2label(checkpoints):
    def load(folder):
        return _checkpoint_meta(folder, labels=LABELS3)

    _refused(load, checkpoints["korean"], r"contradicts the id2label .* \(class 0 is '긍정' there, 'negative' here")
    assert _checkpoint_meta(checkpoints["korean"], labels=("pos", "neu", "neg"))["labels"] == list(LABELS3)


def test_labels_and_normalization_are_refused_for_an_rs_model(tiny_model):
    message = _refused(lambda folder: _checkpoint_meta(folder, labels=LABELS3), tiny_model, "apply only to checkpoints")
    assert "--labels" in message and "rs_meta.json" in message
    _refused(lambda folder: _checkpoint_meta(folder, normalization="none"), tiny_model, "drop --normalization")


def test_a_checkpoint_of_five_classes_is_refused(tmp_path, checkpoints):
    folder = shutil.copytree(checkpoints["numbered"], tmp_path / "stars")
    _edit_json(folder / "config.json", id2label={str(i): f"{i + 1} stars" for i in range(5)})
    _refused(lambda f: _checkpoint_meta(f, labels=LABELS3), folder, "scores checkpoints of 2 or 3 classes only")


def test_a_pickle_only_checkpoint_is_refused_without_unpickling(tmp_path, checkpoints, no_unpickling):
    folder = shutil.copytree(checkpoints["numbered"], tmp_path / "pickled")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_RunsCode(tmp_path / "ran")))
    load = lambda f: _checkpoint_meta(f, labels=LABELS3)  # noqa: E731
    _refused(load, folder, r"weights only in pickle format \(pytorch_model.bin\), which rs never opens")
    assert not (tmp_path / "ran").exists()


def test_custom_code_in_a_checkpoint_is_refused(tmp_path, checkpoints):
    folder = shutil.copytree(checkpoints["korean"], tmp_path / "custom")
    _edit_json(folder / "config.json", auto_map={"AutoModelForSequenceClassification": "modeling_x.XModel"})
    _refused(_checkpoint_meta, folder, "asks for custom code")


def test_a_base_model_is_not_a_classifier(tiny_base):
    _refused(_checkpoint_meta, tiny_base, r"is a base model \(ElectraForPreTraining\).*rs finetune REVIEWS --base")


def test_a_hub_id_offline_fails_fast_and_says_how_to_bring_a_copy(monkeypatch, hub_cache):
    import time

    from review_sentiment.modelstore import locate_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    message = _refused(locate_model, "daekeun-ml/koelectra-small-v3-nsmc", "HF_HUB_OFFLINE is set")
    assert time.perf_counter() - started < 10
    assert "hf download daekeun-ml/koelectra-small-v3-nsmc --revision main" in message
    assert "--model ./koelectra-small-v3-nsmc" in message


def test_a_hub_id_is_taken_from_the_hugging_face_cache_offline(monkeypatch, hub_cache, checkpoints):
    from review_sentiment.modelstore import locate_model
    from tests.conftest import HUB_COMMIT

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = hub_cache("rs-test/tiny-korean", checkpoints["korean"])
    location = locate_model("rs-test/tiny-korean")
    assert (location.folder, location.hub_id, location.commit) == (snapshot, "rs-test/tiny-korean", HUB_COMMIT)
    meta = _checkpoint_meta("rs-test/tiny-korean")
    assert meta["name"] == "rs-test/tiny-korean" and meta["source"]["revision"] == HUB_COMMIT
    assert meta["source"]["classes"] == ["positive", "neutral", "negative"]


def test_a_missing_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    from pathlib import Path

    from review_sentiment.modelstore import locate_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for name in ("./owner/name", "models/nope", Path("owner/name")):
        assert locate_model(name).hub_id is None
        _refused(_checkpoint_meta, name, "No model folder")
