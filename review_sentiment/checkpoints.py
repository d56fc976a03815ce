"""What `rs finetune --resume` and `rs pretrain --resume` share: how a checkpoint folder is written, found and
deleted, how AdamW's state is stored without pickle, the messages that say a checkpoint cannot be resumed, and
the guard that holds Ctrl-C back until a training step is complete.

A checkpoint is written into a hidden sibling, `.NAME.partial`, and swapped in for the previous one by way of
`.NAME.old`, so an interrupted save leaves the previous checkpoint. Its state is `training.json` (JSON) beside
`training.safetensors` (tensors); which files and keys each command writes is in its own module docstring.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from review_sentiment.errors import RsError

STATE_FILE = "training.json"
TENSORS_FILE = "training.safetensors"
RESUME_HINT = "rerun the same command with --resume"


# ----------------------------------------------------------------------------------------- the folder


def staging_dir(folder: Path, kind: str) -> Path:
    """The hidden sibling `.NAME.KIND` of a checkpoint folder: "partial" while one is written, "old" while the
    previous one is swapped out."""
    return folder.with_name(f".{folder.name}.{kind}")


def recover_checkpoint(folder: Path) -> bool:
    """Whether a checkpoint exists at `folder`, after finishing a swap that a crash cut short."""
    previous = staging_dir(folder, "old")
    if not folder.exists() and previous.exists():
        previous.rename(folder)  # the crash fell between moving the old one aside and the new one in
    return folder.is_dir()


def delete_checkpoint(folder: Path) -> None:
    """Delete a checkpoint and whatever an interrupted save left beside it."""
    for path in (folder, staging_dir(folder, "old"), staging_dir(folder, "partial")):
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def write_atomically(folder: Path) -> Iterator[Path]:
    """Yield an empty staging folder to write a checkpoint into; when the block ends without an exception, swap
    it in for the checkpoint at `folder`. On any exception (Ctrl-C included) the staging folder is deleted and
    the previous checkpoint kept."""
    staging = staging_dir(folder, "partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = staging_dir(folder, "old")
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    staging.rename(folder)
    shutil.rmtree(previous, ignore_errors=True)


# ----------------------------------------------------------------------------------------- the state


def write_state(staging: Path, checkpoint_format: int, fingerprint: dict, state: dict) -> None:
    """Write training.json: the format, the time, the fingerprint of what must match to resume, then `state`."""
    payload = {
        "format": checkpoint_format,
        "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,
        **state,
    }
    (staging / STATE_FILE).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def split_optimizer_state(state: dict) -> tuple[dict, dict]:
    """An optimizer's `state_dict()` as (tensors named `optimizer.INDEX.KEY`, on the CPU, for safetensors; the
    rest, for JSON)."""
    import torch

    tensors = {}
    other: dict = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                other.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "state": other}


def join_optimizer_state(tensors: dict, saved: dict) -> dict:
    """The optimizer state dict that `split_optimizer_state` split into `tensors` (other keys are ignored) and
    `saved` (read back from JSON: lists in the parameter groups become tuples again, as AdamW's betas were)."""
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in saved["state"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [
        {key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
        for group in saved["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------------------- refusals


def damaged(folder: Path, error: BaseException | str) -> RsError:
    """The error for a checkpoint that cannot be read."""
    return RsError(
        f"The checkpoint in {folder} is damaged ({error}); rerun without --resume and with --force to start over."
    )


def check_format(folder: Path, saved: dict, checkpoint_format: int) -> None:
    """Refuse a checkpoint written in a newer format than `checkpoint_format`."""
    if saved.get("format", 0) > checkpoint_format:
        raise RsError(f"The checkpoint in {folder} was made by a newer rs; upgrade rs to resume it.")


def check_fingerprint(folder: Path, difference: str) -> None:
    """Refuse to resume when the fingerprints differ; `difference` says how, in words ('' when they match)."""
    if difference:
        raise RsError(
            f"Cannot resume from {folder}: {difference}. Pass the same options as the interrupted run, "
            "or rerun without --resume and with --force to start over."
        )


def argument_differences(
    old: dict, new: dict, option_names: dict[str, str], shown: Callable[[object], str] = str
) -> list[str]:
    """For every argument that differs: "OPTION was OLD there, NEW now", spelled as on the command line."""
    differences = []
    for arg in [*new, *(arg for arg in old if arg not in new)]:
        if old.get(arg) != new.get(arg):
            option = option_names.get(arg, arg)
            differences.append(f"{option} was {shown(old.get(arg))} there, {shown(new.get(arg))} now")
    return differences


# ----------------------------------------------------------------------------------------- Ctrl-C


class InterruptGuard:
    """Holds Ctrl-C (and `kill`, SIGTERM) back while a training step or its bookkeeping runs, so a checkpoint
    is never taken of a half-updated state: the first signal stops the run once the step is complete, a second
    one stops it at once."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.holding = False
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Install the signal handlers for the block (only on the main thread, where signals arrive)."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach only the main thread
            return
        previous = {}
        for name in self.SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, self._handle)
        try:
            yield
        finally:
            for number, handler in previous.items():
                # None: a handler installed outside Python, which cannot be put back; use Python's default.
                default = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
                signal.signal(number, handler if handler is not None else default)

    def _handle(self, signum, frame) -> None:
        if self.holding and not self.requested:
            self.requested = True
            self.say("Stopping after this step to save a checkpoint (Ctrl-C again stops at once).")
            return
        raise KeyboardInterrupt

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a signal back until the block ends, then raise KeyboardInterrupt if one came."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.requested:
            raise KeyboardInterrupt
