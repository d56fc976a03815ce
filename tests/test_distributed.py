"""rs finetune and rs pretrain on 2 processes (torchrun, gloo on the CPU), against one process and against
themselves interrupted and resumed."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from review_sentiment.cli import app
from review_sentiment.config import FinetuneArguments
from review_sentiment.distributed import is_main_process, launched_world_size
from review_sentiment.errors import RsError
from review_sentiment.finetune import finetune
from tests.conftest import REPO, SAMPLE, optional_module

# As tests/distributed_worker.py trains: 324 training reviews in batches of 19 make 17 full batches and one of a
# single review per epoch, which one of the two processes trains alone (the other a stand-in counting nothing).
FINETUNE_OPTIONS = ["--epochs", "3", "--lr", "8e-3", "--batch-size", "19", "--patience", "0"]
# the comparison of 2 processes with 1 is one of float32 rounding: in bf16 (auto's choice on a CPU with AMX or
# AVX512-BF16) the halves round differently (train losses 1.4e-3 apart, measured)
FP32_OPTIONS = [*FINETUNE_OPTIONS, "--precision", "fp32"]
FP32_ARGS = FinetuneArguments(epochs=3, learning_rate=8e-3, batch_size=19, early_stopping_patience=0, precision="fp32")
STEPS = 54
PRETRAIN_OPTIONS = ["--size", "mini", "--max-length", "64", "--batch-size", "8", "--max-steps", "12", "--seed", "3"]
PRETRAIN_OPTIONS += ["--vocab-size", "800"]
WORKER = str(REPO / "tests" / "distributed_worker.py")


def launch(*arguments, timeout: int = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 ARGUMENTS` on the CPU, as a user would start it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def rs(*arguments) -> list[str]:
    return ["-m", "review_sentiment.cli", *map(str, arguments)]


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def history_without_timing(meta: dict) -> list[dict]:
    return [
        {k: v for k, v in epoch.items() if k not in ("train_tokens_per_second", "train_seconds")}
        for epoch in meta["metrics"]["history"]
    ]


@pytest.fixture(scope="module")
def launcher():
    optional_module("accelerate", "distributed")


@pytest.fixture(scope="module")
def base_without_dropout(tmp_path_factory, sample_table):
    from review_sentiment.tiny_base import build_tiny_electra

    return build_tiny_electra(
        sample_table["review"].tolist(),
        tmp_path_factory.mktemp("bases") / "no-dropout",
        vocab_size=1500,
        hidden_size=32,
        dropout=0.0,
    )


@pytest.mark.slow
def test_two_processes_train_the_model_one_process_trains(tmp_path, launcher, base_without_dropout):
    """Without dropout a step of 2 processes is the step of one, on the same batch (the loss of each process's
    half is scaled to its share of the whole batch's mean), so the runs differ only by float32 rounding in
    another order of summation (the all-reduce, padding to each half's longest): measured 9e-4 at most on any
    weight after 54 steps (AdamW divides by the root of tiny second moments, which enlarges rounding early on),
    train losses equal to 4 decimals, the same validation scores."""
    one = finetune(SAMPLE, str(base_without_dropout), FP32_ARGS, output_dir=tmp_path / "one")
    run = launch(*rs("finetune", SAMPLE, "--base", base_without_dropout, "-o", tmp_path / "two", *FP32_OPTIONS))
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one", "two"]  # one folder, no checkpoint left
    assert run.stderr.count("Saved model to") == 1 and "2 processes (gloo)" in run.stderr  # rank 0 alone reports

    meta = json.loads((tmp_path / "two" / "rs_meta.json").read_text())
    assert meta["processes"] == 2 and meta["training_args"]["batch_size"] == 19  # the global batch
    two_history, one_history = history_without_timing(meta), one.history
    for two_epoch, one_epoch in zip(two_history, one_history, strict=True):
        assert two_epoch["train_loss"] == pytest.approx(one_epoch["train_loss"], abs=2e-4)
        # one of the 36 validation reviews may flip where float rounding moves it across a decision boundary
        assert two_epoch["accuracy"] == pytest.approx(one_epoch["accuracy"], abs=1 / 36 + 1e-9)
    assert meta["metrics"]["best_epoch"] == one.best_epoch
    # the temperature is fitted on the validation probabilities gathered from both processes
    assert meta["calibration"]["temperature"] == pytest.approx(one.calibration["temperature"], rel=1e-2)
    one_weights, two_weights = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max(float((one_weights[k] - two_weights[k]).abs().max()) for k in one_weights) < 1e-2


@pytest.mark.slow
def test_an_interrupted_two_process_finetune_resumes_to_the_same_model(tmp_path, launcher, tiny_base):
    """With dropout: each process's RNG is in the checkpoint, so the resumed run is bit-identical."""
    straight = launch(*rs("finetune", SAMPLE, "--base", tiny_base, "-o", tmp_path / "straight", *FINETUNE_OPTIONS))
    assert straight.returncode == 0, straight.stderr[-3000:]

    # Ctrl-C reaches rank 1 alone after step 25: both processes stop there, and rank 0 saves the checkpoint.
    stopped = launch(WORKER, "finetune", SAMPLE, tiny_base, tmp_path / "resumed", "25", "1")
    assert stopped.returncode != 0
    for rank in (0, 1):
        assert f"rank {rank}: Stopped at step 25 of {STEPS} (epoch 2); checkpoint saved" in stopped.stdout
    checkpoint = tmp_path / "resumed.rs-checkpoint"
    saved = json.loads((checkpoint / "training.json").read_text())
    assert saved["fingerprint"]["processes"] == 2 and saved["run"]["step"] == 25
    assert set(saved["ranks"]) == {"1"}  # rank 1's Python and NumPy RNGs; its torch RNG is a tensor:
    from safetensors.torch import load_file

    assert {"rng.torch", "rank1.rng.torch"} <= set(load_file(str(checkpoint / "training.safetensors")))

    alone = CliRunner().invoke(
        app,
        [
            "finetune",
            str(SAMPLE),
            "--base",
            str(tiny_base),
            "-o",
            str(tmp_path / "resumed"),
            "--resume",
            *FINETUNE_OPTIONS,
        ],
    )
    assert alone.exit_code != 0 and "trained by 2 processes, this run has 1" in alone.output

    resumed = launch(
        *rs("finetune", SAMPLE, "--base", tiny_base, "-o", tmp_path / "resumed", "--resume", *FINETUNE_OPTIONS)
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step 25 of {STEPS}" in resumed.stderr and not checkpoint.exists()
    straight_weights, resumed_weights = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert all(straight_weights[k].equal(resumed_weights[k]) for k in straight_weights)
    metas = [json.loads((tmp_path / name / "rs_meta.json").read_text()) for name in ("straight", "resumed")]
    assert history_without_timing(metas[0]) == history_without_timing(metas[1])


@pytest.mark.slow
def test_an_interrupted_two_process_pretrain_resumes_to_the_same_models(tmp_path, launcher):
    straight = launch(*rs("pretrain", SAMPLE, "-o", tmp_path / "straight", *PRETRAIN_OPTIONS))
    assert straight.returncode == 0, straight.stderr[-3000:]
    stopped = launch(WORKER, "pretrain", SAMPLE, "-", tmp_path / "resumed", "5", "0")
    assert stopped.returncode != 0 and "rank 1: Stopped at step 5 of 12; checkpoint saved" in stopped.stdout
    resumed = launch(*rs("pretrain", SAMPLE, "-o", tmp_path / "resumed", "--resume", *PRETRAIN_OPTIONS))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 5 of 12" in resumed.stderr
    metas = [json.loads((tmp_path / name / "rs_pretrain.json").read_text()) for name in ("straight", "resumed")]
    assert metas[0]["processes"] == 2 and metas[0]["history"] == metas[1]["history"]
    assert metas[0]["tokens_seen"] == metas[1]["tokens_seen"]
    straight_weights, resumed_weights = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert all(straight_weights[k].equal(resumed_weights[k]) for k in straight_weights)


def test_the_launch_is_read_from_torchruns_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert launched_world_size() == 1 and is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert launched_world_size() == 4 and not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()


def test_the_tfidf_baseline_refuses_a_launch(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RsError, match="trains in one process: run it without torchrun"):
        finetune(SAMPLE, "tfidf", output_dir=tmp_path / "m")


def test_a_launch_without_accelerate_says_what_to_install(monkeypatch):
    from review_sentiment.distributed import training_processes

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "accelerate", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(RsError, match=r'launched as 2 processes.*pip install "review-sentiment\[distributed\]"'):
        training_processes(None)


def test_a_launched_process_ends_with_the_exit_status_of_its_command(tmp_path):
    """A process of a launch ends through end_launched_process (exit handlers, then no interpreter teardown):
    the status and the error message of the command still come out, 2 for a usage error."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WORLD_SIZE": "2", "RANK": "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, *rs("finetune", SAMPLE, "--epochs", "0", "-o", tmp_path / "model")]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "--epochs" in run.stderr and not (tmp_path / "model").exists()
