"""A time budget for work a user's input can make unbounded (a regular expression, a template loop).

"Never a hang" has to hold for input nobody tuned for: a parameter pattern that backtracks
exponentially, or a template that loops a billion times. The budget uses SIGALRM, which both
the regex engine and the interpreter honour mid-computation. Where it is unavailable (another
thread, Windows) the work runs unbounded, as it would without this module.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


class TimeLimitExceeded(Exception):
    """The budget ran out; the caller turns it into a located problem."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, expire)
    remaining, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, remaining, interval)


class _Budget:
    """One item's budget inside `time_limits`: entering arms the timer, leaving disarms it (a system call each)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)


@contextlib.contextmanager
def time_limits(seconds: float) -> Iterator[contextlib.AbstractContextManager[None]]:
    """time_limit for many items in a row (the templates of an environment): `with limits:` around each gives it
    `seconds` of its own. The handler is installed once, so an item costs two system calls instead of the
    handler swaps that make time_limit cost tens of microseconds."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield contextlib.nullcontext()
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, expire)
    remaining, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield _Budget(seconds)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, remaining, interval)
