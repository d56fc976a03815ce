"""WordPiece vocabularies trained on review text, for models rs builds from scratch (`rs pretrain`, tiny_base)."""

from __future__ import annotations

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
