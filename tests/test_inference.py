import copy

import numpy as np
import pytest

from review_sentiment.errors import RsError
from review_sentiment.inference import (
    batched_probabilities,
    onednn_available,
    pack_linear_layers,
    prepare_for_inference,
    quantize_int8,
    token_budget_batches,
)


def test_token_budget_batches_cover_every_row_once_within_the_budget():
    lengths = [5, 40, 3, 3, 17, 200, 9, 9, 9, 1, 64, 12]
    batches = token_budget_batches(lengths, max_tokens=60, max_rows=4)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) * longest <= 60 or len(batch) == 1  # a review over the budget runs alone
        assert len(batch) <= 4
        assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)
    assert batches[0] == [5]  # the 200-token review, longest first


def test_token_budget_batches_of_nothing():
    assert token_budget_batches([], max_tokens=512) == []


@pytest.fixture(scope="module")
def tiny_classifier(tiny_model):
    import pandas as pd

    from review_sentiment.modelstore import load_transformer_folder
    from tests.conftest import SAMPLE

    model, tokenizer, _ = load_transformer_folder(tiny_model)
    texts = pd.read_csv(SAMPLE, dtype=str)["review"].tolist()
    return model, tokenizer(texts, truncation=True, max_length=128)["input_ids"], tokenizer.pad_token_id


@pytest.mark.slow
@pytest.mark.skipif(not onednn_available(), reason="oneDNN packing is for x86 builds of torch")
def test_onednn_packed_model_gives_the_same_probabilities(tiny_classifier):
    model, ids, pad = tiny_classifier
    reference = batched_probabilities(model, ids, pad)
    packed = copy.deepcopy(model)
    linear_layers = sum(type(m).__name__ == "Linear" for m in packed.modules())
    assert pack_linear_layers(packed) == linear_layers > 0
    assert not any(type(m).__name__ == "Linear" for m in packed.modules())
    probabilities = batched_probabilities(packed, ids, pad)
    assert np.allclose(probabilities, reference, atol=1e-5)
    assert (probabilities.argmax(1) == reference.argmax(1)).all()


@pytest.mark.slow
def test_int8_agrees_with_fp32_on_the_tiny_model(tiny_classifier):
    model, ids, pad = tiny_classifier
    reference = batched_probabilities(model, ids, pad)
    quantized = quantize_int8(copy.deepcopy(model))
    assert any("quantized" in type(m).__module__ for m in quantized.modules())
    probabilities = batched_probabilities(quantized, ids, pad)
    agreement = (probabilities.argmax(1) == reference.argmax(1)).mean()
    assert agreement >= 0.97, agreement
    assert np.abs(probabilities - reference).max() < 0.05


@pytest.mark.slow
def test_batch_shape_does_not_change_probabilities(tiny_classifier):
    model, ids, pad = tiny_classifier
    small = batched_probabilities(model, ids, pad, batch_tokens=16, batch_size=2)
    large = batched_probabilities(model, ids, pad, batch_tokens=100_000)
    assert np.allclose(small, large, atol=1e-5)


@pytest.mark.slow
def test_half_precision_and_int8_are_refused_where_they_do_not_apply(tiny_classifier):
    model = copy.deepcopy(tiny_classifier[0])
    with pytest.raises(RsError, match="GPUs"):
        prepare_for_inference(model, "cpu", "bf16")
    with pytest.raises(RsError, match="CPUs"):
        prepare_for_inference(model, "cuda", "int8")
