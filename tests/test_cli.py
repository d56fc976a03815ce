"""The three commands as a user runs them, through typer's CliRunner, in a fresh working directory."""

import json
import os
import signal
import time

import numpy as np
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
    options = (["--batch-size", "0"], ["--epochs", "0"], ["--validation-fraction", "0.7"], ["--lr", "-1"])
    for option in (*options, ["--precision", "fp64"]):
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
        app, ["predict", str(tmp_path / "blank.csv"), "-o", str(tmp_path / "o.xls"), "--model", str(tiny_model)]
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
            "--sampling-temperature",
            "1.5",
            "--name",
            "pre",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 steps (planned steps)" in result.output and "padding" in result.output
    assert "Held-out reviews: generator loss" in result.output and "ROC AUC" in result.output
    meta = json.loads((tmp_path / "models" / "pre" / "rs_pretrain.json").read_text())
    assert meta["arguments"]["sampling_temperature"] == 1.5 and meta["recipe_version"] == 2
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
    for options, message, code in (
        (["--quantize", "int4"], "takes int8, not 'int4'", 2),  # a usage error
        (["--precision", "fp64"], "takes fp32 or bf16 or fp16", 2),
        (["--quantize", "int8", "--precision", "fp32"], "not both", 2),
        (["--precision", "bf16"], "bf16 is for GPUs", 1),  # a fine option this machine cannot run
    ):
        result = runner.invoke(
            app, ["predict", str(SAMPLE), "-o", str(tmp_path / "x.csv"), "-m", str(tiny_model), *options]
        )
        assert result.exit_code == code and message in result.output, result.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_finetune_ctrl_c_then_resume(tmp_path, monkeypatch, tiny_base):
    import review_sentiment.finetune as finetune_module

    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    command = ["finetune", "reviews.csv", "--base", str(tiny_base), "--name", "m", "--epochs", "2", "--lr", "1e-3"]
    assert "--resume" in runner.invoke(app, ["finetune", "--help"]).output
    for name in ("pad_batch", "packed_classifier_logits"):  # a step calls one of them (packed batches on a CPU)
        monkeypatch.setattr(finetune_module, name, _ctrl_c_on_call(15, getattr(finetune_module, name)))
    result = runner.invoke(app, command)
    assert result.exit_code == 130, result.output
    assert "Stopped at step 15 of 22" in result.output and "rerun the same command with --resume" in result.output
    assert (tmp_path / "models" / "m.rs-checkpoint").is_dir() and not (tmp_path / "models" / "m").exists()
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command)
    assert result.exit_code == 1 and "--resume" in result.output and "--force" in result.output
    result = runner.invoke(app, [*command, "--resume"])
    assert result.exit_code == 0, result.output
    assert "Resuming from models/m.rs-checkpoint at step 15 of 22" in result.output
    assert (tmp_path / "models" / "m" / "model.safetensors").exists()
    assert not (tmp_path / "models" / "m.rs-checkpoint").exists()


def _start_predict(folder, tiny_model, output="out.csv"):
    """`rs predict` in its own process, on 7,200 rows in chunks of 100."""
    import subprocess
    import sys

    table = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    pd.concat([table] * 20).to_csv(folder / "in.csv", index=False)
    arguments = ["predict", "in.csv", "-o", output, "--model", str(tiny_model), "--chunk-size", "100"]
    command = [sys.executable, "-m", "review_sentiment", *arguments]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kept = folder / f".{output}.rs-resume"
    deadline = time.monotonic() + 180
    while not (kept / "chunk-000002.npz").exists():  # three chunks finished
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "rs predict did not finish a chunk in time"
        time.sleep(0.01)
    return process, arguments, kept


@pytest.mark.slow
def test_predict_killed_then_resumed_equals_an_uninterrupted_run(tmp_path, monkeypatch, tiny_model):
    import signal

    from review_sentiment.predict import predict_file

    process, arguments, kept = _start_predict(tmp_path, tiny_model)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "out.csv").exists() and kept.is_dir()

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, arguments)
    assert result.exit_code == 1 and "--resume" in result.output  # progress is never discarded silently
    result = runner.invoke(app, [*arguments, "--resume"])
    assert result.exit_code == 0, result.output
    assert "Resumed:" in result.output and "Labeled 7,200 of 7,200 rows" in result.output
    predict_file("in.csv", "whole.csv", model_dir=tiny_model, chunk_rows=100)
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert not kept.exists()


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_kill_prints_how_to_resume(tmp_path, tiny_model, signal_name):
    import signal

    process, _, kept = _start_predict(tmp_path, tiny_model)
    process.send_signal(getattr(signal, signal_name))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out.csv").exists() and kept.is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []  # no half-written output


ROWS = [("1", "배송이 빨라요. 좋아요"), ("2", ""), ("3", "별로예요 다신 안 사요"), ("4", '=HYPERLINK("x") 그냥 그래요')]


def _predict(folder, tiny_model, input_name, output_name, *options):
    arguments = ["predict", input_name, "-o", output_name, "--model", str(tiny_model), *options]
    result = runner.invoke(app, arguments)
    assert "Traceback" not in result.output
    return result


@pytest.mark.slow
def test_real_world_files_give_the_same_labels(tmp_path, monkeypatch, tiny_model):
    """The same rows as UTF-8, UTF-8 with BOM, UTF-16 (Excel's "Unicode text"), cp949, euc-kr, TSV, .xlsx (on a
    second sheet) and .parquet: every one gives the same labels, whatever the output format."""
    import openpyxl

    from review_sentiment.io import read_table

    monkeypatch.chdir(tmp_path)
    csv_text = "id,review\n" + "".join(f'{i},"{text.replace(chr(34), chr(34) * 2)}"\n' for i, text in ROWS)
    inputs = {}
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "cp949", "euc-kr"):
        inputs[f"{encoding}.csv"] = []
        (tmp_path / f"{encoding}.csv").write_bytes(csv_text.encode(encoding))
    (tmp_path / "tabs.tsv").write_text("id\treview\n" + "".join(f"{i}\t{t}\n" for i, t in ROWS), encoding="utf-8")
    inputs["tabs.tsv"] = []
    workbook = openpyxl.Workbook()
    workbook.active.append(["notes"])
    sheet = workbook.create_sheet("리뷰")
    sheet.append(["id", "review"])
    for i, text in ROWS:
        sheet.append([int(i), text or None])
    sheet["B5"].data_type = "s"  # the =HYPERLINK text is a string cell, not a formula
    workbook.save(tmp_path / "book.xlsx")
    inputs["book.xlsx"] = ["--sheet", "리뷰"]
    pd.DataFrame({"id": [int(i) for i, _ in ROWS], "review": [t for _, t in ROWS]}).to_parquet(tmp_path / "p.parquet")
    inputs["p.parquet"] = []

    labels = {}
    for number, (name, options) in enumerate(inputs.items()):
        suffix = (".csv", ".jsonl", ".xlsx", ".parquet", ".tsv")[number % 5]
        result = _predict(tmp_path, tiny_model, name, f"out-{number}{suffix}", *options)
        assert result.exit_code == 0, (name, result.output)
        out = read_table(f"out-{number}{suffix}", unescape_formulas=True)
        assert out["id"].tolist() == ["1", "2", "3", "4"], name
        assert out["review"].tolist() == [text for _, text in ROWS], name
        labels[name] = out["predicted_label"].tolist()
        assert labels[name][1] == "" and out["note"][1] == "empty text"
    assert len({tuple(v) for v in labels.values()}) == 1, labels


@pytest.mark.slow
def test_formula_like_text_is_escaped_in_spreadsheet_outputs_only(tmp_path, monkeypatch, tiny_model):
    import openpyxl

    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"review": ["=1+1 좋아요", "-별로", "@멘션", "+82 최고", "-1"]}).to_csv("in.csv", index=False)
    assert _predict(tmp_path, tiny_model, "in.csv", "out.csv").exit_code == 0
    escaped = pd.read_csv("out.csv", dtype=str, encoding="utf-8-sig")["review"].tolist()
    assert escaped == ["'=1+1 좋아요", "'-별로", "'@멘션", "'+82 최고", "-1"]  # a plain number stays a number
    result = _predict(tmp_path, tiny_model, "in.csv", "out.xlsx")
    assert result.exit_code == 0 and "4 formula-like cells escaped" in result.output
    # .xlsx: the text stays as it is, and Excel's quote prefix keeps it text even when the cell is edited
    cells = [row[0] for row in openpyxl.load_workbook("out.xlsx").active.iter_rows(min_row=2)]
    assert [cell.value for cell in cells] == ["=1+1 좋아요", "-별로", "@멘션", "+82 최고", "-1"]
    assert [cell.quotePrefix for cell in cells] == [True, True, True, True, False]
    assert _predict(tmp_path, tiny_model, "in.csv", "raw.csv", "--no-escape-formulas").exit_code == 0
    assert pd.read_csv("raw.csv", dtype=str, encoding="utf-8-sig")["review"][0] == "=1+1 좋아요"
    assert _predict(tmp_path, tiny_model, "in.csv", "out.jsonl").exit_code == 0
    assert pd.read_json("out.jsonl", lines=True, dtype=False)["review"][0] == "=1+1 좋아요"


BAD_INPUTS = {
    "junk.csv": (bytes(range(256)) * 64, "Cannot decode"),
    "renamed.xlsx": ("review\n좋아요\n".encode(), "not a valid .xlsx"),
    "noheader.csv": (b"id,stars\n1,5\n", "--text-col"),
    "ragged.csv": ("id,review\n1,좋아요\n2,별로,예요,진짜\n".encode(), "line 3"),
    "empty.csv": (b"", "empty"),
    "twotext.csv": ("리뷰,내용\n좋아요,별로\n".encode(), "Several columns"),  # the model knows neither
}


@pytest.mark.slow
@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_files_give_one_line_and_exit_1(tmp_path, monkeypatch, tiny_model, name):
    monkeypatch.chdir(tmp_path)
    content, message = BAD_INPUTS[name]
    (tmp_path / name).write_bytes(content)
    result = _predict(tmp_path, tiny_model, name, "out.csv")
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.startswith("Error:")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
def test_awkward_rows_are_kept_and_labeled(tmp_path, monkeypatch, tiny_model):
    """Short (ragged) rows, NUL and other control bytes, NFD text, whitespace: output, never a dropped row."""
    monkeypatch.chdir(tmp_path)
    nfd = "\u1107\u1162\u11bc\u1109\u1169\u11bc \u110c\u1169\u11c2\u110b\u1161\u110b\u116d"  # 배송 좋아요, NFD
    content = f'id,review,extra\n1,"좋아요\x00\x07"\n2\n3,"{nfd}",x\n4,"   "\n5,\x1b[31m별로\x1b[0m,\n'
    (tmp_path / "in.csv").write_bytes(content.encode("utf-8"))
    result = _predict(tmp_path, tiny_model, "in.csv", "out.jsonl")
    assert result.exit_code == 0, result.output
    out = pd.read_json("out.jsonl", lines=True, dtype=False)
    assert out["id"].tolist() == ["1", "2", "3", "4", "5"]
    assert [bool(label) for label in out["predicted_label"]] == [True, False, True, False, True]
    assert out["note"].tolist()[1] == out["note"].tolist()[3] == "empty text"


PRETRAIN_SMALL = ["--batch-size", "8", "--max-length", "64", "--vocab-size", "800"]


@pytest.mark.slow
def test_pretrain_ctrl_c_then_the_same_command_with_resume(tmp_path, monkeypatch):
    import review_sentiment.pretrain as pretrain_module

    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.csv").write_bytes(SAMPLE.read_bytes())
    # No --name: the default name holds the start time, and the same command with --resume must still find it.
    command = ["pretrain", "corpus.csv", "--max-steps", "4", *PRETRAIN_SMALL]
    assert "--resume" in runner.invoke(app, ["pretrain", "--help"]).output
    rtd_step = pretrain_module.rtd_step
    monkeypatch.setattr(pretrain_module, "rtd_step", _ctrl_c_on_call(2, rtd_step))
    result = runner.invoke(app, command)
    assert result.exit_code == 130, result.output
    assert "Interrupted. Stopped at step 2 of 4; checkpoint saved in models/pretrained-mini-corpus-" in result.output
    assert "rerun the same command with --resume" in result.output and "Traceback" not in result.output
    (folder,) = (tmp_path / "models").iterdir()
    monkeypatch.setattr(pretrain_module, "rtd_step", rtd_step)
    result = runner.invoke(app, command)
    assert result.exit_code == 1 and "--resume" in result.output and "--force" in result.output
    result = runner.invoke(app, [*command, "--resume"])
    assert result.exit_code == 0, result.output
    assert f"Resuming models/{folder.name} at step 2 of 4" in result.output
    assert "4 steps (planned steps)" in result.output and (folder / "rs_pretrain.json").exists()
    assert len(list((tmp_path / "models").iterdir())) == 1


@pytest.mark.slow
def test_pretrain_killed_in_its_own_process_keeps_a_checkpoint(tmp_path):
    """`kill` (SIGTERM) of a real `rs pretrain` process: exit code 130, one line saying how to continue."""
    import json
    import signal
    import subprocess
    import sys

    (tmp_path / "corpus.csv").write_bytes(SAMPLE.read_bytes())
    arguments = ["pretrain", "corpus.csv", "--max-steps", "200", *PRETRAIN_SMALL, "--name", "p"]
    command = [sys.executable, "-m", "review_sentiment", *arguments, "--checkpoint-minutes", "0.001"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "models" / "p" / "checkpoint"
    deadline = time.monotonic() + 120
    while not (checkpoint / "training.json").exists():  # training is under way
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "rs pretrain saved no checkpoint in time"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted. Stopped" in stderr and "rerun the same command with --resume" in stderr, stderr
    assert "Traceback" not in stderr and not (tmp_path / "models" / "p" / "rs_pretrain.json").exists()
    step = json.loads((checkpoint / "training.json").read_text())["state"]["step"]
    assert 1 <= step < 200 and "models/p/checkpoint" in stderr


def test_an_output_rs_cannot_create_is_one_line(tmp_path, monkeypatch, tiny_model):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("review\n좋아요\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", "in.csv", "-o", "in.csv/out.csv", "--model", str(tiny_model)])
    assert result.exit_code == 1 and result.output.startswith("Error:"), result.output
    assert "in.csv" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_a_second_ctrl_c_does_not_cut_the_cleanup_short(tmp_path, tiny_model):
    import signal

    process, _, kept = _start_predict(tmp_path, tiny_model)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "--resume" in stderr
    assert kept.is_dir() and not (tmp_path / "out.csv").exists()


def test_flags_are_not_shown_as_taking_a_value():
    for command in ("preprocess", "finetune", "pretrain", "predict", "evaluate"):
        lines = runner.invoke(app, [command, "--help"], terminal_width=200).output.splitlines()
        assert [line for line in lines if "<bool>" in line and "--help" not in line] == [], command


def _ctrl_c_on_call(call: int, function):
    """`function`, sending this process a real SIGINT (what Ctrl-C sends) at its `call`-th call, mid-step."""
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            os.kill(os.getpid(), signal.SIGINT)
        return function(*args, **kwargs)

    return wrapped


# ------------------------------------------------------------------ a new user's first hour (issue 12)

LABELS3 = ["negative", "neutral", "positive"]
KOREAN_AND_ENGLISH = [
    ("배송이 빨라서 좋아요", "Fast delivery, I like it", "positive"),
    ("포장이 엉망이라 실망했어요", "The packaging was a mess", "negative"),
    ("가격 대비 괜찮아요 추천합니다", "Fine for the price", "positive"),
    ("다시는 안 살 거예요 별로", "Never buying again", "negative"),
] * 10


def _bilingual_file(path):
    rows = [{"sentence": en, "kor": ko, "label": label} for ko, en, label in KOREAN_AND_ENGLISH]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_results_go_to_stdout_and_messages_to_stderr(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--version"])
    assert result.stdout.startswith("rs (review-sentiment)") and not result.stderr
    result = runner.invoke(app, ["info"])
    assert "torch:" in result.stdout and not result.stderr
    assert json.loads(runner.invoke(app, ["info", "--json"]).stdout)["rs"]
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    result = runner.invoke(app, ["finetune", "reviews.csv", "--base", "tfidf", "--name", "a-rather-long-model-name"])
    assert result.exit_code == 0 and not result.stdout  # messages only
    assert runner.invoke(app, ["finetune", "reviews.csv", "--base", "tfidf"]).exit_code == 0  # a default name
    result = runner.invoke(app, ["models"])
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CREATED", "KIND", "CLASSES", "VAL-F1", "NAME"]
    assert len(lines) == 3
    assert any(line.endswith("tfidf       neg,neu,pos  0.6560  a-rather-long-model-name") for line in lines)
    assert any(line.split()[-1].startswith("tfidf-reviews-2") for line in lines)
    assert max(len(line) for line in lines) <= 80 and "rs models NAME" in result.stderr
    listed = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert {row["name"] for row in listed} >= {"a-rather-long-model-name"} and listed[0]["labels"] == LABELS3
    details = runner.invoke(app, ["models", "a-rather-long-model-name"]).stdout
    assert "labels: negative, neutral, positive" in details and "text column 'review'" in details
    meta = json.loads(runner.invoke(app, ["models", "a-rather-long-model-name", "--json"]).stdout)
    assert meta["model_type"] == "tfidf"
    result = runner.invoke(app, ["models", "nope"])
    assert result.exit_code == 1 and "No model 'nope' under models/" in result.stderr


def test_the_korean_column_is_chosen_and_said_before_the_work(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    _bilingual_file(tmp_path / "bilingual.csv")
    result = runner.invoke(app, ["preprocess", "bilingual.csv", "--json"])
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith("Reading 40 rows from bilingual.csv · text column 'kor'"), first
    summary = json.loads(result.stdout)
    assert summary["text_column"] == "kor" and summary["flagged"]["no_hangul"] == 0
    result = runner.invoke(app, ["finetune", "bilingual.csv", "--base", "tfidf", "--name", "m", "--json"])
    assert result.exit_code == 0, result.output
    assert "text column 'kor'" in result.stderr.splitlines()[0] and "label column 'label'" in result.stderr
    assert json.loads(result.stdout)["data"]["text_column"] == "kor"
    # Forcing the English column works, with a warning that names the Korean one, before anything is labeled.
    result = runner.invoke(app, ["predict", "bilingual.csv", "-o", "out.csv", "--text-col", "sentence"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Model: models/m (newest under models/, tfidf, negative/positive, cpu")
    assert lines[1].startswith("Labeling 40 rows of bilingual.csv · text column 'sentence' (--text-col")
    assert lines[2].startswith("Warning: Only 0% of the sampled texts") and "--text-col kor" in lines[2]
    assert lines[3].startswith("Labeled 40 of 40 rows")


def test_finetune_checks_the_base_before_reading_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # A file rs cannot read: were it read first, its error would come instead of the base's.
    (tmp_path / "broken.csv").write_text('review,label\n"never closed,positive\n', encoding="utf-8")
    result = runner.invoke(app, ["finetune", "broken.csv", "--base", "kcelectra"])
    assert result.exit_code == 1 and "hf download" in result.output and "--base tfidf" in result.output
    result = runner.invoke(app, ["finetune", "broken.csv", "--base", "./KcELECTRA-base-v2022"])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(app, ["finetune", "broken.csv", "--base", "tfidf", "--rating-bins", "1-4,9-10"])
    assert result.exit_code == 1 and "three comma-separated ranges" in result.output
    result = runner.invoke(app, ["finetune", "missing.csv", "--base", "tfidf"])
    assert result.exit_code == 1 and "No such file: missing.csv" in result.output


def test_tfidf_says_which_options_it_ignores_and_has_no_epochs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    result = runner.invoke(
        app, ["finetune", "reviews.csv", "--base", "tfidf", "--epochs", "5", "--lr", "1e-3", "--max-length", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "Warning: --epochs, --learning-rate, --max-length do not apply to --base tfidf" in result.output
    assert "Best epoch" not in result.output and "TF-IDF baseline: validation accuracy" in result.output
    assert result.output.count("validation accuracy") == 1
    result = runner.invoke(app, ["finetune", "reviews.csv", "--base", "tfidf", "--name", "plain"])
    assert "do not apply" not in result.output and "does not apply" not in result.output


def test_evaluate_bins_ratings_as_the_model_learned_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    stars = {"negative": "2", "neutral": "6", "positive": "10"}
    pd.DataFrame({"review": table["review"], "stars": table["label"].map(stars)}).to_csv("stars.csv", index=False)
    result = runner.invoke(app, ["finetune", "stars.csv", "--base", "tfidf", "--rating-bins", "1-4,,9-10"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "stars.csv"])
    assert result.exit_code == 0, result.output
    assert "negative 1-4, positive 9-10, no neutral), the model's bins" in result.output
    assert "skipped: 0 without a label, 90 ratings in no bin (6 ×90" in result.output
    result = runner.invoke(app, ["evaluate", "stars.csv", "--rating-bins", "1-4,5-8,9-10"])
    assert result.exit_code == 1 and "--rating-bins 1-4,,9-10" in result.output
    # A 5-star file: its ratings go no higher than 5, so they might be low 10-point ones; the model's scale is
    # used, with a warning that says how to read them as 5-point.
    five = {"negative": "1", "neutral": "3", "positive": "5"}
    pd.DataFrame({"review": table["review"], "stars": table["label"].map(five)}).to_csv("five.csv", index=False)
    result = runner.invoke(app, ["evaluate", "five.csv"])
    assert result.exit_code == 0, result.output
    assert "binned on the model's 10-point scale" in result.output
    assert "pass --rating-scale 5 --rating-bins 1-2,,4-5" in result.output
    assert "140 ratings in no bin (5 ×140" in result.output  # the skipped ratings, by value
    result = runner.invoke(app, ["evaluate", "five.csv", "--rating-scale", "5", "--rating-bins", "1-2,,4-5"])
    assert result.exit_code == 0 and "5-point: negative 1-2, positive 4-5, no neutral" in result.output
    # A 5-point model on 10-point ratings: refused, with the options for the file's own scale.
    assert runner.invoke(app, ["finetune", "five.csv", "--base", "tfidf", "--name", "five"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "stars.csv", "--model", "models/five"])
    assert result.exit_code == 1 and "go up to 10, above the top of the scale the model learned" in result.output
    assert "--rating-scale 10 --rating-bins 1-4,5-8,9-10" in result.output


def test_replacing_an_output_is_said_and_small_runs_print_no_silly_rate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    assert runner.invoke(app, ["finetune", "reviews.csv", "--base", "tfidf", "--name", "m"]).exit_code == 0
    (tmp_path / "two.csv").write_text("review\n좋아요\n별로예요\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", "two.csv", "-o", "out.csv"])
    assert result.exit_code == 0 and "replaced" not in result.output and "0 reviews/s" not in result.output
    assert "start-up" in result.output
    result = runner.invoke(app, ["predict", "two.csv", "-o", "out.csv"])
    assert "out.csv exists: it will be replaced when this run is complete" in result.output
    assert "Wrote out.csv (replaced the file that was there)" in result.output


def test_help_shows_no_value_for_flags_nor_braces():
    for command in ("preprocess", "finetune", "predict", "evaluate", "models"):
        text = runner.invoke(app, [command, "--help"], terminal_width=200).output
        assert "<bool>" not in text and "{" not in text.splitlines()[1], command
        assert "[[" not in text
    assert "<bool>" not in runner.invoke(app, ["--help"], terminal_width=200).output


# ------------------------------------------------------------------ checkpoints rs did not train (issue 17)


def _labeled(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


@pytest.mark.slow
def test_predict_with_a_checkpoint_rs_did_not_train(tmp_path, monkeypatch, tiny_model, checkpoints):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    # a checkpoint rs did not train has no temperature: it scores as the rs model's raw probabilities
    rs_model = ["predict", "reviews.csv", "-o", "rs.csv", "--model", str(tiny_model), "--no-calibration"]
    assert runner.invoke(app, rs_model).exit_code == 0
    result = runner.invoke(app, ["predict", "reviews.csv", "-o", "korean.csv", "--model", str(checkpoints["korean"])])
    assert result.exit_code == 0, result.output
    assert (
        "Checkpoint rs did not train: class 0 '긍정' = positive, class 1 '중립' = neutral, class 2 '부정' = negative "
        "(from its id2label) · normalization rs (rs-normalize v2" in result.stderr
    )
    assert "raw scores: a checkpoint rs did not train has no temperature" in result.stderr
    expected, labeled = _labeled("rs.csv"), _labeled("korean.csv")
    assert list(labeled.columns) == list(expected.columns)  # the same columns, in the same order
    assert labeled["predicted_label"].equals(expected["predicted_label"])
    probabilities = ["confidence", "prob_negative", "prob_neutral", "prob_positive"]
    assert np.allclose(labeled[probabilities].astype(float), expected[probabilities].astype(float), atol=2e-4)

    numbered = ["predict", "reviews.csv", "-o", "numbered.csv", "--model", str(checkpoints["numbered"])]
    result = runner.invoke(app, numbered)
    assert result.exit_code == 1 and not (tmp_path / "numbered.csv").exists()
    assert "has id2label {0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2'}, which does not say which class is which" in (
        result.stderr
    )
    assert "--labels negative,neutral,positive (in that order: class 0, class 1, class 2)" in result.stderr
    result = runner.invoke(app, [*numbered, "--labels", "negative, neutral, positive", "--normalization", "none"])
    assert result.exit_code == 0, result.output
    assert "class 0 'LABEL_0' = negative" in result.stderr and "(from --labels) · normalization none" in result.stderr
    assert list(_labeled("numbered.csv").columns) == list(expected.columns)
    result = runner.invoke(app, [*numbered, "--labels", "negative,positive"])
    assert result.exit_code == 1 and "names 2 classes but" in result.stderr
    result = runner.invoke(app, [*numbered, "--normalization", "nfc"])
    assert result.exit_code == 2 and "takes rs or none" in result.output

    result = runner.invoke(app, ["predict", "reviews.csv", "--model", str(tiny_model), "--normalization", "none"])
    assert result.exit_code == 1 and "apply only to checkpoints rs did not train" in result.stderr
    result = runner.invoke(app, ["predict", "reviews.csv", "-m", str(tiny_model)])
    assert result.exit_code == 0 and "Checkpoint rs did not train" not in result.stderr


@pytest.mark.slow
def test_a_hub_checkpoint_from_the_cache_and_offline(tmp_path, monkeypatch, tiny_model, checkpoints, hub_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    started = time.perf_counter()
    result = runner.invoke(app, ["predict", "reviews.csv", "--model", "daekeun-ml/koelectra-small-v3-nsmc"])
    assert result.exit_code == 1 and time.perf_counter() - started < 10
    assert "hf download daekeun-ml/koelectra-small-v3-nsmc" in result.stderr
    assert "--model ./koelectra-small-v3-nsmc" in result.stderr and "Traceback" not in result.output
    result = runner.invoke(app, ["predict", "reviews.csv", "--model", "./daekeun-ml/koelectra-small-v3-nsmc"])
    assert result.exit_code == 1 and "No model folder at daekeun-ml/koelectra-small-v3-nsmc" in result.stderr

    hub_cache("rs-test/tiny-korean", checkpoints["korean"])
    result = runner.invoke(app, ["evaluate", "reviews.csv", "--model", "rs-test/tiny-korean", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Model: rs-test/tiny-korean (transformer, negative/neutral/positive")
    report = json.loads(result.stdout)
    assert report["output_dir"] == "evaluations/rs-test--tiny-korean/reviews"  # not in the Hugging Face cache
    expected = runner.invoke(app, ["evaluate", "reviews.csv", "-m", str(tiny_model), "-o", "rs", "--json"])
    assert report["scores"]["confusion_matrix"] == json.loads(expected.stdout)["scores"]["confusion_matrix"]


def test_calibrated_confidence_uncertain_rows_and_the_coverage_table(tmp_path, monkeypatch):
    """finetune says its temperature; evaluate reports calibration and coverage; predict --min-confidence labels
    the rows below it uncertain, keeps their probabilities, and says why; report counts them apart."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_bytes(SAMPLE.read_bytes())
    result = runner.invoke(app, ["finetune", "reviews.csv", "--base", "tfidf", "--name", "tf"])
    assert result.exit_code == 0, result.output
    assert "Calibrated its confidence: temperature" in result.output
    temperature = json.loads((tmp_path / "models" / "tf" / "rs_meta.json").read_text())["calibration"]["temperature"]
    assert f"temperature {temperature:g}" in runner.invoke(app, ["models", "tf"]).output

    result = runner.invoke(app, ["evaluate", "reviews.csv", "--min-confidence", "0.6", "--json"])
    assert result.exit_code == 0, result.output
    assert f"calibrated confidence (temperature {temperature:g})" in result.output
    assert "15 equal-mass bins" in result.output and "Setting aside the least confident" in result.output
    report = json.loads(result.stdout)
    kept = report["min_confidence"]
    assert kept["kept"] + kept["uncertain"] == report["evaluated"] == 360
    assert {row["min_confidence"] for row in report["coverage"]} > {0.5, 0.9}  # three classes: 0.5 is above chance
    for name in ("reliability.png", "coverage.png"):
        assert (tmp_path / "models" / "tf" / "evaluations" / "reviews" / name).read_bytes().startswith(b"\x89PNG")

    assert runner.invoke(app, ["predict", "reviews.csv", "-o", "calibrated.csv"]).exit_code == 0
    result = runner.invoke(app, ["predict", "reviews.csv", "-o", "uncertain.csv", "--min-confidence", "0.6"])
    assert result.exit_code == 0, result.output
    calibrated = pd.read_csv("calibrated.csv", encoding="utf-8-sig", keep_default_na=False)
    uncertain = pd.read_csv("uncertain.csv", encoding="utf-8-sig", keep_default_na=False)
    below = calibrated["confidence"] < 0.6
    assert below.sum() == kept["uncertain"] and 0 < below.sum() < 360
    assert (uncertain.loc[below, "predicted_label"] == "uncertain").all()
    assert uncertain.loc[~below, "predicted_label"].equals(calibrated.loc[~below, "predicted_label"])
    assert uncertain.filter(like="prob_").equals(calibrated.filter(like="prob_"))  # probabilities still written
    leaned = calibrated.loc[below, "predicted_label"].iloc[0]
    assert f"(the model leans {leaned})" in uncertain.loc[below, "note"].iloc[0]
    assert f"uncertain {below.sum()} (" in result.output
    # accuracy of the kept rows as evaluate says it
    right = (uncertain["predicted_label"] == uncertain["label"])[~below]
    assert kept["accuracy"] == pytest.approx(right.mean(), abs=1e-4)

    raw = runner.invoke(app, ["predict", "reviews.csv", "-o", "raw.csv", "--no-calibration"])
    assert raw.exit_code == 0 and "raw scores (--no-calibration)" in raw.output
    raw_table = pd.read_csv("raw.csv", encoding="utf-8-sig", keep_default_na=False)
    assert raw_table["predicted_label"].equals(calibrated["predicted_label"])
    assert not raw_table["confidence"].equals(calibrated["confidence"])

    result = runner.invoke(app, ["report", "uncertain.csv", "-o", "report.html"])
    assert result.exit_code == 0, result.output
    assert f"Reported {360 - below.sum()} labeled of 360 rows" in result.output
