import os
import signal
import threading

import pytest

from review_sentiment.interrupts import InterruptGuard, signals_handled_by, stopping_once
from tests.conftest import RecordingReporter


def test_interrupt_guard_holds_the_first_signal_until_the_step_ends():
    reporter, before = RecordingReporter(), signal.getsignal(signal.SIGINT)
    guard = InterruptGuard(reporter)
    completed = False
    with pytest.raises(KeyboardInterrupt), guard.installed():
        with guard.hold():
            os.kill(os.getpid(), signal.SIGINT)
            completed = True
    assert completed and reporter.said("Stopping after this step") and signal.getsignal(signal.SIGINT) is before


def test_stopping_once_ignores_further_signals_and_restores_the_handlers_after():
    before = signal.getsignal(signal.SIGINT)
    with stopping_once():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        during_cleanup = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # ignored: the cleanup goes on
    assert during_cleanup == (signal.SIG_IGN, signal.SIG_IGN)
    assert signal.getsignal(signal.SIGINT) is before


def test_signal_handlers_are_left_alone_off_the_main_thread():
    seen = []

    def elsewhere():
        with signals_handled_by(lambda *_: None):
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen == [before]


def test_an_agreed_guard_holds_signals_everywhere_and_takes_a_forwarded_one_for_the_same(monkeypatch):
    """In a distributed run a signal never stops one process alone: the loop asks all of them (`requested`);
    a launcher's copy of the terminal's Ctrl-C, milliseconds later, is the same one; a second, seconds later,
    stops at once."""
    import review_sentiment.interrupts as interrupts

    now = [100.0]
    monkeypatch.setattr(interrupts.time, "monotonic", lambda: now[0])
    guard = InterruptGuard(RecordingReporter(), agreed=True)
    with guard.installed():
        os.kill(os.getpid(), signal.SIGINT)  # outside any step: held all the same
        with guard.hold():
            now[0] += 0.01
            os.kill(os.getpid(), signal.SIGINT)  # passed on by the launcher
        assert guard.requested and not guard.forced  # hold() leaves the decision to the loop
        now[0] += 5
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert guard.forced
