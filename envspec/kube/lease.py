"""One run at a time per environment instance: a `coordination.k8s.io/v1` Lease.

Without a lock an apply racing a destroy could exit 0 from a snapshot taken
before destroy removed everything, or re-create the preview and its database
after destroy had reported success. So apply, destroy and gc (which destroys)
hold the instance's Lease while they write:

* the Lease `envspec-lock-<instance>` lives in the `default` namespace, which
  every cluster has and no destroy deletes (the instance's own namespace
  cannot hold it: destroy deletes that, and a first apply has not created it);
* `holderIdentity` names the command, user, host and process; the holder
  renews `renewTime` every third of `leaseDurationSeconds` from a background
  thread, and clears `holderIdentity` when it exits (destroy deletes the
  Lease once the instance is gone);
* every change is a create (POST) or a replace with the last seen
  resourceVersion as precondition, so two runs can never both win;
* a Lease not renewed within its duration belongs to a run that died; it is
  taken over (`leaseTransitions` + 1) and the takeover is reported;
* a run that finds the Lease held waits up to its lock timeout, then fails
  with exit 3 naming the holder (the instance is busy: nothing about the
  input is wrong, and re-running later succeeds).

The resourceVersion also makes the Lease a sequence lock for readers: a run
that read the Lease free, took its snapshot, and reads it again unchanged
knows no writer ran in between. apply uses that to keep a re-apply with
nothing to change free of writes (see `envspec.kube.apply`).
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Iterator
from contextlib import contextmanager

from envspec.errors import OperationError
from envspec.kube.inventory import parse_time

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

API_VERSION = "coordination.k8s.io/v1"
LEASE_NAMESPACE = "default"
DEFAULT_DURATION = 60  # seconds a holder may go without renewing before others may take over
DEFAULT_LOCK_TIMEOUT = 120.0  # seconds a run waits for another holder: longer than DEFAULT_DURATION,
# so the lease of a run that was killed is taken over within the wait


def lease_name(instance: str) -> str:
    return f"envspec-lock-{instance}"


def _micro_time(moment: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity(action: str) -> str:
    """Who holds the lease, readable in the message another run prints: command, user@host, pid, a nonce."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (containers): the host and pid still say who
        user = "unknown"
    run = os.environ.get("GITHUB_RUN_ID")
    where = f" (GitHub run {run})" if run else ""
    return f"envspec {action} by {user}@{socket.gethostname()} pid {os.getpid()}{where} [{uuid.uuid4().hex[:8]}]"


@dataclass
class LeaseSettings:
    timeout: float = DEFAULT_LOCK_TIMEOUT  # how long to wait for another holder
    duration: int = DEFAULT_DURATION
    interval: float = 1.0  # poll interval while waiting
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    renew: bool = True  # renew from a background thread while held


class LeaseBusy(OperationError):
    """Another run held the instance's lease for the whole lock timeout."""


class LeaseLost(OperationError):
    """This run's lease was taken over (it could not renew in time); it stops before writing more."""


@dataclass(frozen=True)
class Observed:
    """The Lease as read: None when absent."""

    obj: dict[str, Any] | None

    @property
    def resource_version(self) -> str | None:
        return None if self.obj is None else str(self.obj["metadata"].get("resourceVersion"))

    @property
    def holder(self) -> str:
        return "" if self.obj is None else str((self.obj.get("spec") or {}).get("holderIdentity") or "")

    def expires(self) -> datetime | None:
        spec = (self.obj or {}).get("spec") or {}
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        if renewed is None:
            return None
        return renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or DEFAULT_DURATION))

    def free(self, now: datetime) -> bool:
        """Nobody holds it: absent, released, or expired."""
        if not self.holder:
            return True
        expires = self.expires()
        return expires is None or now >= expires


class InstanceLease:
    """The lease of one instance, held by this process for one command."""

    def __init__(
        self,
        kube: "Kube",
        instance: str,
        *,
        action: str,
        settings: LeaseSettings | None = None,
        report: Callable[[str], None] = lambda line: None,
        identity: str | None = None,
    ) -> None:
        self.kube, self.instance, self.action = kube, instance, action
        self.settings = settings or LeaseSettings()
        self.report = report
        self.identity = identity or default_identity(action)
        self.name = lease_name(instance)
        self._current: dict[str, Any] | None = None  # the Lease as we last wrote it while holding
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None
        self._delete_on_release = False

    # --- reading -------------------------------------------------------------------

    def observe(self) -> Observed:
        return Observed(self.kube.get(API_VERSION, "Lease", self.name, LEASE_NAMESPACE))

    def unchanged_since(self, seen: Observed) -> bool:
        """True when the Lease is exactly as `seen` (free): no run wrote anything in between."""
        again = self.observe()
        return again.resource_version == seen.resource_version and again.free(self.settings.now())

    # --- acquiring -----------------------------------------------------------------

    def _body(self, seen: Observed, now: datetime) -> dict[str, Any]:
        old = (seen.obj or {}).get("spec") or {}
        transitions = int(old.get("leaseTransitions") or 0) + (1 if seen.obj is not None else 0)
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": LEASE_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "envspec", "envspec.dev/lock-for": self.instance[:63]},
        }
        if seen.obj is not None:
            meta["resourceVersion"] = seen.resource_version
        return {
            "apiVersion": API_VERSION,
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.settings.duration),
                "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    def _try_take(self, seen: Observed) -> bool:
        """One attempt to take a free Lease; False when another run got there first."""
        from envspec.kube.client import KubeApiError

        now = self.settings.now()
        body = self._body(seen, now)
        try:
            written = self.kube.create(body) if seen.obj is None else self.kube.replace(body)
        except KubeApiError as exc:
            if exc.status not in (404, 409):
                raise
            again = self.observe()  # a retried request may have succeeded before its answer was lost
            if again.holder != self.identity:
                return False
            written = again.obj or body
        if seen.holder and seen.holder != self.identity:
            expired = seen.expires()
            when = f" (expired {_micro_time(expired)})" if expired else ""
            self.report(f"took over the stale lease of {self.instance} held by {seen.holder}{when}")
        self._current = written
        return True

    def acquire(self, seen: Observed | None = None) -> bool:
        """Take the Lease, waiting up to the lock timeout; True when taken straight from `seen`.

        True means nobody wrote the Lease since `seen` was read, so a snapshot taken after
        reading `seen` is still current; False means the caller must read its state again.
        """
        seen = seen or self.observe()
        start = self.settings.clock()
        # An absent Lease proves nothing: a whole destroy may have taken it and deleted it since.
        fresh = seen.obj is not None
        announced = False
        while True:
            if seen.free(self.settings.now()) and self._try_take(seen):
                self._start_renewing()
                return fresh
            fresh = False
            seen = self.observe()
            if seen.free(self.settings.now()):
                continue
            waited = self.settings.clock() - start
            if waited >= self.settings.timeout:
                raise LeaseBusy(self._busy_message(seen, waited))
            if not announced:
                self.report(f"waiting for the lease of {self.instance}, held by {seen.holder}")
                announced = True
            self.settings.sleep(min(self.settings.interval, max(0.0, self.settings.timeout - waited)))

    def _busy_message(self, seen: Observed, waited: float) -> str:
        expires = seen.expires()
        until = f", lease valid until {_micro_time(expires)}" if expires else ""
        return (
            f"{self.instance} is locked by {seen.holder}{until} (Lease {LEASE_NAMESPACE}/{self.name}); "
            f"gave up after waiting {waited:.0f}s. Re-run when it has finished, or raise --lock-timeout"
        )

    # --- holding -------------------------------------------------------------------

    def _start_renewing(self) -> None:
        if not self.settings.renew:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.instance}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        period = max(0.05, self.settings.duration / 3)
        while not self._stop.wait(period):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - a failed renewal is retried; expiry is checked in renew()
                if isinstance(exc, LeaseLost):
                    return
                self.report(f"could not renew the lease of {self.instance}: {exc}")

    def renew(self) -> None:
        """Push renewTime forward; marks the lease lost when another run took it over."""
        from envspec.kube.client import KubeApiError

        with self._lock:
            if self._current is None or self._lost:
                return
            body = {k: v for k, v in self._current.items() if k != "status"}
            body["spec"] = {**(body.get("spec") or {}), "renewTime": _micro_time(self.settings.now())}
            try:
                self._current = self.kube.replace(body)
            except KubeApiError as exc:
                if exc.status not in (404, 409):
                    raise
                again = self.observe()
                if again.holder == self.identity and again.obj is not None:
                    self._current = again.obj
                    return
                self._lost = again.holder or "nobody (the Lease was deleted)"
                raise LeaseLost(self._lost_message()) from None

    def _lost_message(self) -> str:
        return (
            f"lost the lease of {self.instance} to {self._lost}; stopped before writing more. "
            "Re-run once the other run has finished"
        )

    def check(self) -> None:
        """Raise if the lease was lost (called between stages, before further writes)."""
        if self._lost:
            raise LeaseLost(self._lost_message())

    def _stop_renewing(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None

    def release(self, *, delete: bool = False) -> None:
        """Give the Lease up: clear the holder (or delete it, when the instance is gone). Never raises."""
        self._stop_renewing()
        with self._lock:
            current, self._current = self._current, None
            if current is None or self._lost:
                return
            try:
                if delete:
                    self.kube.delete(API_VERSION, "Lease", self.name, LEASE_NAMESPACE)
                    return
                body = {k: v for k, v in current.items() if k != "status"}
                spec = dict(body.get("spec") or {})
                for key in ("holderIdentity", "acquireTime", "renewTime"):
                    spec.pop(key, None)
                body["spec"] = spec
                self.kube.replace(body)
            except Exception as exc:  # noqa: BLE001 - the lease then expires on its own
                self.report(f"could not release the lease of {self.instance} ({exc}); it expires by itself")

    @contextmanager
    def held(self, seen: Observed | None = None) -> Iterator[bool]:
        """Hold the Lease for a block (yields whether `seen` was still current); released on any exit."""
        fresh = self.acquire(seen)
        previous = _terminate_as_interrupt()
        try:
            yield fresh
        finally:
            _restore(previous)
            self.release(delete=self._delete_on_release)

    def delete_on_release(self) -> None:
        """The instance is gone: delete the Lease instead of clearing it, so nothing is left."""
        self._delete_on_release = True


def _terminate_as_interrupt() -> Any:
    """While a lease is held, SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so the lease is released."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # pragma: no cover - not in the main thread of the interpreter
        return None


def _restore(previous: Any) -> None:
    if previous is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        signal.signal(signal.SIGTERM, previous)
    except (ValueError, OSError):  # pragma: no cover
        pass
