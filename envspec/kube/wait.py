"""Waiting for applied objects to become ready, and saying early why they won't.

The seed project's rollouts hung for ten minutes on a ResourceQuota rejection
that the cluster had reported in the first second. So each poll, besides the
readiness rules kubectl uses (`rollout status`, Job conditions, Gateway API and
cert-manager conditions, CRD Established), looks at what the cluster says is
going wrong for objects that are still pending: FailedCreate events (quota),
pods stuck in ImagePullBackOff/ErrImagePull/CrashLoopBackOff, failed Jobs with
the tail of their pod log. Any of those ends the wait at once with the reason.

Those signals must be about *this* rollout, or a good apply fails on an old
hiccup: events older than the wait (minus a little clock skew) are ignored,
and a Deployment's ReplicaSets are found by owner UID and its current
revision (never by name prefix: `web-` is also the prefix of `web-static-...`),
so pods of an old ReplicaSet that is being replaced do not count.

Each round reads the objects still pending with one LIST per kind (by the
ApplySet's part-of label, in their namespace when they share one, else cluster
wide: as the inventory is read), not a GET per object: a hundred Deployments
cost one request a round, not a hundred. An object alone of its kind, or
without the label, is read with a GET.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Literal

from envspec.errors import OperationError
from envspec.kinds import TABLE, readiness_of
from envspec.kube.inventory import PART_OF_LABEL
from envspec.objects import name_of, namespace_of, object_id

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

State = Literal["ready", "pending", "failed"]

# The kinds waited on are those with a readiness rule in the table of kinds (envspec.kinds).
WAITED_KINDS = frozenset(row.kind for row in TABLE if row.readiness)
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
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


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


# Readiness rules by the name the table of kinds (envspec.kinds) gives each kind.
CHECKS: dict[str, Callable[[dict[str, Any]], tuple[State, str]]] = {
    "rollout": check_deployment,
    "statefulset": check_statefulset,
    "daemonset": check_daemonset,
    "job": check_job,
    "gateway": lambda live: _conditions_ready(live, ("Accepted", "Programmed")),
    "httproute": check_httproute,
    "certificate": lambda live: _conditions_ready(live, ("Ready",)),
    "established": lambda live: _conditions_ready(live, ("Established",)),
}


def check(live: dict[str, Any]) -> tuple[State, str]:
    name = readiness_of(str(live.get("kind", "")))
    rule = CHECKS.get(name) if name else None
    return rule(live) if rule else ("ready", "")


# --- early failure diagnostics ---------------------------------------------------------


def _uid(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("uid")


def _owner_refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return (obj.get("metadata") or {}).get("ownerReferences") or []


def _is_owned(child: dict[str, Any], owner: dict[str, Any]) -> bool:
    """`child` names `owner` as an owner: by UID when both carry one, else by kind and name."""
    uid = _uid(owner)
    for ref in _owner_refs(child):
        if ref.get("kind") != owner.get("kind"):
            continue
        if uid and ref.get("uid"):
            if ref["uid"] == uid:
                return True
        elif ref.get("name") == name_of(owner):
            return True
    return False


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    meta = dict(template.get("metadata") or {})
    meta["labels"] = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    return {**template, "metadata": meta}


def current_replicasets(deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ReplicaSets of the Deployment's current rollout: owned by its UID and of its current revision
    (or, when the revision is not recorded yet, with its pod template, as the controller decides)."""
    owned = [rs for rs in replicasets if _is_owned(rs, deployment)]
    revision = ((deployment.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    if revision:
        current = [
            rs for rs in owned
            if ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION) == revision
        ]
        if current:
            return current
    template = _without_hash((deployment.get("spec") or {}).get("template") or {})
    return [rs for rs in owned if _without_hash((rs.get("spec") or {}).get("template") or {}) == template]


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def event_time(event: dict[str, Any]) -> datetime | None:
    """When an event was last seen: series, lastTimestamp, eventTime or creation, whichever is latest."""
    candidates = [
        (event.get("series") or {}).get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ]
    times = [t for t in (_parse_time(c) for c in candidates) if t is not None]
    return max(times) if times else None


class Diagnostics:
    """Events, pods and ReplicaSets of the namespaces of pending workloads, read once per poll."""

    def __init__(self, kube: "Kube", *, since: datetime | None = None) -> None:
        self.kube = kube
        self.since = since  # events last seen before this are about an earlier attempt
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._pods: dict[str, list[dict[str, Any]]] = {}
        self._replicasets: dict[str, list[dict[str, Any]]] = {}

    def events(self, namespace: str) -> list[dict[str, Any]]:
        if namespace not in self._events:
            items = self.kube.list("v1", "Event", namespace=namespace)
            if self.since is not None:
                since = self.since
                items = [e for e in items if (event_time(e) or since) >= since]
            self._events[namespace] = items
        return self._events[namespace]

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        if namespace not in self._pods:
            self._pods[namespace] = self.kube.list("v1", "Pod", namespace=namespace)
        return self._pods[namespace]

    def replicasets(self, namespace: str) -> list[dict[str, Any]]:
        if namespace not in self._replicasets:
            self._replicasets[namespace] = self.kube.list("apps/v1", "ReplicaSet", namespace=namespace)
        return self._replicasets[namespace]

    def _pod_owners(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """The objects whose pods belong to `obj`'s current rollout (itself, or its current ReplicaSets)."""
        if obj["kind"] == "Deployment":
            if not _uid(obj):
                return []  # not created yet: it has no pods or ReplicaSets
            return current_replicasets(obj, self.replicasets(namespace_of(obj) or "default"))
        return [obj]

    def _owns_pod(self, owners: list[dict[str, Any]], obj: dict[str, Any], pod: dict[str, Any]) -> bool:
        if any(_is_owned(pod, owner) for owner in owners):
            return True
        if obj["kind"] == "Job":
            labels = (pod.get("metadata") or {}).get("labels") or {}
            uid = _uid(obj)
            pod_uid = labels.get("batch.kubernetes.io/controller-uid") or labels.get("controller-uid")
            if uid and pod_uid:
                return uid == pod_uid
            return name_of(obj) in (labels.get("job-name"), labels.get("batch.kubernetes.io/job-name"))
        return False

    def _event_about(self, owners: list[dict[str, Any]], obj: dict[str, Any], event: dict[str, Any]) -> bool:
        involved = event.get("involvedObject") or {}
        for target in [obj, *owners]:
            if involved.get("kind") != target.get("kind") or involved.get("name") != name_of(target):
                continue
            uid = _uid(target)
            if uid and involved.get("uid") and involved["uid"] != uid:
                continue  # an earlier object of the same name
            return True
        return False

    def why_failing(self, obj: dict[str, Any]) -> str | None:
        """A reason the object will not become ready, or None if nothing says so yet."""
        ns = namespace_of(obj)
        if not ns or obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            return None
        owners = self._pod_owners(obj)
        for event in self.events(ns):
            if event.get("type") == "Warning" and event.get("reason") == "FailedCreate" and self._event_about(
                owners, obj, event
            ):
                return f"FailedCreate: {event.get('message', '')}"
        for pod in self.pods(ns):
            if not self._owns_pod(owners, obj, pod):
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
        pods = [p for p in self.pods(ns) if self._owns_pod([job], job, p)]
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


def _part_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(PART_OF_LABEL)


def read_live(kube: "Kube", objects: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """The live version of each object (None: not found), by object id: one LIST per kind for
    the kinds of which two or more carry the same ApplySet label, a GET for the others."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for obj in objects:
        groups.setdefault((obj["apiVersion"], obj["kind"]), []).append(obj)
    out: dict[str, dict[str, Any] | None] = {}
    for (api_version, kind), members in groups.items():
        sets = {_part_of(o) for o in members}
        namespaces = {namespace_of(o) for o in members}
        namespaced = len(members) > 1 and kube.is_namespaced(api_version, kind)
        if len(members) < 2 or len(sets) != 1 or None in sets or (namespaced and None in namespaces):
            for obj in members:
                out[object_id(obj)] = kube.get(api_version, kind, name_of(obj), namespace_of(obj))
            continue

        def key(obj: dict[str, Any]) -> tuple[str, str]:
            return ((namespace_of(obj) or "") if namespaced else "", name_of(obj))

        # As the inventory lists its members: in their namespace when they share one, else cluster-wide.
        only = next(iter(namespaces)) if namespaced and len(namespaces) == 1 else None
        selector = f"{PART_OF_LABEL}={next(iter(sets))}"
        listed = {key(item): item for item in kube.list(api_version, kind, namespace=only, label_selector=selector)}
        for obj in members:
            out[object_id(obj)] = listed.get(key(obj))
    return out


@dataclass
class WaitSettings:
    timeout: float = 300.0
    interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # wall clock, to date events
    event_skew: float = 5.0  # seconds an event may predate the wait (clock skew, 1 s timestamp resolution)


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
    since = settings.now() - timedelta(seconds=settings.event_skew)
    deadline = deadline if deadline is not None else start + settings.timeout
    pending = [o for o in objects if needs_wait(o)]
    results: dict[str, Readiness] = {object_id(o): Readiness(object_id(o), "ready") for o in objects if not needs_wait(o)}
    last: dict[str, Readiness] = {}
    while True:
        diagnostics = Diagnostics(kube, since=since)
        still: list[dict[str, Any]] = []
        lives = read_live(kube, pending)
        for obj in pending:
            oid = object_id(obj)
            live = lives[oid]
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
