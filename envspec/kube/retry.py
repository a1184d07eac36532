"""What counts as a transient Kubernetes API failure; the policy itself is `envspec.retry`.

Besides 429/5xx, the kubernetes client surfaces dropped connections as urllib3
errors or as an ApiException with status 0, so those count as transient too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from envspec.retry import RetryPolicy as _RetryPolicy
from envspec.retry import is_transient_status, retry_after_from_headers, status_of

__all__ = ["RetryPolicy", "is_transient", "retry_after_seconds"]

retry_after_seconds = retry_after_from_headers


def is_transient(exc: BaseException) -> bool:
    """True for connection errors, timeouts, 429 and 5xx; False for anything the caller must handle."""
    import urllib3.exceptions

    if isinstance(exc, urllib3.exceptions.HTTPError):
        return True
    # ApiException(status=0) is how the client reports a transport failure it wrapped.
    return status_of(exc) == 0 or is_transient_status(exc)


@dataclass
class RetryPolicy(_RetryPolicy):
    """`envspec.retry.RetryPolicy` with the Kubernetes client's notion of transient."""

    transient: Callable[[BaseException], bool] = is_transient
