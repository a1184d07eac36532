"""Retrying transient failures: one policy for every remote API envspec talks to.

CI runs against managed control planes and cloud APIs that now and then answer
429 or 5xx, or drop a connection. Failing a whole deploy on one such blip made
people re-run jobs by hand, so calls go through `RetryPolicy.call`: exponential
backoff with full jitter, a server's Retry-After honoured (seconds or an HTTP
date, capped), everything else passed straight up. What counts as transient
and where a hint lives differ per client, so both are parameters; the sleep
and the random source are injectable so tests run in milliseconds.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Callable, TypeVar

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now())


def retry_after_from_headers(exc: BaseException) -> float | None:
    """The Retry-After an exception's response carried (any object with a `headers` mapping)."""
    headers: Any = getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    return parse_retry_after(value)


def is_transient_status(exc: BaseException) -> bool:
    """Connection errors, timeouts, 429 and 5xx; a client-neutral default."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    status = status_of(exc)
    return status is not None and status in TRANSIENT_STATUSES


def backoff(attempt: int, *, base_delay: float, max_delay: float, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(max_delay, base_delay * 2**attempt))."""
    return min(max_delay, base_delay * (2**attempt)) * rand()


@dataclass
class RetryPolicy:
    attempts: int = 3  # total tries, including the first
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a server may ask for more; we won't block a deploy longer per try
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random
    transient: Callable[[BaseException], bool] = is_transient_status
    hint: Callable[[BaseException], float | None] = retry_after_from_headers
    retried: int = field(default=0, init=False)  # how many retries happened (for reports and tests)

    def delay_for(self, attempt: int, exc: BaseException) -> float:
        """Jittered backoff, but never shorter than a Retry-After the server asked for (capped)."""
        delay = backoff(attempt, base_delay=self.base_delay, max_delay=self.max_delay, rand=self.random)
        hinted = self.hint(exc)
        if hinted is not None:
            return min(self.max_retry_after, max(hinted, delay))
        return delay

    def call(self, func: Callable[[], T]) -> T:
        for attempt in range(self.attempts):
            try:
                return func()
            except Exception as exc:  # noqa: BLE001 - re-raised unless transient
                if attempt + 1 >= self.attempts or not self.transient(exc):
                    raise
                self.retried += 1
                self.sleep(self.delay_for(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover
