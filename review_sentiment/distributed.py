"""Data-parallel training over the processes that `accelerate launch` or `torchrun` start.

`rs finetune` and `rs pretrain` run unchanged in one process. Launched as several (WORLD_SIZE > 1), each
process trains on its part of every batch and Hugging Face accelerate keeps them in step (DDP: gradients are
averaged after every backward pass, so the weights stay identical):

    torchrun --nproc_per_node 4 -m review_sentiment.cli finetune data.csv --base kcelectra
    accelerate launch --num_processes 4 -m review_sentiment.cli finetune data.csv --base kcelectra

What the options say stays what they mean: --batch-size is the global batch, split across the processes (a
batch of 32 on 4 processes: 8 reviews each), so the number of steps, the learning-rate schedule and the
result are those of one process. Only the main process (rank 0) reports and writes files; the others wait for
it where it does (`Processes.on_main`, `wait`). `Processes` is the one process a plain run has;
`AcceleratedProcesses` the many of a launch.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from review_sentiment.errors import RsError

T = TypeVar("T")

INSTALL_HINT = 'pip install "review-sentiment[distributed]"'


def launched_world_size() -> int:
    """How many processes `torchrun` / `accelerate launch` started (1: a plain run)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """Whether this process reports and writes files: the only one of a plain run, rank 0 of a launch."""
    return launched_world_size() == 1 or os.environ.get("RANK", "0") == "0"


class Processes:
    """The processes a training run has: here one, which does everything itself."""

    world_size = 1
    rank = 0
    is_main = True

    def __init__(self, device: str):
        self.device = device

    def describe(self) -> str:
        """How the run is spread, for the line that says what is trained ('' for one process)."""
        return ""

    def prepare(self, model):
        """`model` ready to train across the processes (wrapped for DDP)."""
        return model

    def unwrap(self, model):
        """The model itself, whose weights are saved."""
        return model

    def part_of(self, rows: Sequence[T]) -> list[T]:
        """This process's part of a global batch."""
        return list(rows)

    def sum(self, values: list[float]) -> list[float]:
        """Each value summed over the processes."""
        return values

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true in any process (all of them must ask at the same point)."""
        return flag

    def gather(self, value: object) -> list:
        """Every process's `value`, in rank order, on every process."""
        return [value]

    def on_main(self, work: Callable[[], T]) -> T:
        """Run `work` on the main process only and give its result to every process; an RsError it raises is
        raised on every process, so that none waits for the main one in vain."""
        return work()

    def wait(self) -> None:
        """Wait until every process is here (after the main process wrote what the others read)."""

    def backward(self, loss) -> None:
        """Backpropagate `loss` (across the processes: DDP averages the gradients)."""
        loss.backward()

    def validation_loader(self, loader):
        """`loader`, sharded across the processes."""
        return loader

    def gather_for_metrics(self, tensors):
        """`tensors` of every process, concatenated, less what the sharding repeated."""
        return tensors


class AcceleratedProcesses(Processes):
    """The processes of `torchrun` / `accelerate launch`, kept in step by accelerate's `Accelerator`."""

    def __init__(self, requested_device: str | None):
        try:
            from accelerate import Accelerator
        except ImportError:
            raise RsError(
                f"This run was launched as {launched_world_size()} processes, which needs Hugging Face accelerate: "
                f"{INSTALL_HINT}."
            ) from None
        import torch

        if requested_device and requested_device not in ("cpu", "cuda"):
            raise RsError(
                f"--device {requested_device}: in a launch of several processes each one takes its own GPU "
                "(LOCAL_RANK); pass --device cuda or cpu, or leave it out."
            )
        cpu = requested_device == "cpu" or not torch.cuda.is_available()
        # rs keeps its own mixed precision (autocast, GradScaler) and its own batches: the Accelerator sets up
        # the process group and device, wraps the model for DDP and shards and gathers validation.
        self.accelerator = Accelerator(cpu=cpu, mixed_precision="no")
        # Without this, gloo's worker threads can outlive the interpreter and abort the process (SIGABRT,
        # "terminate called without an active exception") after the run has finished: measured 1 exit in 12.
        atexit.register(_destroy_process_group)
        state = self.accelerator.state
        self.world_size, self.rank = state.num_processes, state.process_index
        self.is_main = state.is_main_process
        device = self.accelerator.device
        super().__init__("cpu" if device.type == "cpu" else str(device))  # accelerate's "cpu:0" is a CPU as well
        self.backend = state.backend

    def describe(self) -> str:
        return f"{self.world_size} processes ({self.backend}), each a 1/{self.world_size} of every batch"

    def prepare(self, model):
        return self.accelerator.prepare_model(model)

    def unwrap(self, model):
        return self.accelerator.unwrap_model(model)

    def part_of(self, rows: Sequence[T]) -> list[T]:
        # every process draws the same global batches (same seed); interleaving gives each a similar length
        return list(rows[self.rank :: self.world_size])

    def sum(self, values: list[float]) -> list[float]:
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        return self.sum([1.0 if flag else 0.0])[0] > 0

    def gather(self, value: object) -> list:
        import torch.distributed as dist

        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def on_main(self, work: Callable[[], T]) -> T:
        import torch.distributed as dist

        outcome: list = [None]
        if self.is_main:
            try:
                outcome = [("ok", work())]
            except RsError as error:
                outcome = [("error", str(error))]
        dist.broadcast_object_list(outcome, src=0)
        kind, value = outcome[0]
        if kind == "error":
            raise RsError(value)
        return value

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()

    def backward(self, loss) -> None:
        self.accelerator.backward(loss)

    def validation_loader(self, loader):
        # the last batches are evened out with repeated rows, which gather_for_metrics drops again
        return self.accelerator.prepare_data_loader(loader)

    def gather_for_metrics(self, tensors):
        return self.accelerator.gather_for_metrics(tensors)

    def _collective_device(self) -> str:
        # NCCL reduces tensors on the GPU, gloo on the CPU
        return self.device if self.backend == "nccl" else "cpu"


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def end_launched_process(code: int):
    """End a process of a launch with exit status `code`: the exit handlers run (the process group is destroyed
    while the interpreter is whole), then the process ends without the interpreter's teardown."""
    # Even with the process group destroyed at exit, 1 launch in ~50 still aborted after the run had finished
    # (SIGABRT, "terminate called without an active exception": a C++ std::thread destroyed while joinable during
    # teardown), which turns a finished run into exit 1 under torchrun. Nothing is left to do after the handlers:
    # outputs are written and closed, so skipping the teardown loses nothing.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def training_processes(requested_device: str | None) -> Processes:
    """The processes of this run: one (picking `requested_device` or the best there is), or those of a launch."""
    if launched_world_size() > 1:
        return AcceleratedProcesses(requested_device)
    from review_sentiment.inference import pick_device

    return Processes(pick_device(requested_device))
