"""How the library tells its caller what it is doing: a `Reporter` receives messages, warnings and progress.

The library never prints. Every stage function takes `reporter=` and defaults to `SILENT`, so rs is quiet when
used from Python (a notebook, a Spark executor); the CLI passes `console.ConsoleReporter`, which draws rich
progress bars on stderr. To follow a run from Python, subclass `Reporter` and override what you need:

    class Log(Reporter):
        def message(self, text):
            logging.info(text)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


class ProgressTask:
    """One progress count (rows, steps) that a stage advances; this base class ignores everything."""

    def advance(self, amount: int = 1, info: str | None = None) -> None:
        """Count `amount` more done; `info` replaces the short text shown beside the count (a loss, an epoch)."""

    def set_total(self, total: int) -> None:
        """The count that means done changed (a training plan refined from the measured speed)."""


class Reporter:
    """Receives what a stage wants a person to know. This base class is silent: it ignores everything."""

    def message(self, text: str) -> None:
        """Something worth a line: what was read, what was chosen, a result."""

    def warning(self, text: str) -> None:
        """Something the user should check or change; the run goes on."""

    @contextmanager
    def progress(
        self, description: str, total: int | None, *, completed: int = 0, info: str = ""
    ) -> Iterator[ProgressTask]:
        """A count from `completed` towards `total` (None: unknown) for the block; yields what advances it."""
        yield ProgressTask()

    @contextmanager
    def stages(
        self, descriptions: Sequence[str], total: int | None, info: str = "rows"
    ) -> Iterator[tuple[Callable[[int], None], ...]]:
        """One count per stage of a pipeline (Normalizing, then Scoring), each advanced from its own thread;
        yields one function per stage that counts n more rows done."""
        yield tuple((lambda rows: None) for _ in descriptions)


SILENT = Reporter()


def per_second(count: float, seconds: float) -> float | None:
    """count / seconds; None when the time is too short for a rate to mean anything (2 rows in 0.05 s)."""
    return count / seconds if seconds >= 0.5 and count >= 1 else None


def rate(speed: float | None, unit: str = "rows") -> str:
    """'8,120 rows/s' for a `per_second` value; '' for None."""
    return "" if speed is None else f"{speed_text(speed)} {unit}/s"


def speed_text(per_second: float) -> str:
    """8,120 for a speed, 3.5 below 10."""
    return f"{per_second:,.1f}" if per_second < 10 else f"{per_second:,.0f}"


def silence_library_logs() -> None:
    """Hide transformers' load reports and download bars; rs reports what matters itself."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
