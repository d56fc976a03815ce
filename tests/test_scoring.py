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
