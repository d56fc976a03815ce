"""Ctrl-C and `kill` (SIGTERM) during long work: training holds them until a step is complete
(`InterruptGuard`); prediction stops at once and ignores further ones while it cleans up (`stopping_once`)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from review_sentiment.reporting import SILENT, Reporter

SIGNALS = ("SIGINT", "SIGTERM")


@contextmanager
def signals_handled_by(handler: Callable) -> Iterator[None]:
    """Route SIGINT and SIGTERM to `handler` for the block, then restore the previous handlers. Only on the main
    thread, where signals arrive; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            # None: a handler installed outside Python, which cannot be put back; use Python's default.
            default = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
            signal.signal(number, old if old is not None else default)


@contextmanager
def stopping_once() -> Iterator[None]:
    """Ctrl-C (or SIGTERM) stops the run at once; further ones are ignored while it cleans up, so a second
    Ctrl-C cannot cut the cleanup short (with the prefetch thread inside kiwipiepy, that can abort the process)."""

    def stop(number, frame):
        for name in SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        raise KeyboardInterrupt

    with signals_handled_by(stop):
        yield


# A launcher that passes a Ctrl-C on to processes the terminal also sent it to delivers one press twice,
# milliseconds apart (torchrun starts its processes in a session of their own, so there it arrives once). Within
# this many seconds a second signal is the same Ctrl-C.
SAME_SIGNAL_SECONDS = 2.0


class InterruptGuard:
    """Holds Ctrl-C (and `kill`, SIGTERM) back while a training step or its bookkeeping runs, so a checkpoint
    is never taken of a half-updated state: the first signal stops the run once the step is complete, a second
    one stops it at once.

    `agreed` (the processes of a distributed run): a signal is held wherever it comes, and `requested` tells the
    loop, which stops every process at the same step (`TrainingLoop` asks them at every event); a process that
    stopped alone would leave the others waiting for it. A second signal, seconds later, stops at once
    (`forced`), without a checkpoint."""

    def __init__(self, reporter: Reporter = SILENT, *, agreed: bool = False):
        self.reporter = reporter
        self.agreed = agreed
        self.holding = False
        self.requested = False
        self.requested_at = 0.0
        self.forced = False

    def installed(self):
        """Install the signal handlers for the block (only on the main thread, where signals arrive)."""
        return signals_handled_by(self._handle)

    def _handle(self, signum, frame) -> None:
        if (self.holding or self.agreed) and not self.requested:
            self.requested, self.requested_at = True, time.monotonic()
            self.reporter.message("Stopping after this step to save a checkpoint (Ctrl-C again stops at once).")
            return
        if self.agreed and time.monotonic() - self.requested_at < SAME_SIGNAL_SECONDS:
            return
        self.forced = True
        raise KeyboardInterrupt

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a signal back until the block ends, then raise KeyboardInterrupt if one came (`agreed`: the loop
        decides when)."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.requested and not self.agreed:
            raise KeyboardInterrupt
