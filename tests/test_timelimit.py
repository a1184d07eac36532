"""Time budgets: `time_limits` gives each item of a series its own budget, and leaves the process as it found it."""

from __future__ import annotations

import signal
import time

import pytest

from envspec.timelimit import TimeLimitExceeded, time_limit, time_limits


def test_each_item_has_its_own_budget() -> None:
    with time_limits(0.3) as budget:
        for _ in range(3):  # 0.6 s in all, 0.2 s each
            with budget:
                time.sleep(0.2)


def test_an_item_over_its_budget_is_stopped_and_the_next_gets_a_fresh_one() -> None:
    with time_limits(0.2) as budget:
        start = time.monotonic()
        with pytest.raises(TimeLimitExceeded):
            with budget:
                time.sleep(5)
        assert time.monotonic() - start < 2
        with budget:
            time.sleep(0.1)
        time.sleep(0.3)  # between items no budget runs


def test_the_handler_and_an_outer_timer_are_restored() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with time_limits(1.0) as budget:
        with budget:
            pass
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

    with pytest.raises(TimeLimitExceeded):
        with time_limit(0.3):
            with time_limits(5.0) as budget:
                with budget:
                    pass
            time.sleep(5)  # the outer budget runs again once the series is done
