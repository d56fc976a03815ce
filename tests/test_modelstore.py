import json
import shutil

import pytest

from review_sentiment.errors import RsError
from review_sentiment.modelstore import load_transformer_folder, read_meta, recipe_of
from review_sentiment.normalize import NormalizationRecipe

pytestmark = pytest.mark.slow


@pytest.fixture
def model_copy(tmp_path, tiny_model):
    return shutil.copytree(tiny_model, tmp_path / "model")


def _edit_meta(folder, **changes):
    meta = json.loads((folder / "rs_meta.json").read_text())
    meta.update(changes)
    (folder / "rs_meta.json").write_text(json.dumps(meta))


def test_loads_with_labels_and_recipe(tiny_model):
    model, tokenizer, meta = load_transformer_folder(tiny_model)
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert recipe_of(meta) == NormalizationRecipe()
    assert not model.training


def test_folder_without_metadata_is_refused(model_copy):
    (model_copy / "rs_meta.json").unlink()
    with pytest.raises(RsError, match="not a model made by `rs finetune`"):
        read_meta(model_copy)


def test_mismatched_labels_are_refused(model_copy):
    _edit_meta(model_copy, labels=["negative", "positive", "neutral"])
    with pytest.raises(RsError, match="lists labels"):
        load_transformer_folder(model_copy)


def test_pickle_weights_are_not_loaded(model_copy):
    (model_copy / "model.safetensors").rename(model_copy / "pytorch_model.bin")
    with pytest.raises(RsError, match="safetensors"):
        load_transformer_folder(model_copy)


def test_newer_format_asks_for_an_upgrade(model_copy):
    _edit_meta(model_copy, format_version=99)
    with pytest.raises(RsError, match="upgrade rs"):
        read_meta(model_copy)
