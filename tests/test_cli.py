"""The three commands as a user runs them, through typer's CliRunner, in a fresh working directory."""

import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from review_sentiment.cli import app
from tests.conftest import SAMPLE

runner = CliRunner()


@pytest.mark.slow
def test_preprocess_finetune_predict_roundtrip(tmp_path, monkeypatch, tiny_base):
    monkeypatch.chdir(tmp_path)
    reviews = tmp_path / "reviews.csv"
    reviews.write_bytes(SAMPLE.read_bytes())

    result = runner.invoke(app, ["preprocess", "reviews.csv"])
    assert result.exit_code == 0, result.output
    assert "data/processed/reviews.csv" in result.output and "360 rows" in result.output

    result = runner.invoke(app, ["finetune", "--base", str(tiny_base), "--epochs", "2", "--lr", "1e-3"])
    assert result.exit_code == 0, result.output
    assert "data/processed/reviews.csv" in result.output  # says which file it picked up
    models = list((tmp_path / "models").iterdir())
    assert len(models) == 1 and (models[0] / "model.safetensors").exists()

    result = runner.invoke(app, ["predict", "reviews.csv", "-o", "labeled.csv"])
    assert result.exit_code == 0, result.output
    assert f"models/{models[0].name} (newest under models/" in result.output  # the default model is printed
    assert "Labeled 360 of 360 rows" in result.output
    labeled = pd.read_csv("labeled.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    original = pd.read_csv(reviews, dtype=str, keep_default_na=False)
    assert labeled[original.columns].equals(original)
    assert labeled["predicted_label"].isin(["negative", "neutral", "positive"]).all()


def test_offline_alias_exits_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "train.csv").write_bytes(SAMPLE.read_bytes())
    started = time.perf_counter()
    result = runner.invoke(app, ["finetune", "train.csv", "--base", "kcelectra"])
    assert result.exit_code == 1
    assert time.perf_counter() - started < 30
    assert "beomi/KcELECTRA-base-v2022" in result.output and "hf download" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_unknown_text_column_lists_the_columns(tmp_path):
    (tmp_path / "x.csv").write_text("id,memo\n1,좋아요\n", encoding="utf-8")
    result = runner.invoke(app, ["preprocess", str(tmp_path / "x.csv"), "-o", str(tmp_path / "y.csv")])
    assert result.exit_code == 1
    assert "['id', 'memo']" in result.output and "--text-col" in result.output


def test_finetune_without_data_explains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["finetune", "--base", "kcelectra"])
    assert result.exit_code == 1
    assert "rs preprocess reviews.csv" in result.output


def test_predict_without_models_explains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.csv").write_text("review\n좋아요\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", "r.csv"])
    assert result.exit_code == 1
    assert "rs finetune" in result.output


def test_usage_errors_exit_2():
    assert runner.invoke(app, ["predict"]).exit_code == 2
    assert runner.invoke(app, ["finetune", "--epochs", "many"]).exit_code == 2


def test_help_teaches_each_command():
    for command in ("preprocess", "finetune", "predict"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
    assert "kcelectra" in runner.invoke(app, ["finetune", "--help"]).output


def test_help_is_instant_because_heavy_libraries_are_not_imported():
    import subprocess
    import sys

    code = (
        "import sys; from review_sentiment.cli import app; "
        "print(sorted(m for m in ('torch', 'transformers', 'kiwipiepy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "rs (review-sentiment)" in result.output


def test_out_of_range_options_are_usage_errors():
    for option in (["--batch-size", "0"], ["--epochs", "0"], ["--validation-fraction", "0.7"], ["--lr", "-1"]):
        result = runner.invoke(app, ["finetune", "--base", "kcelectra", *option])
        assert result.exit_code == 2, option


def test_name_must_stay_under_models(tmp_path):
    (tmp_path / "t.csv").write_text("review,label\n좋아요,긍정\n별로,부정\n", encoding="utf-8")
    result = runner.invoke(app, ["finetune", str(tmp_path / "t.csv"), "--name", "../escape"])
    assert result.exit_code == 1 and "plain folder name" in result.output


@pytest.mark.slow
def test_predict_on_a_file_without_text_and_a_bad_output_name(tmp_path, tiny_model):
    (tmp_path / "blank.csv").write_text("review,label\n,\n  ,\n", encoding="utf-8")
    result = runner.invoke(
        app, ["predict", str(tmp_path / "blank.csv"), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model)]
    )
    assert result.exit_code == 0, result.output
    assert "Labeled 0 of 2 rows" in result.output
    result = runner.invoke(
        app, ["predict", str(tmp_path / "blank.csv"), "-o", str(tmp_path / "o.xlsx"), "--model", str(tiny_model)]
    )
    assert result.exit_code == 1 and "rs writes .csv, .tsv, .jsonl" in result.output


@pytest.mark.slow
def test_pretrain_command_then_finetune_on_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.csv").write_bytes(SAMPLE.read_bytes())
    result = runner.invoke(
        app,
        [
            "pretrain",
            "corpus.csv",
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--max-length",
            "64",
            "--vocab-size",
            "800",
            "--name",
            "pre",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 steps (planned steps)" in result.output and "padding" in result.output
    assert (tmp_path / "models" / "pre" / "rs_pretrain.json").exists()
    result = runner.invoke(app, ["pretrain", "corpus.csv", "--max-steps", "2", "--name", "pre"])
    assert result.exit_code == 1 and "--resume" in result.output
    result = runner.invoke(app, ["finetune", "corpus.csv", "--base", "models/pre", "--epochs", "1"])
    assert result.exit_code == 0, result.output


def test_tfidf_evaluate_models_and_info(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    result = runner.invoke(app, ["finetune", "reviews.csv", "--base", "tfidf", "--name", "baseline"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "reviews.csv"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "macro-F1" in result.output and "gold \\ predicted" in result.output
    assert (tmp_path / "models" / "baseline" / "evaluations" / "reviews" / "confusion_matrix.png").exists()
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "baseline" in result.output and "tfidf" in result.output
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    for name in ("rs:", "python:", "torch:", "transformers:", "kiwipiepy:", "cuda:"):
        assert name in result.output


def test_predict_quantized_and_bad_precision_options(tmp_path, tiny_model):
    result = runner.invoke(
        app, ["predict", str(SAMPLE), "-o", str(tmp_path / "out.csv"), "--model", str(tiny_model), "--quantize", "int8"]
    )
    assert result.exit_code == 0, result.output
    assert "cpu, int8" in result.output and "Labeled 360 of 360 rows" in result.output
    for options, message in (
        (["--quantize", "int4"], "--quantize takes int8"),
        (["--precision", "bf16"], "bf16 is for GPUs"),
        (["--quantize", "int8", "--precision", "fp32"], "not both"),
    ):
        result = runner.invoke(
            app, ["predict", str(SAMPLE), "-o", str(tmp_path / "x.csv"), "-m", str(tiny_model), *options]
        )
        assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "x.csv").exists()
