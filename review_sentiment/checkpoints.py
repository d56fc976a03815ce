"""The one resume mechanism of `rs finetune --resume` and `rs pretrain --resume`: how a checkpoint folder is
written, found and deleted, how named modules, optimizers, schedulers and RNG states are stored without pickle
(`Checkpoint` with `Stored` parts), and the fingerprint check and the messages that say a checkpoint cannot
be resumed (the guard that holds Ctrl-C back until a step is complete is in `interrupts`).

A checkpoint is written into a hidden sibling, `.NAME.partial`, and swapped in for the previous one by way of
`.NAME.old`, so an interrupted save leaves the previous checkpoint. Its state is `training.json` (JSON) beside
`training.safetensors` (tensors); each command declares what it stores (its module docstring lists the files and
keys), and each part names its own tensors and JSON keys.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from review_sentiment.errors import RsError

STATE_FILE = "training.json"
TENSORS_FILE = "training.safetensors"
RESUME_HINT = "rerun the same command with --resume"
_STAMP = r"\d{8}-\d{6}"  # the start time in a default name


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


def default_name(prefix: str) -> str:
    """A default run name: `prefix` and the start time, so that runs never collide."""
    return prefix + datetime.now().strftime("%Y%m%d-%H%M%S")


def is_default_name(name: str, prefix: str, suffix: str = "") -> bool:
    """Whether `name` is `default_name(prefix)` (+ `suffix`), whatever its time."""
    return re.fullmatch(re.escape(prefix) + _STAMP + re.escape(suffix), name) is not None


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


def split_optimizer_state(state: dict, name: str = "optimizer") -> tuple[dict, dict]:
    """An optimizer's `state_dict()` as (tensors named `NAME.INDEX.KEY`, on the CPU, for safetensors; the rest,
    for JSON)."""
    import torch

    tensors = {}
    other: dict = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{name}.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                other.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "state": other}


def join_optimizer_state(tensors: dict, saved: dict, name: str = "optimizer") -> dict:
    """The optimizer state dict that `split_optimizer_state` split into `tensors` (other keys are ignored) and
    `saved` (read back from JSON: lists in the parameter groups become tuples again, as AdamW's betas were)."""
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith(f"{name}."):
            _, index, key_name = key.split(".", 2)
            state.setdefault(int(index), {})[key_name] = value
    for index, values in saved["state"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [
        {key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
        for group in saved["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------------------- what is stored


class Stored(Protocol):
    """One named thing a checkpoint holds: it adds its tensors to training.safetensors and the rest of its state
    to training.json under its own names, and puts them back into the live object on resume."""

    def save(self, folder: Path, tensors: dict, state: dict) -> None: ...

    def restore(self, folder: Path, tensors: dict, state: dict) -> None: ...


@dataclass
class ModuleWeights:
    """A module's weights as one safetensors file (shared tensors once), loaded back onto its device."""

    file: str
    module: object

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        from safetensors.torch import save_model

        save_model(self.module, str(folder / self.file))

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        from safetensors.torch import load_model

        load_model(self.module, str(folder / self.file), device=str(next(self.module.parameters()).device))


@dataclass
class PretrainedFolder:
    """A Hugging Face model or tokenizer in its own folder (`save_pretrained`; "" for the checkpoint folder
    itself). Restoring builds a new object, before the optimizer exists, so `restore` leaves it to the command."""

    name: str
    model: object

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        self.model.save_pretrained(folder / self.name if self.name else folder)

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        pass  # loaded with from_pretrained before the optimizer was built on it


@dataclass
class OptimizerState:
    """An optimizer: its tensors as NAME.INDEX.KEY, its other state under NAME in training.json."""

    name: str
    optimizer: object

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        optimizer_tensors, state[self.name] = split_optimizer_state(self.optimizer.state_dict(), self.name)
        tensors.update(optimizer_tensors)

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        self.optimizer.load_state_dict(join_optimizer_state(tensors, state[self.name], self.name))


@dataclass
class JsonStateDict:
    """An object whose `state_dict()` is plain JSON (a learning-rate scheduler, a GradScaler), under NAME."""

    name: str
    value: object

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        state[self.name] = self.value.state_dict()

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        self.value.load_state_dict(state[self.name])


@dataclass
class StoredValue:
    """One value under NAME, read and written through `get` and `set`: a tensor in training.safetensors with
    `tensor` (an RNG's state), else JSON in training.json (a run's counters as a dict)."""

    name: str
    get: Callable[[], object]
    set: Callable[[object], None]
    tensor: bool = False

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        (tensors if self.tensor else state)[self.name] = self.get()

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        self.set((tensors if self.tensor else state)[self.name])


def rng_states(
    device: str, generators: dict | None = None, *, all_cuda_devices: bool = False, python_and_numpy: bool = False
) -> list[Stored]:
    """The RNG states a run depends on: torch's global one (dropout on a CPU) as rng.torch, each of `generators`
    (name -> torch.Generator: one that shuffles, masks or samples) under its name, CUDA's on a GPU (`CudaRng`),
    and with `python_and_numpy` Python's and NumPy's."""
    import torch

    parts: list[Stored] = [StoredValue("rng.torch", torch.get_rng_state, torch.set_rng_state, tensor=True)]
    for name, generator in (generators or {}).items():
        parts.append(StoredValue(name, generator.get_state, generator.set_state, tensor=True))
    parts.append(CudaRng(device, all_cuda_devices))
    if python_and_numpy:
        parts.append(PythonNumpyRngs())
    return parts


@dataclass
class PerProcess:
    """Parts that differ between the processes of a distributed run (their RNG states: each draws its own
    dropout). The main process's are stored under their own names, as in a run of one process; rank r's tensors
    as rank{r}.NAME and its JSON state under "ranks". `collect` (every process at once) must come before `save`,
    which the main process alone calls; on restore each process takes its own."""

    parts: list[Stored]
    processes: object  # distributed.Processes
    collected: list | None = None

    def collect(self) -> None:
        tensors: dict = {}
        state: dict = {}
        for part in self.parts:
            part.save(Path(), tensors, state)  # RNG states write no files of their own
        self.collected = self.processes.gather((tensors, state))

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        for rank, (rank_tensors, rank_state) in enumerate(self.collected):
            if rank == 0:
                tensors.update(rank_tensors)
                state.update(rank_state)
            else:
                tensors.update({f"rank{rank}.{name}": tensor for name, tensor in rank_tensors.items()})
                state.setdefault("ranks", {})[str(rank)] = rank_state
        self.collected = None

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        rank = self.processes.rank
        if rank:
            prefix = f"rank{rank}."
            tensors = {name.removeprefix(prefix): t for name, t in tensors.items() if name.startswith(prefix)}
            state = state["ranks"][str(rank)]
        for part in self.parts:
            part.restore(folder, tensors, state)


@dataclass
class CudaRng:
    """CUDA's RNG states (dropout on a GPU): every device's as rng.cuda.0, rng.cuda.1 … (`all_devices`), or that
    of `device` alone as rng.cuda; nothing on a CPU."""

    device: str
    all_devices: bool

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        import torch

        device = torch.device(self.device)
        if device.type != "cuda":
            return
        if self.all_devices:
            for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{index}"] = cuda_state
        else:
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        import torch

        if self.all_devices:
            states = [tensors[f"rng.cuda.{i}"] for i in range(len(tensors)) if f"rng.cuda.{i}" in tensors]
            if states:
                torch.cuda.set_rng_state_all(states)
        elif "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], torch.device(self.device))


class PythonNumpyRngs:
    """Python's and NumPy's global RNG states, as python_rng and numpy_rng in training.json."""

    def save(self, folder: Path, tensors: dict, state: dict) -> None:
        import numpy

        numpy_state = numpy.random.get_state()
        state["python_rng"] = random.getstate()
        state["numpy_rng"] = [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]]

    def restore(self, folder: Path, tensors: dict, state: dict) -> None:
        import numpy

        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))
        name, keys, *rest = state["numpy_rng"]
        numpy.random.set_state((name, numpy.array(keys, dtype=numpy.uint32), *rest))


# ----------------------------------------------------------------------------------------- refusals


def damaged(folder: Path, error: BaseException | str) -> RsError:
    """The error for a checkpoint that cannot be read."""
    return RsError(
        f"The checkpoint in {folder} is damaged ({error}); rerun without --resume and with --force to start over."
    )


def left_a_checkpoint(folder: Path) -> RsError:
    """The error for a run that would start over on a checkpoint without being told to resume or delete it."""
    return RsError(
        f"An interrupted run left a checkpoint in {folder}. Pass --resume to continue it (with the same options), "
        "or --force to start over and delete it."
    )


def nothing_to_resume(looked: Path) -> str:
    """The note for --resume where no checkpoint is."""
    return f"No checkpoint to resume ({looked}): starting from the beginning."


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


@dataclass(frozen=True)
class FingerprintWords:
    """How one command says what differs between a checkpoint's fingerprint and its own."""

    arguments_key: str  # the fingerprint key that holds the training arguments
    option_names: dict[str, str]  # how those arguments are spelled on the command line
    described: dict[str, Callable[[object, object], str]]  # key -> the words for (old, new) where it differs
    other: Callable[[str, object, object], str]  # the words for a difference in any other key
    shown: Callable[[object], str] = str  # an argument's value in words
    saved_only: bool = True  # also name keys only the checkpoint has (False: the fingerprint is still partial)
    defaults: dict = field(default_factory=lambda: {"processes": 1})  # what a key left out means


def fingerprint_difference(saved: dict, current: dict, words: FingerprintWords) -> str:
    """What differs between a checkpoint's fingerprint and this run's, in words ('' when nothing does)."""
    keys = [*current, *(key for key in saved if key not in current)] if words.saved_only else list(current)
    keys += [key for key in words.defaults if key not in keys]
    differences = []
    for key in keys:
        old, new = saved.get(key, words.defaults.get(key)), current.get(key, words.defaults.get(key))
        if old == new:
            continue
        if key == words.arguments_key and isinstance(old, dict) and isinstance(new, dict):
            differences.extend(argument_differences(old, new, words.option_names, words.shown))
        elif key in words.described:
            differences.append(words.described[key](old, new))
        else:
            differences.append(words.other(key, old, new))
    return "; ".join(differences)


# ----------------------------------------------------------------------------------------- the checkpoint


@dataclass
class Checkpoint:
    """A command's resumable state in `folder`: training.json (format, time, fingerprint, the parts' JSON),
    training.safetensors (the parts' tensors), the parts' own files and a README.txt."""

    folder: Path
    fingerprint: dict  # what must match to resume
    checkpoint_format: int
    words: FingerprintWords
    readme: str  # README.txt: what the folder is and how to continue
    older_files: tuple[str, ...] = ()  # what a checkpoint of an earlier rs (pickle) holds instead of training.json
    check_older: Callable[[Path, dict], None] | None = None  # refuses a checkpoint of an earlier recipe

    def read(self) -> dict:
        """The checkpoint's training.json, checked against this run's fingerprint (as far as it is known)."""
        path = self.folder / STATE_FILE
        if not path.exists() and any((self.folder / name).exists() for name in self.older_files):
            raise RsError(
                f"The checkpoint in {self.folder} was made by an earlier rs and cannot be resumed; rerun without "
                "--resume and with --force to start over."
            )
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8
            raise damaged(self.folder, error) from None
        check_format(self.folder, saved, self.checkpoint_format)
        self.check(saved)
        return saved

    def check(self, saved: dict) -> None:
        """Refuse `saved` (a training.json) when this run cannot continue it."""
        if self.check_older is not None:
            self.check_older(self.folder, saved)
        difference = fingerprint_difference(saved.get("fingerprint", {}), self.fingerprint, self.words)
        check_fingerprint(self.folder, difference)

    def save(self, parts: Sequence[Stored], processes=None) -> None:
        """Write the parts into a hidden sibling, then swap it in for the previous checkpoint. In a distributed
        run (`processes`, a distributed.Processes) every process calls it: each gives its `PerProcess` parts,
        the main one writes, the others wait until it has."""
        from safetensors.torch import save_file

        if processes is not None and processes.world_size > 1:
            for part in parts:
                if isinstance(part, PerProcess):
                    part.collect()
            if processes.is_main:
                self.save(parts)
            processes.wait()
            return
        with write_atomically(self.folder) as staging:
            tensors: dict = {}
            state: dict = {}
            for part in parts:
                part.save(staging, tensors, state)
            save_file(tensors, str(staging / TENSORS_FILE))
            write_state(staging, self.checkpoint_format, self.fingerprint, state)
            (staging / "README.txt").write_text(self.readme, encoding="utf-8")

    def restore(self, saved: dict, parts: Sequence[Stored]) -> None:
        """Put the parts back from the checkpoint whose training.json is `saved` (from `read`)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(self.folder / TENSORS_FILE))
            for part in parts:
                part.restore(self.folder, tensors, saved)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError, SafetensorError) as error:
            raise damaged(self.folder, error) from None
