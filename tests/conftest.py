"""Shared fixtures: a tiny ELECTRA base and a tiny fine-tuned model, built locally (no hub)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from review_sentiment.reporting import Reporter

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample_reviews.csv"


class RecordingReporter(Reporter):
    """Keeps what a stage says, for tests that check its messages and warnings."""

    def __init__(self):
        self.messages: list[str] = []
        self.warnings: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def said(self, part: str) -> bool:
        return any(part in text for text in [*self.messages, *self.warnings])


@pytest.fixture(scope="session")
def sample_table() -> pd.DataFrame:
    return pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, sample_table) -> Path:
    from review_sentiment.tiny_base import build_tiny_electra

    return build_tiny_electra(
        sample_table["review"].tolist(),
        tmp_path_factory.mktemp("bases") / "tiny",
        vocab_size=1500,
        hidden_size=32,
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_base) -> Path:
    """A three-class model fine-tuned for a few epochs on the bundled sample."""
    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune

    output = tmp_path_factory.mktemp("models") / "tiny-sentiment"
    args = FinetuneArguments(epochs=3, learning_rate=1e-3, batch_size=32, early_stopping_patience=0)
    finetune(SAMPLE, str(tiny_base), args, output_dir=output)
    return output


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, tiny_model) -> dict[str, Path]:
    """Hugging Face checkpoints rs did not train (no rs_meta.json), made from `tiny_model`'s weights and tokenizer:
    "numbered" calls its classes LABEL_0, LABEL_1, LABEL_2 (tiny_model's order: negative, neutral, positive);
    "korean" has them the other way round, 0 긍정, 1 중립, 2 부정 (the classifier's output rows swapped to match), so
    that both score every review exactly as tiny_model does."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    folders = tmp_path_factory.mktemp("checkpoints")

    def save(name: str, id2label: dict[int, str], order: list[int]) -> Path:
        model = AutoModelForSequenceClassification.from_pretrained(tiny_model)
        head = model.classifier.out_proj
        with torch.no_grad():
            head.weight.copy_(head.weight[order].clone())
            head.bias.copy_(head.bias[order].clone())
        model.config.id2label = id2label
        model.config.label2id = {label: index for index, label in id2label.items()}
        model.save_pretrained(folders / name, safe_serialization=True)
        tokenizer.save_pretrained(folders / name)
        return folders / name

    return {
        "numbered": save("numbered", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [0, 1, 2]),
        "korean": save("korean", {0: "긍정", 1: "중립", 2: "부정"}, [2, 1, 0]),
    }


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache for this test; `hub_cache(repo_id, folder)` puts a checkpoint folder in it, as a
    download would (refs/main and snapshots/COMMIT), so that a hub id can be tested without a hub."""
    import shutil

    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    def put(repo_id: str, folder: Path) -> Path:
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(HUB_COMMIT)
        return shutil.copytree(folder, repo / "snapshots" / HUB_COMMIT)

    return put


@pytest.fixture(scope="session")
def two_thousand_reviews(tmp_path_factory, sample_table) -> Path:
    """2,000 rows made from the sample (each review with its row number, so rows differ), an id column, and a few
    rows without text, as a CSV: what the cluster helpers must label exactly as `rs predict` does."""
    rows = []
    for index in range(2000):
        review = sample_table["review"][index % len(sample_table)]
        rows.append({"id": str(index), "review": "" if index % 397 == 5 else f"{review} {index}"})
    path = tmp_path_factory.mktemp("cluster") / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def labeled_by_rs_predict(reviews: Path, model: Path, output: Path) -> pd.DataFrame:
    """`rs predict`'s output for `reviews`, read back as text cells."""
    from review_sentiment.predict import predict_file

    predict_file(reviews, output, model_dir=model)
    return pd.read_csv(output, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def as_text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A labeled frame's cells as `rs predict` writes them to a CSV (4-decimal floats, empty for NaN)."""
    cells = {name: [("" if pd.isna(v) else str(v)) for v in frame[name]] for name in frame.columns}
    return pd.DataFrame(cells, columns=list(frame.columns))


def parquet_bytes(table, **options) -> bytes:
    """`table` (a pyarrow Table) written as Parquet, as the bytes of a file."""
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def optional_module(name: str, extra: str):
    """An optional extra's module: skipped where it is not installed, but in CI (CI=true), which installs every
    extra, a missing one fails instead of skipping in silence."""
    import importlib
    import os

    if os.environ.get("CI"):
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f'the {extra} extra: pip install "review-sentiment[{extra}]"')
