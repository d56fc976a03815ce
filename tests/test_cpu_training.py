import copy

import pytest

from review_sentiment import cpu_training
from review_sentiment.cpu_training import use_fast_training_kernels
from review_sentiment.inference import onednn_available

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="the fast training path is for x86 builds of torch")


def tiny_electra(kind: str, seed: int = 0):
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForSequenceClassification

    torch.manual_seed(seed)
    config = ElectraConfig(
        vocab_size=300,
        embedding_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
        num_labels=3,
    )
    model = (ElectraForMaskedLM if kind == "generator" else ElectraForSequenceClassification)(config)
    model.set_attn_implementation("eager")
    return model.train()


def batch(seed: int = 1):
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 300, (4, 16), generator=generator)
    mask = torch.ones_like(ids)
    ids[1, 10:], mask[1, 10:] = 0, 0  # padding, whose embedding row must get no gradient
    return ids, mask, torch.randint(0, 3, (4,), generator=generator)


def loss_and_gradients(model, passes: int = 1):
    """Loss and every parameter's gradient after `passes` backward passes on the same batch (dropout drawn from
    the same seed for either model)."""
    import torch

    ids, mask, gold = batch()
    torch.manual_seed(7)
    for _ in range(passes):
        if hasattr(model, "classifier"):
            loss = model(input_ids=ids, attention_mask=mask, labels=gold).loss
        else:
            loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(fast: dict, plain: dict) -> None:
    import torch

    assert fast.keys() == plain.keys()
    for name, reference in plain.items():
        # fp32 sums of at most 128 terms (the FFN width; 64 tokens for a weight gradient) taken in another order:
        # about 128 x 6e-8 relative, so 1e-4 of the gradient's own scale leaves room and still catches a wrong
        # transpose, a missing term or a lost accumulation, which are off by the gradient's whole size. The
        # floor is for the attention key biases, whose gradient is exactly zero in exact arithmetic (softmax does
        # not change when a query's scores all shift by one amount): both sides hold 1e-13 of rounding there.
        scale = reference.abs().max().item()
        torch.testing.assert_close(fast[name], reference, rtol=1e-4, atol=1e-4 * scale + 1e-9, msg=name)


@needs_onednn
@pytest.mark.parametrize("kind", ["classifier", "generator"])
@pytest.mark.parametrize("passes", [1, 2])
def test_fast_layers_give_plain_pytorchs_loss_and_gradients(kind, passes):
    import torch

    plain = tiny_electra(kind)
    fast = copy.deepcopy(plain)
    changed = use_fast_training_kernels(fast, "cpu")
    layers = sum(type(m) in (torch.nn.Linear, torch.nn.Embedding) for m in plain.modules())
    assert changed == layers > 0
    assert fast.state_dict().keys() == plain.state_dict().keys()
    plain_loss, plain_gradients = loss_and_gradients(plain, passes)
    fast_loss, fast_gradients = loss_and_gradients(fast, passes)
    torch.testing.assert_close(fast_loss, plain_loss, rtol=1e-5, atol=1e-6)
    assert_same_gradients(fast_gradients, plain_gradients)
    if kind == "classifier":  # (the generator's output layer, tied to the embeddings, scores the padding id too)
        assert fast.electra.embeddings.word_embeddings.weight.grad[0].abs().max() == 0


@needs_onednn
def test_a_tied_output_layer_and_its_embedding_add_into_one_gradient():
    import torch

    plain = tiny_electra("generator")
    plain.tie_weights()
    fast = copy.deepcopy(plain)
    use_fast_training_kernels(fast, "cpu")
    assert fast.generator_lm_head.weight is fast.electra.embeddings.word_embeddings.weight
    _, plain_gradients = loss_and_gradients(plain)
    _, fast_gradients = loss_and_gradients(fast)
    assert_same_gradients(fast_gradients, plain_gradients)
    assert torch.count_nonzero(fast_gradients["electra.embeddings.word_embeddings.weight"]) > 0


@needs_onednn
def test_steps_reuse_one_gradient_buffer_and_start_from_zero():
    import torch

    plain = tiny_electra("classifier")
    fast = copy.deepcopy(plain)
    use_fast_training_kernels(fast, "cpu")
    weight = fast.classifier.dense.weight
    first = None
    for model in (plain, fast):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(3):  # zero_grad(set_to_none=True) between steps, as rs's training loops do
            optimizer.zero_grad(set_to_none=True)
            loss_and_gradients(model)
            if model is fast:
                first = first if first is not None else weight.grad.data_ptr()
                assert weight.grad.data_ptr() == first  # the same memory every step, not a fresh allocation
            optimizer.step()
    for (name, plain_parameter), fast_parameter in zip(plain.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(fast_parameter, plain_parameter, rtol=1e-4, atol=1e-6, msg=name)


@needs_onednn
def test_without_gradients_the_fast_layers_compute_the_same_outputs():
    import torch

    plain = tiny_electra("classifier").eval()
    fast = copy.deepcopy(plain)
    use_fast_training_kernels(fast, "cpu")
    ids, mask, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            fast(input_ids=ids, attention_mask=mask).logits, plain(input_ids=ids, attention_mask=mask).logits
        )


def test_switching_layers_leaves_the_global_rng_alone():
    import torch

    model = tiny_electra("classifier")
    cpu_training._fast_path_agrees.cache_clear()  # the first call in a process probes the operators
    state = torch.get_rng_state()
    use_fast_training_kernels(model, "cpu")
    assert torch.equal(torch.get_rng_state(), state)


def test_the_fast_path_applies_to_one_process_on_a_cpu_only():
    model = tiny_electra("classifier")
    assert use_fast_training_kernels(model, "cuda") == 0
    assert use_fast_training_kernels(model, "cpu", processes=2) == 0  # DDP's gradient hooks need autograd's
    assert all(type(m).__module__.startswith("torch.") for m in model.modules() if "Linear" in type(m).__name__)


def test_without_onednn_or_with_a_missing_operator_the_model_stays_plain_pytorch(monkeypatch):
    import torch

    model = tiny_electra("classifier")
    monkeypatch.setattr(cpu_training, "onednn_available", lambda: False)
    assert use_fast_training_kernels(model, "cpu") == 0
    monkeypatch.undo()

    def missing_operator():
        raise AttributeError("'_OpNamespace' 'mkldnn' object has no attribute '_linear_pointwise'")

    cpu_training._fast_path_agrees.cache_clear()
    monkeypatch.setattr(cpu_training, "_fast_layer_types", missing_operator)
    try:
        assert use_fast_training_kernels(model, "cpu") == 0
    finally:
        monkeypatch.undo()
        cpu_training._fast_path_agrees.cache_clear()
    assert all(type(m) is torch.nn.Linear for m in model.modules() if isinstance(m, torch.nn.Linear))


def review_lengths_batch(lengths, seed: int = 3):
    import torch

    generator = torch.Generator().manual_seed(seed)
    # [CLS] … [SEP] framed like the tokenizer's output: id 2 first, 3 last, words from 5 up
    return [[2, *torch.randint(5, 300, (n - 2,), generator=generator).tolist(), 3] for n in lengths]


def test_packed_reviews_hold_every_review_once_each_on_its_own():
    from review_sentiment.cpu_training import PackedReviews

    sequences = review_lengths_batch([40, 3, 17, 9, 9, 30, 5, 12, 64, 7])
    batch = PackedReviews.of(sequences, pad_token_id=0)
    assert sorted(batch.order) == list(range(len(sequences)))
    assert batch.tokens == sum(map(len, sequences))
    rows, length = batch.input_ids.shape
    assert 64 <= length <= 128 and rows * length < len(sequences) * 64  # fewer slots than padding each review
    starts = list(zip(*(index.tolist() for index in batch.first_tokens), strict=True))
    for review, (row, column) in zip(batch.order, starts, strict=True):
        size = len(sequences[review])
        assert batch.input_ids[row, column : column + size].tolist() == sequences[review]
        assert batch.position_ids[row, column : column + size].tolist() == list(range(size))
        sees = batch.attention_mask[row, 0, column] == 0  # what the review's first token attends to
        assert sees.nonzero().flatten().tolist() == list(range(column, column + size))


def test_packed_reviews_use_the_row_length_that_wastes_least():
    from review_sentiment.cpu_training import PackedReviews

    # padded, six reviews of 10 tokens and one of 12 take 7 x 12 slots; one row of 72 holds them exactly
    batch = PackedReviews.of(review_lengths_batch([10] * 6 + [12]), pad_token_id=0)
    assert tuple(batch.input_ids.shape) == (1, 72)
    # reviews of one length already fill their rows: the shortest rows win (least attention)
    batch = PackedReviews.of(review_lengths_batch([16] * 8), pad_token_id=0)
    assert tuple(batch.input_ids.shape) == (8, 16)
    # one long review sets the row length and nothing shares a row with it
    batch = PackedReviews.of(review_lengths_batch([120, 100]), pad_token_id=0)
    assert tuple(batch.input_ids.shape) == (2, 120)


def test_a_packed_batch_gives_the_padded_batchs_logits():
    import torch

    from review_sentiment.cpu_training import PackedReviews, can_pack_classifier, packed_classifier_logits
    from review_sentiment.inference import pad_batch

    model = tiny_electra("classifier").eval()  # no dropout: the two layouts draw different masks
    assert can_pack_classifier(model, "cpu") and not can_pack_classifier(model, "cuda")
    sequences = review_lengths_batch([40, 3, 17, 9, 9, 30, 5, 12, 60, 7])
    ids, mask = pad_batch(sequences, pad_token_id=0)
    batch = PackedReviews.of(sequences, pad_token_id=0)
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask).logits
        packed = packed_classifier_logits(model, batch)
    torch.testing.assert_close(packed, padded[batch.order], rtol=1e-4, atol=1e-5)


@needs_onednn
def test_under_bf16_only_the_embeddings_change_and_autocast_keeps_the_linear_layers():
    """`linear=False` (bf16 training): autocast runs nn.Linear on oneDNN's bf16 kernels, which a swapped layer
    would bypass; the embeddings still write their gradient in place."""
    import torch

    model = torch.nn.Sequential(torch.nn.Embedding(30, 8), torch.nn.Linear(8, 4))
    changed = use_fast_training_kernels(model, "cpu", linear=False)
    assert changed == 1 and type(model[1]) is torch.nn.Linear and type(model[0]) is not torch.nn.Embedding
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(torch.tensor([[1, 2, 3]]))
    assert output.dtype == torch.bfloat16
    output.float().sum().backward()
    assert model[0].weight.grad.dtype == torch.float32 and model[0].weight.grad[1].abs().sum() > 0


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cheap_dropout_drops_a_share_p_in_every_lane_and_scales_the_rest(p):
    import torch

    torch.manual_seed(0)
    dropped = cpu_training.cheap_dropout(torch.ones(400_000), p) == 0
    # each of the four 16-bit lanes of a 64-bit draw on its own (a lane stuck on one bit, as the sign of a
    # non-negative int64 is, would drop none or all): binomial, 100,000 draws, 5 standard deviations
    for lane in range(4):
        assert abs(dropped[lane::4].float().mean().item() - p) < 5 * (p * (1 - p) / 100_000) ** 0.5
    scale = 1 / (1 - round(p * 65536) / 65536)
    kept = cpu_training.cheap_dropout(torch.ones(1000), p).unique().tolist()
    assert kept[0] == 0.0 and kept[1:] == [pytest.approx(scale)]


def test_cheap_dropout_masks_the_gradient_as_the_output_and_follows_the_seed():
    import torch

    inputs = torch.ones(3, 1000, requires_grad=True)
    torch.manual_seed(5)
    output = cpu_training.cheap_dropout(inputs, 0.2)
    output.backward(torch.ones_like(output))
    torch.testing.assert_close(inputs.grad, output.detach())  # d(x * keep * scale)/dx = keep * scale
    torch.manual_seed(5)
    assert torch.equal(cpu_training.cheap_dropout(inputs, 0.2), output)
    assert not torch.equal(cpu_training.cheap_dropout(inputs, 0.2), output)  # the generator moved on
    assert cpu_training.cheap_dropout(inputs, 0.0) is inputs
    assert cpu_training.cheap_dropout(torch.ones(4, dtype=torch.bfloat16), 0.1).dtype == torch.bfloat16


def test_cheap_dropout_replaces_the_models_dropout_and_leaves_evaluation_and_the_saved_config_alone():
    import torch

    plain = tiny_electra("classifier").eval()
    cheap = copy.deepcopy(plain)
    dropouts = sum(type(m) is torch.nn.Dropout for m in plain.modules())
    assert cpu_training.use_cheap_dropout(cheap, "cpu") == dropouts > 0
    assert cheap.config._attn_implementation == cpu_training.CHEAP_DROPOUT_ATTENTION
    assert cheap.config.to_dict() == plain.config.to_dict()  # what save_pretrained writes
    ids, mask, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            cheap(input_ids=ids, attention_mask=mask).logits, plain(input_ids=ids, attention_mask=mask).logits
        )
    assert cpu_training.use_cheap_dropout(tiny_electra("classifier"), "cuda") == 0


def test_the_attention_probabilities_get_cheap_dropout_in_training():
    import torch

    model = tiny_electra("classifier")
    attention = [layer.attention.self.dropout for layer in model.electra.encoder.layer]  # only their p is read
    for module in model.modules():  # no dropout left but the attention probabilities'
        if isinstance(module, torch.nn.Dropout) and not any(module is a for a in attention):
            module.p = 0.0
    cpu_training.use_cheap_dropout(model, "cpu")
    ids, mask, _ = batch()
    logits = [model.train()(input_ids=ids, attention_mask=mask).logits for _ in range(2)]
    assert not torch.allclose(logits[0], logits[1])  # dropout drew two masks
    for module in attention:
        module.p = 0.0
    again = [model(input_ids=ids, attention_mask=mask).logits for _ in range(2)]
    torch.testing.assert_close(again[0], again[1])
