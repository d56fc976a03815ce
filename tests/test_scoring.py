import numpy as np
import pytest

from review_sentiment.scoring import Classifier, Predictor, pack_pieces

pytestmark = pytest.mark.slow


def test_batching_does_not_change_results(tiny_model, sample_table):
    texts = sample_table["review"].tolist()[:50]
    one = Predictor(tiny_model, batch_size=1).probabilities(texts)
    many = Predictor(tiny_model, batch_size=16).probabilities(texts)
    assert np.allclose(one, many, atol=1e-5)


def test_pack_pieces_keeps_every_token_in_order():
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.lists(st.lists(st.integers(0, 9), max_size=30), max_size=12), st.integers(1, 10))
    def check(sentences, limit):
        pieces = pack_pieces(sentences, limit)
        assert [token for piece in pieces for token in piece] == [token for ids in sentences for token in ids]
        assert all(len(piece) <= limit for piece in pieces)
        assert pieces  # an empty text is still one (empty) piece

    check()
    # sentences are kept whole when they fit: [1,2] + [3] fit in 3 tokens, [4,5,6,7] is cut
    assert pack_pieces([[1, 2], [3], [4, 5, 6, 7]], 3) == [[1, 2, 3], [4, 5, 6], [7]]


def test_both_model_kinds_are_classifiers(tmp_path, tiny_model):
    from review_sentiment.config import FinetuneArguments
    from review_sentiment.finetune import finetune
    from tests.conftest import SAMPLE

    tfidf = finetune(SAMPLE, "tfidf", FinetuneArguments(), output_dir=tmp_path / "tfidf").output_dir
    for model in (tiny_model, tfidf):
        classifier = Predictor(model).classifier
        assert isinstance(classifier, Classifier)
        assert classifier.labels == ["negative", "neutral", "positive"]


def test_a_checkpoint_scores_every_review_as_the_rs_model_it_was_made_from(tiny_model, checkpoints, sample_table):
    texts = sample_table["review"].tolist()[:60]
    # the checkpoints have no temperature: they score as the rs model's raw probabilities
    expected = Predictor(tiny_model, calibration=False).probabilities(texts)
    assert not np.allclose(expected, expected[:, ::-1], atol=1e-3)  # a reversed mapping would show
    # 긍정/중립/부정 at classes 0, 1, 2: the columns still come in rs's order (negative, neutral, positive)
    korean = Predictor(checkpoints["korean"])
    assert korean.labels == ["negative", "neutral", "positive"]
    assert np.allclose(korean.probabilities(texts), expected, atol=1e-6)
    numbered = Predictor(checkpoints["numbered"], labels=("negative", "neutral", "positive"))
    assert np.allclose(numbered.probabilities(texts), expected, atol=1e-6)
    assert korean.predict(texts) == Predictor(tiny_model).predict(texts)


def test_normalization_none_scores_the_text_as_it_is(checkpoints):
    import unicodedata

    from review_sentiment.scoring import EMPTY_TEXT

    texts = [
        unicodedata.normalize("NFD", "배송이 빨라서 좋아요"),  # a macOS export: rs recomposes it
        "ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ 좋아요!!!!!!!!",  # rs cuts the repeats
        "배송이 빨라요",  # nothing for rs to change
        "   ",
        None,
    ]
    cleaned = Predictor(checkpoints["korean"])
    raw = Predictor(checkpoints["korean"], normalization="none")
    assert cleaned.normalization.startswith("rs (rs-normalize v2") and raw.normalization == "none (the raw text)"
    assert raw.normalizer.normalize(texts[:3] + ["a\ud800b", float("nan")]) == [*texts[:3], "ab", ""]
    ids_rs, ids_raw = cleaned.prepare(texts).encoded.ids, raw.prepare(texts).encoded.ids
    assert ids_rs[0] != ids_raw[0] and ids_rs[1] != ids_raw[1] and ids_rs[2] == ids_raw[2]
    with_rs, without = cleaned.probabilities(texts), raw.probabilities(texts)
    assert (with_rs[:2] != without[:2]).any(axis=1).all()  # the tiny model's scores differ little, but differ
    assert np.allclose(with_rs[2], without[2], atol=1e-6)
    assert np.isnan(without[3:]).all() and raw.prepare(texts).notes[3:] == [EMPTY_TEXT, EMPTY_TEXT]
