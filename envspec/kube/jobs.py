"""Running the plan's Jobs in order, replacing changed ones, remembering finished ones.

Jobs are immutable once created, and their TTL controller deletes them after
they finish. Treating either as drift would re-run a database migration on
every apply, or fail it. So a Job is:

* left alone when the live one already matches (and waited on if still running);
* counted as done when it is gone but the ApplySet parent recorded that a Job
  with this exact spec hash completed;
* otherwise applied, and when the API says its template is immutable, deleted
  and created again.

Each is waited on before the next starts (database creation before migrations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from envspec.errors import OperationError
from envspec.objects import name_of, namespace_of, object_id, spec_hash
from envspec.kube.ssa import ImmutableFieldError, apply_object, needs_apply
from envspec.kube.wait import Readiness, WaitSettings, check, wait_ready

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube


def job_key(job: dict[str, Any]) -> str:
    return f"{namespace_of(job) or 'default'}/{name_of(job)}"


@dataclass
class JobOutcome:
    id: str
    action: str  # "unchanged", "done-earlier", "created", "replaced"


def _wait_gone(kube: "Kube", job: dict[str, Any], settings: WaitSettings, deadline: float) -> None:
    while kube.get(job["apiVersion"], "Job", name_of(job), namespace_of(job)) is not None:
        if settings.clock() >= deadline:
            raise OperationError(f"{object_id(job)}: the old Job was not deleted in time; cannot replace it")
        settings.sleep(settings.interval)


def run_job(
    kube: "Kube",
    job: dict[str, Any],
    live: dict[str, Any] | None,
    *,
    completed: dict[str, str],
    force: bool,
    settings: WaitSettings,
    deadline: float,
    report: Callable[[Readiness], None],
) -> JobOutcome:
    """Bring one Job to completion; updates `completed` with its spec hash when it finished."""
    key, digest, oid = job_key(job), spec_hash(job), object_id(job)
    if live is None and completed.get(key) == digest:
        return JobOutcome(oid, "done-earlier")
    action = "unchanged"
    if needs_apply(job, live):
        try:
            apply_object(kube, job, force=force)
            action = "created" if live is None else "updated"
        except ImmutableFieldError:
            kube.delete(job["apiVersion"], "Job", name_of(job), namespace_of(job), propagation="Foreground")
            _wait_gone(kube, job, settings, deadline)
            apply_object(kube, job, force=force)
            action = "replaced"
    if action == "unchanged" and live is not None and check(live)[0] == "ready":
        completed[key] = digest
        return JobOutcome(oid, action)
    wait_ready(kube, [job], settings=settings, deadline=deadline, report=report)
    completed[key] = digest
    return JobOutcome(oid, action)
