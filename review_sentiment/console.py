"""Messages for people go to stderr, results a user may redirect or pipe to stdout; progress bars only when
stderr is a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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

from review_sentiment.reporting import ProgressTask, Reporter, speed_text

console = Console(stderr=True, highlight=False, soft_wrap=True)  # messages, warnings, progress
results = Console(highlight=False, soft_wrap=True)  # stdout: `rs info`, `rs models`, --json, --version


def print_json(data: object) -> None:
    """`data` as indented JSON on stdout, Korean kept readable (no \\uXXXX escapes)."""
    import json
    import sys

    if results.quiet:
        return
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


class RateColumn(ProgressColumn):
    """Items per second since the bar started (rows/s, steps/s): the same measure as the rate a command's
    summary prints, so the two agree at the end (rich's own speed is over the last half minute only). A task
    added with the field `resumed_from=N` (a resumed run) counts only what it did itself."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        done = task.completed - task.fields.get("resumed_from", 0)
        if not elapsed or elapsed < 0.5 or done <= 0:
            return Text("")
        return Text(f"{speed_text(done / elapsed)}/s")


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
def row_progress_stages(
    descriptions: list[str], total: int | None, info: str = "rows"
) -> Iterator[tuple[Callable[[int], None], ...]]:
    """One bar per stage of a pipeline (Normalizing, then Scoring), each counting rows as that stage finishes
    them; yields their advance functions in order. Stages run in different threads, so each moves on its own."""
    with progress_bar() as progress:
        tasks = [progress.add_task(description, total=total, info=info) for description in descriptions]
        yield tuple((lambda rows, task=task: progress.advance(task, rows)) for task in tasks)


class _RichTask(ProgressTask):
    def __init__(self, progress: Progress, task: int):
        self._progress, self._task = progress, task

    def advance(self, amount: int = 1, info: str | None = None) -> None:
        fields = {} if info is None else {"info": info}
        self._progress.update(self._task, advance=amount, **fields)

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)


class ConsoleReporter(Reporter):
    """What the CLI shows: messages and warnings on stderr (rich markup allowed), progress bars on a terminal."""

    def message(self, text: str) -> None:
        console.print(text)

    def warning(self, text: str) -> None:
        console.print(f"[yellow]Warning:[/] {text}")

    @contextmanager
    def progress(
        self, description: str, total: int | None, *, completed: int = 0, info: str = ""
    ) -> Iterator[ProgressTask]:
        with progress_bar() as bar:
            # `resumed_from`, not add_task's `start` (a bool: whether the clock runs), which a count would stop at 0
            task = bar.add_task(description, total=total, completed=completed, info=info, resumed_from=completed)
            yield _RichTask(bar, task)

    @contextmanager
    def stages(
        self, descriptions: Sequence[str], total: int | None, info: str = "rows"
    ) -> Iterator[tuple[Callable[[int], None], ...]]:
        with row_progress_stages(list(descriptions), total, info) as advances:
            yield advances
