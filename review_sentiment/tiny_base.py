"""A tiny ELECTRA checkpoint built locally: a WordPiece vocabulary trained on review text plus random weights.

It stands in for KcELECTRA where no model hub is reachable: tests and `make demo` use it. Its weights are
random (not pretrained), so it shows the pipeline working, not the accuracy of a real Korean ELECTRA.

    python -m review_sentiment.tiny_base data/sample_reviews.csv models/tiny-electra-base
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from review_sentiment.normalize import normalize_texts

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece_vocab(texts: list[str], vocab_size: int = 3000) -> dict[str, int]:
    """A cased WordPiece vocabulary: no lower-casing or accent stripping, so Hangul syllables stay whole."""
    import os

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread: no scheduling order on top of the hash order below

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # Sorting makes the numbering independent of the trainer's order. The set of tokens can still differ between
    # processes: the trainer numbers continuing pieces (##x) in hash-map order and breaks ties between equally
    # frequent merges by those numbers (huggingface/tokenizers#1794, fix proposed in #2066). Within a run
    # nothing depends on it, and `rs pretrain --resume` reloads the saved tokenizer.
    learned = sorted(token for token in tokenizer.get_vocab() if token not in SPECIAL_TOKENS)
    return {token: index for index, token in enumerate(SPECIAL_TOKENS + learned)}


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
) -> Path:
    """Save an ElectraForPreTraining discriminator with random weights and its tokenizer to `output_dir`."""
    import torch
    from transformers import ElectraConfig, ElectraForPreTraining, ElectraTokenizer

    from review_sentiment.console import silence_library_logs

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
    from review_sentiment.tables import find_text_column, read_table

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
