"""Messages for people go to stderr; progress bars only when stderr is a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, highlight=False, soft_wrap=True)


class RateColumn(ProgressColumn):
    """Items per second over the last half minute (rows/s, steps/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f}/s" if speed < 10 else f"{speed:,.0f}/s")


def progress_bar() -> Progress:
    """A rich progress bar on stderr that shows count, rate, elapsed time and ETA; silent off a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=False,
    )


@contextmanager
def row_progress(description: str, total: int | None, info: str = "rows") -> Iterator[Callable[[int], None]]:
    """A progress bar counting rows; yields the function that advances it by n rows."""
    with progress_bar() as progress:
        task = progress.add_task(description, total=total, info=info)
        yield lambda rows: progress.advance(task, rows)


def silence_library_logs() -> None:
    """Hide transformers' load reports and download bars; rs reports what matters itself."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
