"""Retrying transient API failures.

A preview deploy runs from CI against a managed control plane that now and
then answers 429 or 5xx, or drops a connection. Failing the whole deploy on
one such blip made people re-run jobs by hand, so every request goes through
`RetryPolicy.call`: exponential backoff with full jitter, a server's
Retry-After honoured, and everything else (4xx, conflicts) passed straight up.
The sleep and the random source are injectable so tests run in milliseconds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """True for connection errors, timeouts, 429 and 5xx; False for anything the caller must handle."""
    import urllib3.exceptions

    if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
        return True
    status = _status_of(exc)
    if status is None:
        return False
    # ApiException(status=0) is how the client reports a transport failure it wrapped.
    return status == 0 or status in TRANSIENT_STATUSES


def retry_after_seconds(exc: BaseException) -> float | None:
    headers: Any = getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


@dataclass
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random
    retried: int = field(default=0, init=False)  # how many retries happened (for reports and tests)

    def delay_for(self, attempt: int, exc: BaseException) -> float:
        """Full-jitter backoff, but never shorter than a Retry-After the server asked for."""
        backoff = min(self.max_delay, self.base_delay * (2**attempt)) * self.random()
        hinted = retry_after_seconds(exc)
        if hinted is not None:
            return min(self.max_delay, max(hinted, backoff))
        return backoff

    def call(self, func: Callable[[], T]) -> T:
        for attempt in range(self.attempts):
            try:
                return func()
            except Exception as exc:  # noqa: BLE001 - re-raised unless transient
                if attempt + 1 >= self.attempts or not is_transient(exc):
                    raise
                self.retried += 1
                self.sleep(self.delay_for(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover
