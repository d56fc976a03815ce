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
