import json

import pandas as pd
import pytest

from review_sentiment.config import FinetuneArguments
from review_sentiment.errors import Interrupted, RsError
from review_sentiment.finetune import finetune, load_training_data, stratified_split
from review_sentiment.normalize import NormalizationRecipe
from review_sentiment.options import LabelOptions
from review_sentiment.preprocess import preprocess_file
from tests.conftest import RecordingReporter

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
    result = finetune(tmp_path / "easy.csv", str(tiny_base), args, output_dir=tmp_path / "m")
    assert result.labels == ["negative", "positive"]
    assert result.metrics["accuracy"] >= 0.9


def test_two_classes_from_ratings_and_unlabeled_rows_skipped(tmp_path, tiny_base):
    from tests.conftest import SAMPLE

    result = finetune(
        SAMPLE,
        str(tiny_base),
        QUICK,
        output_dir=tmp_path / "m",
        labels=LabelOptions(rating_col="rating", rating_bins="1-2,,4-5"),
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
    result = finetune(None, str(tiny_base), QUICK, output_dir=tmp_path / "m", processed_dir=tmp_path)
    meta = json.loads((result.output_dir / "rs_meta.json").read_text())
    assert meta["normalization"] == recipe.to_dict()
    assert meta["data"]["path"] == str(processed.resolve())


def test_max_length_is_clamped_with_a_warning(tmp_path, tiny_base):
    from tests.conftest import SAMPLE

    args = FinetuneArguments(epochs=1, max_length=512, early_stopping_patience=0)
    result = finetune(SAMPLE, str(tiny_base), args, output_dir=tmp_path / "m")
    assert any("using 128" in w for w in result.warnings)
    assert json.loads((result.output_dir / "rs_meta.json").read_text())["max_length"] == 128


def test_same_seed_same_result(tmp_path, tiny_base):
    from tests.conftest import SAMPLE

    first = finetune(SAMPLE, str(tiny_base), QUICK, output_dir=tmp_path / "a")
    second = finetune(SAMPLE, str(tiny_base), QUICK, output_dir=tmp_path / "b")

    def without_timing(history):
        return [
            {k: v for k, v in epoch.items() if k not in ("train_tokens_per_second", "train_seconds")}
            for epoch in history
        ]

    assert without_timing(first.history) == without_timing(second.history)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_one_class_is_an_error(tmp_path, tiny_base):
    pd.DataFrame({"review": ["좋아요", "최고"], "label": ["긍정", "긍정"]}).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(RsError, match="at least two classes"):
        finetune(tmp_path / "one.csv", str(tiny_base), QUICK, output_dir=tmp_path / "m")


def test_existing_output_needs_force(tmp_path, tiny_base):
    (tmp_path / "m").mkdir()
    from tests.conftest import SAMPLE

    with pytest.raises(RsError, match="--force"):
        finetune(SAMPLE, str(tiny_base), QUICK, output_dir=tmp_path / "m")


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


# ------------------------------------------------------------------------------------ checkpoints and --resume

RESUMABLE = FinetuneArguments(
    epochs=3, learning_rate=4e-3, batch_size=8, validation_fraction=0.25, early_stopping_patience=0
)  # 12 steps per epoch on `easy_reviews`; macro-F1 stays at epoch 2 and improves at 3, so the trajectory decides


@pytest.fixture
def easy_reviews(tmp_path):
    positive = [f"정말 최고 좋아요 추천 {i}" for i in range(40)]
    negative = [f"진짜 최악 별로 환불 {i}" for i in range(40)]
    neutral = [f"그냥 보통 무난 {i}" for i in range(40)]
    path = tmp_path / "easy.csv"
    pd.DataFrame(
        {"review": positive + negative + neutral, "label": ["긍정"] * 40 + ["부정"] * 40 + ["중립"] * 40}
    ).to_csv(path, index=False)
    return path


def _interrupt_at(wanted: int):
    def on_step(epoch, step):
        if step == wanted:
            raise KeyboardInterrupt

    return on_step


def _without_timing(history):
    return [
        {k: v for k, v in epoch.items() if k not in ("train_tokens_per_second", "train_seconds")} for epoch in history
    ]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: autocast on a CPU (auto's choice with AMX, AVX512-BF16)
def test_interrupted_runs_resume_to_the_same_model(tmp_path, tiny_base, easy_reviews, monkeypatch, precision):
    import os
    import signal

    import review_sentiment.finetune as finetune_module

    resumable = FinetuneArguments(**{**RESUMABLE.to_dict(), "precision": precision})
    straight = finetune(easy_reviews, str(tiny_base), resumable, output_dir=tmp_path / "straight")
    assert straight.best_epoch == 3
    out, checkpoint = tmp_path / "resumed", tmp_path / "resumed.rs-checkpoint"

    # 1. Stopped after the last step of epoch 1, before its validation.
    with pytest.raises(Interrupted, match="step 12 of 36.*rerun the same command with --resume"):
        finetune(easy_reviews, str(tiny_base), resumable, output_dir=out, on_step=_interrupt_at(12))
    assert not out.exists() and (checkpoint / "training.json").exists() and (checkpoint / "model.safetensors").exists()

    # 2. A real Ctrl-C (SIGINT) in the middle of epoch 2: the step finishes, then the checkpoint is saved there.
    def ctrl_c_at_18(epoch, step):
        if step == 18:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match="step 18 of 36"):
        finetune(easy_reviews, str(tiny_base), resumable, output_dir=out, resume=True, on_step=ctrl_c_at_18)
    state = json.loads((checkpoint / "training.json").read_text())
    assert (state["run"]["epoch"], state["run"]["position"], state["run"]["step"]) == (2, 6, 18)
    assert state["best_weights"] == "best"  # epoch 1's weights, kept apart from the current ones

    # 3. Stopped in the middle of a step of epoch 3 (as a second Ctrl-C would): the checkpoint of epoch 2 is kept.
    calls = {"n": 0}

    def interrupted(step_part):  # a step makes its batch with one of these (packed on a CPU, padded elsewhere)
        def part(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 9:  # steps 19-24 finish epoch 2, steps 25 and 26 complete, step 27 is cut off
                raise KeyboardInterrupt
            return step_part(*args, **kwargs)

        return part

    for name in ("pad_batch", "packed_classifier_logits"):
        monkeypatch.setattr(finetune_module, name, interrupted(getattr(finetune_module, name)))
    with pytest.raises(Interrupted, match="during step 27 .*checkpoint of step 24"):
        finetune(easy_reviews, str(tiny_base), resumable, output_dir=out, resume=True)
    monkeypatch.undo()
    assert json.loads((checkpoint / "training.json").read_text())["run"]["step"] == 24

    resumed = finetune(easy_reviews, str(tiny_base), resumable, output_dir=out, resume=True)
    assert not checkpoint.exists()  # deleted once the model folder is saved
    assert _without_timing(resumed.history) == _without_timing(straight.history)
    assert resumed.best_epoch == straight.best_epoch
    assert (out / "model.safetensors").read_bytes() == (tmp_path / "straight" / "model.safetensors").read_bytes()
    meta = json.loads((out / "rs_meta.json").read_text())
    assert meta["resumed"] == 3 and meta["precision"] == precision


def test_resume_refuses_other_options_and_force_starts_over(tmp_path, tiny_base, easy_reviews):
    out, checkpoint = tmp_path / "m", tmp_path / "m.rs-checkpoint"
    with pytest.raises(KeyboardInterrupt):
        finetune(easy_reviews, str(tiny_base), RESUMABLE, output_dir=out, on_step=_interrupt_at(2))
    other = FinetuneArguments(**{**RESUMABLE.to_dict(), "learning_rate": 1e-3, "early_stopping_patience": 1})
    with pytest.raises(RsError, match=r"--learning-rate was 0.004 there, 0.001 now; --patience was 0 there, 1 now"):
        finetune(easy_reviews, str(tiny_base), other, output_dir=out, resume=True)
    with pytest.raises(RsError, match="Pass --resume to continue it .*or --force to start over"):
        finetune(easy_reviews, str(tiny_base), RESUMABLE, output_dir=out)
    assert checkpoint.exists()
    started_over = []
    finetune(
        easy_reviews,
        str(tiny_base),
        FinetuneArguments(**{**RESUMABLE.to_dict(), "epochs": 1}),
        output_dir=out,
        force=True,
        on_step=lambda epoch, step: started_over.append(step),
    )
    assert started_over[0] == 1 and (out / "model.safetensors").exists() and not checkpoint.exists()


def test_resume_without_checkpoint_starts_fresh_and_finds_a_default_named_one(tmp_path, tiny_base, easy_reviews):
    args = FinetuneArguments(**{**RESUMABLE.to_dict(), "epochs": 1})
    reporter = RecordingReporter()
    finetune(easy_reviews, str(tiny_base), args, models_dir=tmp_path / "fresh", resume=True, reporter=reporter)
    assert reporter.said("No checkpoint to resume")
    assert len(list((tmp_path / "fresh").glob("tiny-easy-*/model.safetensors"))) == 1

    # A default name holds the start time; rerunning the same command with --resume finds the checkpoint anyway.
    models = tmp_path / "models"
    with pytest.raises(KeyboardInterrupt):
        finetune(easy_reviews, str(tiny_base), args, models_dir=models, on_step=_interrupt_at(5))
    (checkpoint,) = models.glob("tiny-easy-*.rs-checkpoint")
    with pytest.raises(RsError, match="--resume"):
        finetune(easy_reviews, str(tiny_base), args, models_dir=models)
    result = finetune(easy_reviews, str(tiny_base), args, models_dir=models, resume=True)
    assert result.output_dir.name == checkpoint.name.removesuffix(".rs-checkpoint")
    assert not checkpoint.exists() and len(list(models.glob("tiny-easy-*/model.safetensors"))) == 1


def test_tfidf_resume_just_trains_again(tmp_path, easy_reviews):
    reporter = RecordingReporter()
    args = FinetuneArguments(validation_fraction=0.25)
    finetune(easy_reviews, "tfidf", args, output_dir=tmp_path / "tf", resume=True, reporter=reporter)
    assert reporter.said("keeps no checkpoint")
    assert (tmp_path / "tf" / "rs_meta.json").exists() and not (tmp_path / "tf.rs-checkpoint").exists()


@pytest.mark.slow
def test_a_classifier_with_other_classes_can_be_the_base(tmp_path, tiny_model, sample_table):
    """A three-class model fine-tuned again on two classes gets a new head (transformers refuses the old one's
    shapes); its encoder is the base's."""
    from safetensors.torch import load_file

    sample_table[sample_table["label"] != "neutral"].to_csv(tmp_path / "binary.csv", index=False)
    arguments = FinetuneArguments(epochs=1, learning_rate=1e-6)
    result = finetune(tmp_path / "binary.csv", str(tiny_model), arguments, output_dir=tmp_path / "two")
    assert result.labels == ["negative", "positive"]
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    before, after = load_file(tiny_model / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert after["classifier.out_proj.weight"].shape[0] == 2 and before["classifier.out_proj.weight"].shape[0] == 3
    word_embeddings = "electra.embeddings.word_embeddings.weight"
    assert (after[word_embeddings] - before[word_embeddings]).abs().max() < 1e-3  # the base's, barely moved
