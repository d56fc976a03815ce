"""Running a classifier at the speed of the hardware: device, precision, kernels, threads, token-budget batches.

What is measured and why (`python bench/predict_speed.py`, README "Prediction speed"):

- CPU, fp32: PyTorch's `nn.Linear` calls MKL's sgemm, which on AMD processors runs at less than half the
  speed of oneDNN (KcELECTRA-base shapes on the 2-core EPYC development machine: 205 vs 480 GFLOP/s). Linear
  layers hold 93 % of an ELECTRA's inference time, so `pack_linear_layers` swaps them for oneDNN matmuls
  with the weights reordered once into oneDNN's blocked layout. Same arithmetic in a different order: logits
  differ by about 1e-6.
- CPU, `--quantize int8`: dynamic int8 quantization of the Linear layers (weights int8, activations quantized
  per batch), about 2.4x the fp32 oneDNN path; labels agree with fp32 on nearly every review.
- CUDA: the whole model in bf16 (fp16 where the GPU lacks bf16) with SDPA attention and large batches.
- Batches are sized by tokens, not rows: reviews sorted by length are cut into batches whose padded size
  (rows x longest) stays under a budget, so short reviews run many to a batch and long ones few. On CPU small
  budgets win because the activations stay in cache; on a GPU large ones keep it busy.
"""

from __future__ import annotations

import functools
import os
import platform
import warnings
from collections.abc import Callable

import numpy as np

from review_sentiment.errors import RsError
from review_sentiment.options import MAX_BATCH_ROWS  # re-exported: declared with the other option defaults

CPU_BATCH_TOKENS = 512
CUDA_BATCH_TOKENS = 32768


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise RsError("--device cuda was asked for, but torch sees no CUDA GPU on this machine.")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def use_fast_attention(model, device: str) -> None:
    """Pick the attention kernel for the device. On CPU the plain ("eager") attention is about twice as fast as
    PyTorch's SDPA for padded batches: a pretraining step of a 4 x 256 ELECTRA (32 x 128 tokens, padding mask)
    took 2.4 s instead of 4.6 s on the 2-core development machine (torch 2.13)."""
    model.set_attn_implementation("eager" if device == "cpu" else "sdpa")


def usable_cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_cpu_threads(threads: int | None = None) -> int:
    """One intra-op thread per usable core (not per hyper-thread, not the whole machine inside a container's
    CPU limit); no inter-op threads, because a transformer forward pass is one chain of operations."""
    import torch

    threads = threads or usable_cpu_cores()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel operation; later calls keep the first setting
        pass
    return threads


def pad_batch(sequences: list[list[int]], pad_token_id: int, multiple_of: int = 1):
    """Token-id lists → (input_ids, attention_mask) tensors padded to the longest sequence in the batch, rounded up
    to `multiple_of`."""
    import torch

    longest = -(-max(len(sequence) for sequence in sequences) // multiple_of) * multiple_of
    ids = np.full((len(sequences), longest), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def reviews_apart_mask(review):
    """The additive attention mask [rows, 1, length, length] for packed rows: 0 where two tokens belong to the
    same review (`review`: long [rows, length], the review number of each token), a large negative elsewhere."""
    import torch

    apart = review.unsqueeze(2) != review.unsqueeze(1)
    return torch.zeros(apart.shape).masked_fill(apart, torch.finfo(torch.float32).min).unsqueeze(1)


def token_budget_batches(lengths: list[int], max_tokens: int, max_rows: int = MAX_BATCH_ROWS) -> list[list[int]]:
    """Indices grouped into batches, longest first, each with rows x longest <= max_tokens (a review longer than
    the budget gets a batch of its own) and at most max_rows rows."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # sorted longest first, so the batch's first row sets its padded length
        if current and ((len(current) + 1) * lengths[current[0]] > max_tokens or len(current) >= max_rows):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def onednn_available() -> bool:
    import torch

    # oneDNN is what the x86 builds of torch ship; elsewhere (Apple silicon, ARM servers) keep torch's choice.
    return platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkldnn.is_available()


@functools.lru_cache(maxsize=1)
def _packed_linear_type():
    import torch

    class PackedLinear(torch.nn.Module):
        """An nn.Linear computed by a oneDNN matmul on weights reordered once into oneDNN's blocked layout."""

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach())
            self.weight = torch.nn.Parameter(weight, requires_grad=False)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(), requires_grad=False)

        def forward(self, inputs):
            return torch.ops.mkldnn._linear_pointwise(inputs, self.weight, self.bias, "none", [], "")

    return PackedLinear


def pack_linear_layers(model) -> int:
    """Replace every nn.Linear of an fp32 CPU model in eval mode by a oneDNN-packed one; returns how many.

    The swap is checked on a random input against the original layer first: on any difference or missing
    operator the model is left as it is (0 layers packed). The packed model is for inference only.
    """
    import torch

    if not onednn_available():
        return 0
    linears = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()]
    linears = [(parent, name, child) for parent, name, child in linears if type(child) is torch.nn.Linear]
    if not linears:
        return 0
    try:
        probe = linears[0][2]
        packed = _packed_linear_type()(probe)
        sample = torch.randn(3, 5, probe.in_features)
        with torch.inference_mode():
            if not torch.allclose(packed(sample), probe(sample), rtol=1e-4, atol=1e-4):
                return 0
    except (RuntimeError, AttributeError):  # an operator missing or changed in this torch build
        return 0
    for parent, name, child in linears:
        setattr(parent, name, _packed_linear_type()(child))
    return len(linears)


def quantize_int8(model):
    """Dynamic int8 quantization of the Linear layers (CPU): int8 weights, activations quantized per batch."""
    import torch

    with warnings.catch_warnings():
        # torch.ao's eager quantization is deprecated in favour of torchao; it is still shipped and works, and
        # torchao would be one more dependency for the same int8 kernels (fbgemm on x86, qnnpack on ARM).
        warnings.simplefilter("ignore")
        # in place: a copy would hold a second model in memory for a moment
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def cuda_half_precision() -> str:
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def prepare_for_inference(model, device: str, precision: str | None = None):
    """The model moved, converted and switched to the fastest kernels for `device`; returns (model, precision).

    precision: fp32 (CPU default), int8 (CPU only), bf16 / fp16 (CUDA default: bf16 where supported).
    """
    import torch

    model.eval()
    use_fast_attention(model, device)
    if device.startswith("cuda"):
        precision = precision or cuda_half_precision()
        if precision == "int8":
            raise RsError("--quantize int8 is for CPUs; on a GPU rs runs in half precision already.")
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        return model.to(device=device, dtype=dtype), precision
    precision = precision or "fp32"
    if precision in ("bf16", "fp16"):
        raise RsError(f"{precision} is for GPUs; on a CPU use fp32 or --quantize int8.")
    model = model.to("cpu", dtype=torch.float32)
    copy_off_the_weights_file(model)
    if precision == "int8":
        return quantize_int8(model), precision
    pack_linear_layers(model)
    return model, precision


def copy_off_the_weights_file(model) -> None:
    """Give every parameter memory of its own, so the memory-mapped weights file can be let go.

    transformers maps model.safetensors into memory; every page that is read then counts in the process's RSS
    for as long as any tensor still points into the file, on top of the packed or quantized copies made from
    it. Copied first, the file is released: a KcELECTRA-base after 512 reviews held 1.34 GB (fp32) and 1.39 GB
    (int8) of RSS without this, 1.10 GB and 1.01 GB with it.
    """
    import torch

    with torch.no_grad():
        for module in model.modules():
            for name, parameter in module.named_parameters(recurse=False):
                if type(parameter.data) is torch.Tensor and parameter.device.type == "cpu":
                    setattr(module, name, torch.nn.Parameter(parameter.data.clone(), requires_grad=False))


def batched_probabilities(
    model,
    input_ids: list[list[int]],
    pad_token_id: int,
    *,
    device: str = "cpu",
    batch_tokens: int | None = None,
    batch_size: int = MAX_BATCH_ROWS,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Class probabilities for tokenized texts, in input order.

    Texts are sorted by length and cut into token-budget batches padded only to their own longest text, run
    under inference mode in the model's own precision. `on_batch(rows)` reports progress.
    """
    import torch

    on_gpu = device.startswith("cuda")
    batch_tokens = batch_tokens or (CUDA_BATCH_TOKENS if on_gpu else CPU_BATCH_TOKENS)
    # On a GPU, lengths rounded up to a multiple of 8 suit tensor cores and, with the token budget, make batch
    # shapes repeat, so the GPU libraries reuse the kernels they picked for a shape instead of choosing anew.
    multiple_of = 8 if on_gpu else 1
    probabilities = np.zeros((len(input_ids), model.config.num_labels), dtype=np.float32)
    lengths = [-(-len(ids) // multiple_of) * multiple_of for ids in input_ids]
    with torch.inference_mode():
        for rows in token_budget_batches(lengths, batch_tokens, batch_size):
            ids, mask = pad_batch([input_ids[row] for row in rows], pad_token_id, multiple_of)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            probabilities[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            if on_batch:
                on_batch(len(rows))
    return probabilities
