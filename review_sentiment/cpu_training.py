"""Training on a CPU at the speed of the hardware: oneDNN matmuls, gradients written in place, packed batches,
cheap dropout.

What is measured and why (`python bench/training_speed.py`, README "Training speed"; probes on the 2-core
AVX-512 EPYC development machine, KcELECTRA-base shapes, batch 32 x 16 tokens):

- PyTorch's `nn.Linear` runs its forward and its input gradient through MKL's sgemm, which on AMD processors is
  slower than oneDNN (512 x 768 x 3072: forward 102 vs 185 GFLOP/s, input gradient 141 vs 169). The weight
  gradient (g^T x) is as fast in MKL (153 vs 158) and MKL reads the transposes in place, so it stays there.
- A fresh gradient tensor every step costs page faults: zero-filling a new 54,343 x 768 word-embedding gradient
  took 270-340 ms, refilling one already in memory 4-7 ms (12 % of a step). The fast layers keep one gradient
  buffer per parameter and write into it (matmul with beta 0, or index_add for the embedding) instead of
  allocating, so `zero_grad(set_to_none=True)` costs nothing and nothing is zero-filled twice.
- A batch of short reviews padded to its longest spends 12 % of its compute on padding (2,000 NSMC reviews,
  rs's length-grouped batches of 32). `PackedReviews` lays a batch's reviews several to a row, each attending
  only to itself from position 0, in rows of the length that wastes least: 3-5 % padding. Without dropout a
  packed run trains the same model as a padded one (losses equal to 4 decimals over 3 epochs).
- torch draws a CPU dropout mask with one `bernoulli_` call per element (23 % of a small bf16 pretraining step
  in the profiler). `cheap_dropout` cuts 64-bit draws into four 16-bit lanes: fwd+bwd on 2 M elements 8.0 vs
  16.3 ms (fp32); A/B against the tree before it, bf16 (AVX512-BF16): pretrain small 2,034 -> 2,573 tokens/s,
  a base-shaped finetune epoch on 600 reviews 27.9 -> 24.3 s, same validation accuracy.

On an Intel Xeon (Sapphire Rapids) MKL's fp32 matmuls are as fast as oneDNN's and the layers gain nothing
there (an epoch of the benchmark: rs in fp32 85.1 s, Trainer with group_by_length 84.3 s); with AMX, bf16
autocast is what pays (45 s), and under it the Linear layers stay nn.Linear (`linear=False`), which autocast
sends to oneDNN's bf16 kernels.

Same arithmetic in a different order: gradients agree with plain PyTorch to float32 rounding (tests). A layer
whose gradient goes to its own buffer does not pass through autograd's gradient accumulator, so hooks on it
(DistributedDataParallel's) never fire: the fast path is for one process on a CPU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from review_sentiment.inference import onednn_available, reviews_apart_mask


def _written_gradient(weight):
    """The buffer this step's gradient of `weight` goes to, and whether it already holds part of it (several
    backward passes before the optimizer step add up, as autograd's accumulation does)."""
    if weight.grad is not None:
        return weight.grad, True
    buffer = weight.__dict__.get("_rs_gradient_buffer")
    if buffer is None or buffer.shape != weight.shape:
        import torch

        buffer = torch.empty_like(weight, memory_format=torch.contiguous_format)
        weight._rs_gradient_buffer = buffer
    weight.grad = buffer
    return buffer, False


@functools.lru_cache(maxsize=1)
def _fast_layer_types():
    import torch

    linear_pointwise = torch.ops.mkldnn._linear_pointwise

    class OneDNNLinearFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inputs, weight, bias):
            ctx.save_for_backward(inputs, weight)
            ctx.has_bias = bias is not None
            return linear_pointwise(inputs, weight, bias, "none", [], "")

        @staticmethod
        def backward(ctx, grad_output):
            inputs, weight = ctx.saved_tensors
            flat_grad = grad_output.reshape(-1, grad_output.shape[-1])
            flat_inputs = inputs.reshape(-1, inputs.shape[-1])
            grad_inputs = None
            if ctx.needs_input_grad[0]:
                # oneDNN reads the transposed weight as it lies (no copy)
                grad_inputs = linear_pointwise(flat_grad, weight.t(), None, "none", [], "")
                grad_inputs = grad_inputs.view(*grad_output.shape[:-1], weight.shape[1])
            if ctx.needs_input_grad[1]:
                buffer, holds_part = _written_gradient(weight)
                if holds_part:
                    buffer.addmm_(flat_grad.t(), flat_inputs)
                else:
                    torch.mm(flat_grad.t(), flat_inputs, out=buffer)
            grad_bias = flat_grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
            return grad_inputs, None, grad_bias

    class EmbeddingGradientFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, ids, weight, padding_idx):
            ctx.save_for_backward(ids)
            ctx.weight, ctx.padding_idx = weight, padding_idx
            return torch.nn.functional.embedding(ids, weight, padding_idx)

        @staticmethod
        def backward(ctx, grad_output):
            (ids,) = ctx.saved_tensors
            weight = ctx.weight
            buffer, holds_part = _written_gradient(weight)
            if not holds_part:
                buffer.zero_()
            ids, rows = ids.reshape(-1), grad_output.reshape(-1, weight.shape[1])
            if ctx.padding_idx is not None:  # the padding row gets no gradient, as in nn.Embedding
                keep = ids != ctx.padding_idx
                ids, rows = ids[keep], rows[keep]
            buffer.index_add_(0, ids, rows)
            return None, None, None

    class OneDNNLinear(torch.nn.Linear):
        """An nn.Linear whose forward and input gradient run on oneDNN and whose weight gradient is written in
        place."""

        def forward(self, inputs):
            if not torch.is_grad_enabled():
                return linear_pointwise(inputs, self.weight, self.bias, "none", [], "")
            return OneDNNLinearFunction.apply(inputs, self.weight, self.bias)

    class InPlaceGradientEmbedding(torch.nn.Embedding):
        """An nn.Embedding whose gradient is added into one buffer instead of a fresh vocabulary-sized tensor."""

        def forward(self, ids):
            if self.max_norm is not None or self.scale_grad_by_freq or self.sparse:
                return super().forward(ids)
            if not torch.is_grad_enabled() or not self.weight.requires_grad:
                return torch.nn.functional.embedding(ids, self.weight, self.padding_idx)
            return EmbeddingGradientFunction.apply(ids, self.weight, self.padding_idx)

    return OneDNNLinear, InPlaceGradientEmbedding


def use_fast_training_kernels(model, device: str, processes: int = 1, *, linear: bool = True) -> int:
    """Switch an fp32 model's Linear and Embedding layers to the fast CPU training layers (same parameters,
    same state dict); returns how many layers changed, 0 where the path does not apply. `linear=False` leaves
    the Linear layers to autocast (bf16 training) and changes only the Embeddings.

    A probe layer's output and gradients are compared with plain PyTorch's first: on any difference or missing
    operator the model is left as it is, as `pack_linear_layers` does for prediction.
    """
    import torch

    if device != "cpu" or processes > 1 or not onednn_available() or not _fast_path_agrees():
        return 0
    linear_type, embedding_type = _fast_layer_types()
    changed = 0
    for module in model.modules():
        if linear and type(module) is torch.nn.Linear and module.weight.dtype == torch.float32:
            module.__class__ = linear_type  # in place: tied and shared parameters stay the objects they were
            changed += 1
        elif type(module) is torch.nn.Embedding and module.weight.dtype == torch.float32:
            module.__class__ = embedding_type
            changed += 1
    return changed


@functools.lru_cache(maxsize=1)
def _fast_path_agrees() -> bool:
    import torch

    # the probe's layers draw their initial weights from a generator of their own: a run must not depend on
    # whether it was the process's first (the global RNG seeds the head and dropout)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _probe_agrees()


def _probe_agrees() -> bool:
    import torch

    try:
        linear_type, embedding_type = _fast_layer_types()
        generator = torch.Generator().manual_seed(1)
        plain = torch.nn.Linear(24, 40)
        fast = torch.nn.Linear(24, 40)
        fast.load_state_dict(plain.state_dict())
        fast.__class__ = linear_type
        table = torch.nn.Embedding(50, 24, padding_idx=0)
        inputs = torch.randn(3, 5, 24, generator=generator)
        ids = torch.randint(0, 50, (3, 5), generator=generator)
        results = []
        for layer in (plain, fast):
            table.weight.grad = None
            table.__class__ = torch.nn.Embedding if layer is plain else embedding_type
            given = inputs.clone().requires_grad_(True)
            output = layer(given + table(ids))
            (output * torch.arange(40.0)).sum().backward()
            results.append([output, given.grad, layer.weight.grad, layer.bias.grad, table.weight.grad.clone()])
        table.__class__ = torch.nn.Embedding
        return all(torch.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(*results, strict=True))
    except (RuntimeError, AttributeError):  # an operator missing or changed in this torch build
        return False


# Dropout keeps an element where a 16-bit random lane is at least this share of 2^16 (p rounded to 1/65536)
_LANES = 65536


def cheap_dropout(inputs, p: float):
    """Dropout whose mask comes from 64-bit random numbers cut into four 16-bit lanes, one lane per element:
    a quarter of the generator calls `bernoulli_` makes, and no float noise tensor. Same law as torch's dropout
    with p rounded to 1/65536 (0.1 becomes 0.100006); the mask (bool) is what backward keeps, as torch's."""
    import torch

    if p <= 0:
        return inputs
    if p >= 1:
        return inputs * 0
    cut = round(p * _LANES)
    words = torch.empty(-(-inputs.numel() // 4), dtype=torch.int64).random_(-(2**63), None)  # all 64 bits
    keep = words.view(torch.int16)[: inputs.numel()].view(inputs.shape) >= cut - _LANES // 2
    return (inputs * keep).mul_(_LANES / (_LANES - cut))


def _eager_attention_with_cheap_dropout(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **_):
    """transformers' eager attention (modeling_electra.eager_attention_forward) with `cheap_dropout` on the
    attention probabilities, the largest tensor dropout sees (batch x heads x length x length)."""
    import torch

    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.nn.functional.softmax(weights, dim=-1)
    if module.training:
        weights = cheap_dropout(weights, dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


CHEAP_DROPOUT_ATTENTION = "rs_eager_cheap_dropout"


@functools.lru_cache(maxsize=1)
def _cheap_dropout_type():
    import torch
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(CHEAP_DROPOUT_ATTENTION, _eager_attention_with_cheap_dropout)
    # the eager (additive float) mask too: an attention name without one gets no mask at all, padding included
    AttentionMaskInterface.register(CHEAP_DROPOUT_ATTENTION, eager_mask)

    class CheapDropout(torch.nn.Dropout):
        """nn.Dropout drawing its mask with `cheap_dropout`."""

        def forward(self, inputs):
            if not self.training or self.inplace:
                return super().forward(inputs)
            return cheap_dropout(inputs, self.p)

    return CheapDropout


def use_cheap_dropout(model, device: str) -> int:
    """Switch a model's dropout on a CPU to `cheap_dropout`: its nn.Dropout layers and, where attention is
    transformers' eager one, the attention probabilities' (same state dict, same config on disk). Returns how
    many layers changed. On a CPU torch draws dropout masks with one `bernoulli_` call per element, which cost
    23 % of a small pretraining step in bf16 (profiler); on a GPU its fused dropout is already cheap."""
    import torch

    if device != "cpu":
        return 0
    dropout_type = _cheap_dropout_type()
    changed = 0
    for module in model.modules():
        if type(module) is torch.nn.Dropout:
            module.__class__ = dropout_type
            changed += 1
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) == "eager":
        model.set_attn_implementation(CHEAP_DROPOUT_ATTENTION)
    return changed


# The longest row packed reviews may share: attention over a row grows with its length squared, and up to here
# it stays cheap next to the Linear layers (2 % of a base-shaped layer's FLOPs at 128 tokens).
PACKED_ROW_TOKENS = 128


@dataclass
class PackedReviews:
    """A batch of whole reviews packed several to a row, each attending only to itself from position 0: the
    same computation as one padded row per review, with little compute spent on padding (`rs pretrain`'s
    PackedBatch, for classification: the reviews' first tokens are where the classifier reads)."""

    order: list[int]  # the batch's reviews in the order their first tokens appear (row by row)
    input_ids: object  # long [rows, length]
    position_ids: object  # long [rows, length]
    attention_mask: object  # float [rows, 1, length, length]: 0 where a token may attend, a large negative elsewhere
    first_tokens: tuple  # (row indices, column indices) of each review's first token, in `order`
    tokens: int  # real tokens in the batch

    @classmethod
    def of(cls, sequences: list[list[int]], pad_token_id: int, row_tokens: int = PACKED_ROW_TOKENS):
        """The reviews packed first-fit, longest first, into rows of the length (from the longest review up to
        `row_tokens`, in steps of 4) that leaves the fewest padding slots; the shortest such length."""
        import torch

        longest = max(len(sequence) for sequence in sequences)
        candidates = [longest, *range(longest + 4, max(longest, row_tokens) + 1, 4)]
        packings = [(_first_fit([len(s) for s in sequences], length), length) for length in candidates]
        rows, length = min(packings, key=lambda packing: (len(packing[0]) * packing[1], packing[1]))
        input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((len(rows), length), dtype=torch.long)
        review = torch.zeros((len(rows), length), dtype=torch.long)  # 1, 2, … per review in its row; 0 padding
        order, first_rows, first_columns = [], [], []
        for r, members in enumerate(rows):
            column = 0
            for number, index in enumerate(members, start=1):
                size = len(sequences[index])
                input_ids[r, column : column + size] = torch.tensor(sequences[index])
                position_ids[r, column : column + size] = torch.arange(size)
                review[r, column : column + size] = number
                order.append(index)
                first_rows.append(r)
                first_columns.append(column)
                column += size
        # padding attends to itself only, so no row of the softmax is empty
        review = torch.where(review > 0, review, -torch.arange(length).expand_as(review) - 1)
        first_tokens = (torch.tensor(first_rows), torch.tensor(first_columns))
        mask = reviews_apart_mask(review)
        return cls(order, input_ids, position_ids, mask, first_tokens, sum(map(len, sequences)))


def packed_classifier_logits(model, batch: PackedReviews):
    """An ELECTRA classifier's logits [reviews, classes] for packed reviews, in `batch.order`: the encoder over
    the packed rows, then the classification head on each review's first ([CLS]) token."""
    hidden = model.electra(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids
    ).last_hidden_state
    return model.classifier(hidden[batch.first_tokens].unsqueeze(1))


def can_pack_classifier(model, device: str, processes: int = 1) -> bool:
    """Packed batches apply to ELECTRA classifiers trained by one process on a CPU (on a GPU padding costs
    less than the attention masks; under DDP the model must be called as a whole)."""
    return device == "cpu" and processes == 1 and hasattr(model, "electra") and hasattr(model, "classifier")


def _first_fit(sizes: list[int], length: int) -> list[list[int]]:
    """Indices of `sizes` in rows of at most `length`: each, longest first, into the first row with room."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        row = next((r for r, free in enumerate(room) if free >= sizes[index]), None)
        if row is None:
            rows.append([])
            room.append(length)
            row = len(rows) - 1
        rows[row].append(index)
        room[row] -= sizes[index]
    return rows
