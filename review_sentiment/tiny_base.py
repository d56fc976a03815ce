"""A tiny ELECTRA checkpoint built locally: a WordPiece vocabulary trained on review text plus random weights.

It stands in for KcELECTRA where no model hub is reachable: the tests and bench/same_outputs.py use it (`make demo`
uses the TF-IDF baseline, `make demo-pretrain` a base from `rs pretrain`). Its weights are random (not pretrained),
so it shows the pipeline working, not the accuracy of a real Korean ELECTRA.

    python -m review_sentiment.tiny_base data/sample_reviews.csv models/tiny-electra-base
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from review_sentiment.normalize import normalize_texts
from review_sentiment.vocab import train_wordpiece_vocab


def build_tiny_electra(
    texts: list[str],
    output_dir: str | Path,
    *,
    vocab_size: int = 3000,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 128,
    seed: int = 0,
    dropout: float = 0.1,
) -> Path:
    """Save an ElectraForPreTraining discriminator with random weights and its tokenizer to `output_dir`
    (`dropout` 0: training is deterministic, however the batches are split)."""
    import torch
    from transformers import ElectraConfig, ElectraForPreTraining, ElectraTokenizer

    from review_sentiment.reporting import silence_library_logs

    silence_library_logs()
    output_dir = Path(output_dir)
    vocab = train_wordpiece_vocab(normalize_texts(texts), vocab_size)
    tokenizer = ElectraTokenizer(vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=max_positions)
    config = ElectraConfig(
        vocab_size=len(vocab),
        embedding_size=hidden_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=hidden_size * 4,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    model = ElectraForPreTraining(config)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    (output_dir / "rs_base.json").write_text(
        json.dumps(
            {"kind": "tiny-electra", "pretrained": False, "texts": len(texts), "vocab_size": len(vocab)},
            indent=2,
        ),
        encoding="utf-8",
    )
    return output_dir


def main(argv: list[str] | None = None) -> None:
    from review_sentiment.io import find_text_column, read_table

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: python -m review_sentiment.tiny_base REVIEWS_FILE OUTPUT_DIR")
    table = read_table(argv[0])
    texts = table[find_text_column(table)].tolist()
    path = build_tiny_electra(texts, argv[1])
    print(
        f"Tiny ELECTRA base (random weights, vocab from {len(texts)} reviews) written to {path}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
