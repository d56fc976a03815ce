"""The loop `rs finetune` and `rs pretrain` share: set-up, then a command's steps, then its outputs.

A command writes its training as a generator of events (after spaCy's `train_while_improving`): it yields
`StepEnd` after every step, `EpochEnd` after an epoch's validation and `TrainingEnd` once the last step's
bookkeeping is done, and it changes what a checkpoint holds only inside `loop.changing(...)`, within
`loop.held()`. `TrainingLoop.run` consumes the events, and is the one place that counts progress, calls
`on_step`, saves checkpoints (after every epoch, every N minutes and at the end, as the command asks), holds
Ctrl-C until a step is complete and, on Ctrl-C, saves what can be saved and raises `Interrupted` with a
message that says where training stopped and what was kept:

    with loop.held():                       # Ctrl-C waits for the step and its event to be handled
        with loop.changing(current=step + 1):
            ...one step: the models, the optimizer and the state change...
        yield StepEnd(step + 1, info)       # the loop counts it, checkpoints, calls on_step

Code outside `loop.held()` (fine-tuning's validation) stops at once on Ctrl-C: it changes nothing a checkpoint
holds, so the loop saves the moment before it.

In a distributed run (`processes`: several, see distributed.py) the processes must stop at the same step and
save together, or one would wait for the others forever: Ctrl-C is held everywhere, and at every event the
loop asks all processes whether one got it (and whether a timed checkpoint is due by any one's clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from review_sentiment.checkpoints import RESUME_HINT
from review_sentiment.distributed import Processes
from review_sentiment.errors import Interrupted, RsError
from review_sentiment.interrupts import InterruptGuard
from review_sentiment.reporting import SILENT, Reporter

# ----------------------------------------------------------------------------------------- events


@dataclass
class StepEnd:
    """A training step and its bookkeeping are complete."""

    step: int  # steps done
    info: str  # the progress text beside the count (a loss, an epoch)
    total: int | None = None  # the planned steps, where the plan changed at this step
    hook: tuple = ()  # what `on_step` is called with


@dataclass
class EpochEnd:
    """An epoch's validation and bookkeeping are complete."""

    epoch: int


@dataclass
class TrainingEnd:
    """Training is over: the last step's bookkeeping is complete."""


Event = StepEnd | EpochEnd | TrainingEnd


@dataclass
class StopWords:
    """How a command says where an interrupted run stopped."""

    step: Callable[[int], str]  # "step 12 of 36": a step in words, of the current plan
    detail: Callable[[], str]  # " (epoch 2)", " (training had finished)": said after a step with a checkpoint
    nothing_kept: str  # the whole message when no checkpoint was saved
    on_nothing_kept: Callable[[], None] = lambda: None  # clean up what was made for the first checkpoint


# ----------------------------------------------------------------------------------------- the loop


class TrainingLoop:
    """Runs one command's events: progress, `on_step`, checkpoints and Ctrl-C (the module docstring shows how).

    `save` writes a checkpoint of the current moment (None: keep none, and let Ctrl-C through as it is). It is
    called after every `EpochEnd` with `save_after_epoch`, after a `StepEnd` when `save_every_seconds` have
    passed since the last one, at `TrainingEnd` when the last moment is not saved yet, and on Ctrl-C when the
    state is consistent and unsaved and no save was under way.
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        step: int,
        resumed: bool,
        save: Callable[[], None] | None,
        checkpoint_folder: Path | str | None,
        words: StopWords,
        reporter: Reporter = SILENT,
        on_step: Callable[..., None] | None = None,
        save_after_epoch: bool = False,
        save_every_seconds: float | None = None,
        processes: Processes | None = None,
    ):
        self.description, self.total = description, total
        self.save, self.checkpoint_folder, self.words = save, checkpoint_folder, words
        self.reporter, self.on_step = reporter, on_step
        self.save_after_epoch, self.save_every_seconds = save_after_epoch, save_every_seconds
        self.processes = processes or Processes("cpu")
        self.agreed = self.processes.world_size > 1
        self.guard = InterruptGuard(reporter, agreed=self.agreed)
        self.step = step  # steps done
        self.saved_at = step if resumed else None  # the step of the last checkpoint
        self.consistent = True  # whether the models, optimizer, RNGs and state describe one moment of training
        self.unsaved = False  # whether that moment is newer than the last checkpoint
        self.saving = False  # whether a checkpoint is being written
        self.current: int | None = None  # the step under way while not consistent (None: the end of training)
        self.last_saved = time.perf_counter()

    def held(self):
        """Hold Ctrl-C until the block ends (a step, its bookkeeping and the handling of its event)."""
        return self.guard.hold()

    @contextmanager
    def changing(self, current: int | None) -> Iterator[None]:
        """The block changes what a checkpoint holds, for step `current` (None: the end of training); once it
        ends, the state is consistent again and newer than the last checkpoint."""
        self.consistent, self.current = False, current
        yield
        self.consistent = self.unsaved = True

    def run(self, events: Iterator[Event]) -> None:
        """Consume the command's events to the end; on Ctrl-C save what can be saved and raise Interrupted."""
        self.last_saved = time.perf_counter()
        try:
            with (
                self.guard.installed(),
                self.reporter.progress(self.description, self.total, completed=self.step) as task,
                closing(events),  # on Ctrl-C the steps end here, before the checkpoint is saved
            ):
                for event in events:
                    self._handle(event, task)
        except KeyboardInterrupt:
            if self.save is None:
                raise
            raise Interrupted(self._stop()) from None

    def _handle(self, event: Event, task) -> None:
        if isinstance(event, StepEnd):
            self.step = event.step
            if event.total is not None:
                self.total = event.total
                task.set_total(event.total)
            task.advance(1, info=event.info)
            if self.on_step:
                self.on_step(*event.hook)
            due = (
                self.save_every_seconds is not None and time.perf_counter() - self.last_saved > self.save_every_seconds
            )
            stop, due = self._agree(due)
            if due:
                self._save()
        elif isinstance(event, EpochEnd):
            if self.save_after_epoch:
                self._save()
            stop, _ = self._agree()
        else:  # TrainingEnd
            if self.unsaved:
                self._save()
            stop, _ = self._agree()
        if stop:
            raise KeyboardInterrupt

    def _agree(self, save_due: bool = False) -> tuple[bool, bool]:
        """(stop, save_due) as all processes see them: true where any one has a Ctrl-C held or a checkpoint due.
        One process: (False, save_due), for a Ctrl-C has stopped it already."""
        if not self.agreed:
            return False, save_due
        stop, due = self.processes.sum([float(self.guard.requested), float(save_due)])
        return stop > 0, due > 0

    def _save(self) -> None:
        if self.save is None:
            return
        self.saving = True
        self.save()
        self.saving = False
        self.saved_at, self.unsaved, self.last_saved = self.step, False, time.perf_counter()

    def _stop(self) -> str:
        """Save the moment training stopped at, if it is one; the message that says what was kept."""
        # a forced stop in a distributed run saves nothing: the other processes may be anywhere
        forced_apart = self.agreed and self.guard.forced
        if self.consistent and self.unsaved and not self.saving and not forced_apart:
            try:
                self._save()
            except KeyboardInterrupt:
                pass  # Ctrl-C again: stop at once; the previous checkpoint is kept
        words, folder = self.words, self.checkpoint_folder
        if self.saved_at is not None and self.saved_at == self.step and self.consistent:
            return (
                f"Stopped at {words.step(self.step)}{words.detail()}; checkpoint saved in {folder}. "
                f"To continue, {RESUME_HINT}."
            )
        if self.saved_at is not None:
            if not self.consistent:
                where = f"during {words.step(self.current)}" if self.current else "at the end of training"
            else:
                where = f"while saving the checkpoint of {words.step(self.step)}"
            return (
                f"Stopped {where}; the checkpoint of step {self.saved_at} in {folder} is kept. To continue from "
                f"there, {RESUME_HINT}."
            )
        words.on_nothing_kept()
        return words.nothing_kept


# ----------------------------------------------------------------------------------------- before and after


def before_resume(folder) -> str:
    """The message for Ctrl-C while a resumed run sets up: the checkpoint is untouched."""
    return f"Stopped before training resumed; the checkpoint in {folder} is kept. To continue, {RESUME_HINT}."


def while_writing(what: str, folder, them: str) -> str:
    """The message for Ctrl-C while the outputs of a finished training are written."""
    return (
        f"Stopped while {what}; training had finished and its checkpoint in {folder} is kept. "
        f"To write {them}, {RESUME_HINT}."
    )


@contextmanager
def interrupted_as(message: str | None) -> Iterator[None]:
    """Turn a Ctrl-C in the block into Interrupted(message): what was kept and how to continue (None: let it
    through as it is)."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        if message is None:
            raise
        raise Interrupted(message) from None


def has_fast_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware, faster than fp32: AMX tiles (Intel Sapphire Rapids
    and later; measured 2,031 vs 290 GFLOP/s, 1024 x 768 x 3072 on oneDNN, 2 cores) or AVX512-BF16 (AMD Zen 4
    and later, Intel Cooper Lake; measured 404 vs 199 GFLOP/s on a 2-core AMD EPYC). Elsewhere bf16 is converted
    in software and fp32 is the faster choice."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check and check() for check in checks)


def precision_name(dtype) -> str:
    """fp32, bf16 or fp16: how --precision spells an autocast dtype (None: fp32)."""
    return {"torch.bfloat16": "bf16", "torch.float16": "fp16"}.get(str(dtype), "fp32")


def training_precision(device: str, requested: str = "auto"):
    """The autocast dtype training uses on `device` for --precision `requested` (None: fp32); fails with the fix
    where the device cannot run it."""
    import torch

    on_cuda = torch.device(device).type == "cuda"
    if requested == "auto":
        if on_cuda:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if torch.device(device).type == "cpu" and has_fast_cpu_bf16() else None
    if requested == "fp32":
        return None
    if requested == "fp16" and not on_cuda:
        raise RsError(f"--precision fp16 is for GPUs; on {device} use bf16 (fast with AMX or AVX512-BF16) or fp32.")
    if requested == "bf16" and on_cuda and not torch.cuda.is_bf16_supported():
        raise RsError("--precision bf16: this GPU has no bf16; use fp16 (or auto).")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[requested]
