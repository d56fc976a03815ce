import json

import pandas as pd
import pytest

from review_sentiment.config import FinetuneArguments
from review_sentiment.errors import RsError
from review_sentiment.finetune import LabelOptions, finetune, load_training_data, stratified_split
from review_sentiment.normalize import NormalizationRecipe
from review_sentiment.preprocess import preprocess_file

pytestmark = pytest.mark.slow

QUICK = FinetuneArguments(epochs=1, learning_rate=1e-3, early_stopping_patience=0)


def test_model_folder_has_everything_predict_needs(tiny_model):
    names = {p.name for p in tiny_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "rs_meta.json", "README.md"} <= names
    meta = json.loads((tiny_model / "rs_meta.json").read_text())
    assert meta["labels"] == ["negative", "neutral", "positive"]
    assert meta["normalization"] == NormalizationRecipe().to_dict()
    assert meta["base"]["is_local"] and meta["base"]["model_type"] == "electra"
    assert meta["training_args"]["learning_rate"] == 1e-3
    assert meta["data"]["label_counts"] == {"negative": 130, "neutral": 90, "positive": 140}
    assert meta["data"]["rows_train"] + meta["data"]["rows_validation"] == 360
    assert meta["data"]["fingerprint"].startswith("sha256:")
    assert len(meta["metrics"]["history"]) == 3
    assert 0 <= meta["metrics"]["macro_f1"] <= 1
    assert {"torch", "transformers", "kiwipiepy", "python"} <= set(meta["library_versions"])
    assert "negative, neutral, positive" in (tiny_model / "README.md").read_text()


def test_training_learns_a_separable_task(tmp_path, tiny_base):
    positive = [f"정말 최고 좋아요 추천 {i}" for i in range(40)]
    negative = [f"진짜 최악 별로 환불 {i}" for i in range(40)]
    pd.DataFrame({"review": positive + negative, "label": ["긍정"] * 40 + ["부정"] * 40}).to_csv(
        tmp_path / "easy.csv", index=False
    )
    # Random initial weights need a few epochs before attention finds the words that matter.
    args = FinetuneArguments(
        epochs=8, learning_rate=3e-3, batch_size=16, validation_fraction=0.25, early_stopping_patience=0
    )
    result = finetune(tmp_path / "easy.csv", str(tiny_base), args, output_dir=tmp_path / "m", quiet=True)
    assert result.labels == ["negative", "positive"]
    assert result.metrics["accuracy"] >= 0.9


def test_two_classes_from_ratings_and_unlabeled_rows_skipped(tmp_path, tiny_base):
    from tests.conftest import SAMPLE

    result = finetune(
        SAMPLE,
        str(tiny_base),
        QUICK,
        output_dir=tmp_path / "m",
        quiet=True,
        label_options=LabelOptions(rating_col="rating", rating_bins="1-2,,4-5"),
    )
    assert result.labels == ["negative", "positive"]
    assert result.data["rows_unlabeled"] == 90 and result.data["rows_used"] == 270


def test_processed_file_brings_its_recipe(tmp_path, tiny_base):
    from tests.conftest import SAMPLE

    recipe = NormalizationRecipe(sentence_split=False)
    processed = tmp_path / "processed.csv"
    preprocess_file(SAMPLE, processed, recipe=recipe, processed_dir=tmp_path)
    data = load_training_data(processed)
    assert data.from_preprocess and data.recipe == recipe and data.text_column == "review"
    result = finetune(None, str(tiny_base), QUICK, output_dir=tmp_path / "m", quiet=True, processed_dir=tmp_path)
    meta = json.loads((result.output_dir / "rs_meta.json").read_text())
    assert meta["normalization"] == recipe.to_dict()
    assert meta["data"]["path"] == str(processed.resolve())


def test_max_length_is_clamped_with_a_warning(tmp_path, tiny_base):
    from tests.conftest import SAMPLE

    args = FinetuneArguments(epochs=1, max_length=512, early_stopping_patience=0)
    result = finetune(SAMPLE, str(tiny_base), args, output_dir=tmp_path / "m", quiet=True)
    assert any("using 128" in w for w in result.warnings)
    assert json.loads((result.output_dir / "rs_meta.json").read_text())["max_length"] == 128


def test_same_seed_same_result(tmp_path, tiny_base):
    from tests.conftest import SAMPLE

    first = finetune(SAMPLE, str(tiny_base), QUICK, output_dir=tmp_path / "a", quiet=True)
    second = finetune(SAMPLE, str(tiny_base), QUICK, output_dir=tmp_path / "b", quiet=True)

    def without_timing(history):
        return [{k: v for k, v in epoch.items() if k != "train_tokens_per_second"} for epoch in history]

    assert without_timing(first.history) == without_timing(second.history)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_one_class_is_an_error(tmp_path, tiny_base):
    pd.DataFrame({"review": ["좋아요", "최고"], "label": ["긍정", "긍정"]}).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(RsError, match="at least two classes"):
        finetune(tmp_path / "one.csv", str(tiny_base), QUICK, output_dir=tmp_path / "m", quiet=True)


def test_existing_output_needs_force(tmp_path, tiny_base):
    (tmp_path / "m").mkdir()
    from tests.conftest import SAMPLE

    with pytest.raises(RsError, match="--force"):
        finetune(SAMPLE, str(tiny_base), QUICK, output_dir=tmp_path / "m", quiet=True)


def test_split_is_stratified_and_checks_rare_labels():
    labels = ["negative"] * 50 + ["positive"] * 30 + ["neutral"] * 20
    train, validation = stratified_split(labels, 0.1, seed=0)
    assert sorted(train + validation) == list(range(100))
    assert sorted(labels[i] for i in validation) == ["negative"] * 5 + ["neutral"] * 2 + ["positive"] * 3
    with pytest.raises(RsError, match="at least 2 examples"):
        stratified_split(["negative"] * 10 + ["positive"], 0.1, seed=0)


def test_invalid_arguments_say_what_is_wrong():
    with pytest.raises(RsError, match="learning_rate must be positive"):
        FinetuneArguments(learning_rate=0)
