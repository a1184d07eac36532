"""Waiting for applied objects to become ready, and saying early why they won't.

The seed project's rollouts hung for ten minutes on a ResourceQuota rejection
that the cluster had reported in the first second. So each poll, besides the
readiness rules kubectl uses (`rollout status`, Job conditions, Gateway API and
cert-manager conditions, CRD Established), looks at what the cluster says is
going wrong for objects that are still pending: FailedCreate events (quota),
pods stuck in ImagePullBackOff/ErrImagePull/CrashLoopBackOff, failed Jobs with
the tail of their pod log. Any of those ends the wait at once with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from envspec.errors import OperationError
from envspec.objects import name_of, namespace_of, object_id

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

State = Literal["ready", "pending", "failed"]

WAITED_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "Job", "Gateway", "HTTPRoute", "Certificate", "CustomResourceDefinition"}
)
FATAL_WAITING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
LOG_TAIL_LINES = 20


@dataclass
class Readiness:
    id: str
    state: State
    detail: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.state:<7} {self.id} ({self.seconds:.1f}s){detail}"


def needs_wait(obj: dict[str, Any]) -> bool:
    return obj.get("kind") in WAITED_KINDS


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def _is_true(status: dict[str, Any], type_: str) -> bool:
    cond = _condition(status, type_)
    return bool(cond) and cond.get("status") == "True"


def _generation_observed(live: dict[str, Any]) -> bool:
    generation = live.get("metadata", {}).get("generation")
    observed = (live.get("status") or {}).get("observedGeneration")
    return generation is None or (observed is not None and observed >= generation)


def check_deployment(live: dict[str, Any]) -> tuple[State, str]:
    status = live.get("status") or {}
    want = (live.get("spec") or {}).get("replicas", 1)
    progressing = _condition(status, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return "failed", f"rollout exceeded its progress deadline: {progressing.get('message', '')}".strip()
    failure = _condition(status, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        return "failed", f"{failure.get('reason', 'ReplicaFailure')}: {failure.get('message', '')}"
    if not _generation_observed(live):
        return "pending", "waiting for the controller to observe the new generation"
    updated = status.get("updatedReplicas", 0)
    if updated < want:
        return "pending", f"{updated} of {want} replicas updated"
    if status.get("replicas", 0) > updated:
        return "pending", f"{status.get('replicas', 0) - updated} old replicas pending termination"
    available = status.get("availableReplicas", 0)
    if available < updated:
        return "pending", f"{available} of {updated} updated replicas available"
    return "ready", f"{available}/{want} available"


def check_statefulset(live: dict[str, Any]) -> tuple[State, str]:
    status = live.get("status") or {}
    want = (live.get("spec") or {}).get("replicas", 1)
    if not _generation_observed(live):
        return "pending", "waiting for the controller to observe the new generation"
    ready = status.get("readyReplicas", 0)
    if ready < want:
        return "pending", f"{ready} of {want} replicas ready"
    updated = status.get("updatedReplicas")
    if updated is not None and updated < want:
        return "pending", f"{updated} of {want} replicas updated"
    return "ready", f"{ready}/{want} ready"


def check_daemonset(live: dict[str, Any]) -> tuple[State, str]:
    status = live.get("status") or {}
    if not _generation_observed(live):
        return "pending", "waiting for the controller to observe the new generation"
    want = status.get("desiredNumberScheduled", 0)
    ready = status.get("numberReady", 0)
    return ("ready" if ready >= want else "pending"), f"{ready} of {want} pods ready"


def check_job(live: dict[str, Any]) -> tuple[State, str]:
    status = live.get("status") or {}
    failed = _condition(status, "Failed")
    if failed and failed.get("status") == "True":
        return "failed", f"Job failed ({failed.get('reason', 'Failed')}): {failed.get('message', '')}".strip()
    if _is_true(status, "Complete") or status.get("succeeded", 0) >= (live.get("spec") or {}).get("completions", 1):
        return "ready", "completed"
    return "pending", f"{status.get('active', 0)} active, {status.get('failed', 0)} failed"


def _conditions_ready(live: dict[str, Any], types: tuple[str, ...]) -> tuple[State, str]:
    status = live.get("status") or {}
    for type_ in types:
        cond = _condition(status, type_)
        if not cond or cond.get("status") != "True":
            why = f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ") if cond else "no status yet"
            return "pending", f"{type_} is not True ({why})"
    return "ready", ", ".join(types)


def check_httproute(live: dict[str, Any]) -> tuple[State, str]:
    parents = (live.get("status") or {}).get("parents") or []
    if not parents:
        return "pending", "no parent Gateway has accepted the route yet"
    for parent in parents:
        ref = (parent.get("parentRef") or {}).get("name", "?")
        for type_ in ("Accepted", "ResolvedRefs"):
            cond = _condition(parent, type_)
            if cond is not None and cond.get("status") != "True":
                return "pending", f"parent {ref}: {type_} is {cond.get('status')} ({cond.get('reason', '')})"
        if not _is_true(parent, "Accepted"):
            return "pending", f"parent {ref} has not accepted the route"
    return "ready", "accepted by " + ", ".join((p.get("parentRef") or {}).get("name", "?") for p in parents)


CHECKS: dict[str, Callable[[dict[str, Any]], tuple[State, str]]] = {
    "Deployment": check_deployment,
    "StatefulSet": check_statefulset,
    "DaemonSet": check_daemonset,
    "Job": check_job,
    "Gateway": lambda live: _conditions_ready(live, ("Accepted", "Programmed")),
    "HTTPRoute": check_httproute,
    "Certificate": lambda live: _conditions_ready(live, ("Ready",)),
    "CustomResourceDefinition": lambda live: _conditions_ready(live, ("Established",)),
}


def check(live: dict[str, Any]) -> tuple[State, str]:
    rule = CHECKS.get(live.get("kind", ""))
    return rule(live) if rule else ("ready", "")


# --- early failure diagnostics ---------------------------------------------------------


def _owned_by(pod: dict[str, Any], obj: dict[str, Any]) -> bool:
    name, kind = name_of(obj), obj["kind"]
    labels = pod.get("metadata", {}).get("labels") or {}
    if kind == "Job" and name in (labels.get("job-name"), labels.get("batch.kubernetes.io/job-name")):
        return True
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("name") == name:
            return True
        if kind == "Deployment" and ref.get("kind") == "ReplicaSet" and str(ref.get("name", "")).startswith(name + "-"):
            return True
    match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def _event_is_about(event: dict[str, Any], obj: dict[str, Any]) -> bool:
    involved = event.get("involvedObject") or {}
    name = name_of(obj)
    if involved.get("kind") == obj["kind"] and involved.get("name") == name:
        return True
    # A Deployment's pods are created by its ReplicaSets, named <deployment>-<hash>.
    return (
        obj["kind"] == "Deployment"
        and involved.get("kind") == "ReplicaSet"
        and str(involved.get("name", "")).startswith(name + "-")
    )


class Diagnostics:
    """Events and pods of the namespaces of pending workloads, read once per poll."""

    def __init__(self, kube: "Kube") -> None:
        self.kube = kube
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._pods: dict[str, list[dict[str, Any]]] = {}

    def events(self, namespace: str) -> list[dict[str, Any]]:
        if namespace not in self._events:
            self._events[namespace] = self.kube.list("v1", "Event", namespace=namespace)
        return self._events[namespace]

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        if namespace not in self._pods:
            self._pods[namespace] = self.kube.list("v1", "Pod", namespace=namespace)
        return self._pods[namespace]

    def why_failing(self, obj: dict[str, Any]) -> str | None:
        """A reason the object will not become ready, or None if nothing says so yet."""
        ns = namespace_of(obj)
        if not ns or obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            return None
        for event in self.events(ns):
            if event.get("type") == "Warning" and event.get("reason") == "FailedCreate" and _event_is_about(event, obj):
                return f"FailedCreate: {event.get('message', '')}"
        for pod in self.pods(ns):
            if not _owned_by(pod, obj):
                continue
            status = pod.get("status") or {}
            for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
                waiting = (cs.get("state") or {}).get("waiting") or {}
                reason = waiting.get("reason")
                if reason in FATAL_WAITING_REASONS:
                    pod_name = name_of(pod)
                    text = f"pod {pod_name} container {cs.get('name')}: {reason}"
                    if waiting.get("message"):
                        text += f": {waiting['message']}"
                    if reason == "CrashLoopBackOff":
                        text += _log_tail(self.kube, ns, pod_name)
                    return text
        return None

    def job_log(self, job: dict[str, Any]) -> str:
        ns = namespace_of(job) or "default"
        pods = [p for p in self.pods(ns) if _owned_by(p, job)]
        if not pods:
            return ""
        pods.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "")
        return _log_tail(self.kube, ns, name_of(pods[-1]))


def _log_tail(kube: "Kube", namespace: str, pod: str) -> str:
    text = kube.pod_log(namespace, pod, tail_lines=LOG_TAIL_LINES).rstrip()
    if not text:
        return ""
    lines = text.splitlines()[-LOG_TAIL_LINES:]
    return f"\n  last {len(lines)} log lines of pod {pod}:\n" + "\n".join("    " + line for line in lines)


@dataclass
class WaitSettings:
    timeout: float = 300.0
    interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def wait_ready(
    kube: "Kube",
    objects: list[dict[str, Any]],
    *,
    settings: WaitSettings,
    deadline: float | None = None,
    report: Callable[[Readiness], None] = lambda r: None,
) -> list[Readiness]:
    """Poll until every object is ready; raise OperationError on the first failure or at the deadline."""
    start = settings.clock()
    deadline = deadline if deadline is not None else start + settings.timeout
    pending = [o for o in objects if needs_wait(o)]
    results: dict[str, Readiness] = {object_id(o): Readiness(object_id(o), "ready") for o in objects if not needs_wait(o)}
    last: dict[str, Readiness] = {}
    while True:
        diagnostics = Diagnostics(kube)
        still: list[dict[str, Any]] = []
        for obj in pending:
            oid = object_id(obj)
            live = kube.get(obj["apiVersion"], obj["kind"], name_of(obj), namespace_of(obj))
            elapsed = settings.clock() - start
            if live is None:
                state, detail = "pending", "not found"
            else:
                state, detail = check(live)
            if state == "pending":
                reason = diagnostics.why_failing(live or obj)
                if reason:
                    state, detail = "failed", reason
            if state == "failed" and obj["kind"] == "Job" and live is not None:
                detail += diagnostics.job_log(live)
            result = Readiness(oid, state, detail, elapsed)
            if state == "ready":
                results[oid] = result
                report(result)
            elif state == "failed":
                report(result)
                raise OperationError(f"{oid} failed: {detail}")
            else:
                last[oid] = result
                still.append(obj)
        pending = still
        if not pending:
            return [results[object_id(o)] for o in objects if object_id(o) in results]
        if settings.clock() >= deadline:
            waited = settings.clock() - start
            lines = [f"timed out after {waited:.0f}s waiting for {len(pending)} object(s):"]
            lines += [f"  {last[object_id(o)].id}: {last[object_id(o)].detail}" for o in pending]
            raise OperationError("\n".join(lines))
        settings.sleep(min(settings.interval, max(0.0, deadline - settings.clock())))
