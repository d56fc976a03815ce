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


def parquet_bytes(table, **options) -> bytes:
    """`table` (a pyarrow Table) written as Parquet, as the bytes of a file."""
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()
