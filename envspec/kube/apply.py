"""`envspec apply`: staged server-side apply of a plan, then prune.

Objects go in the four stages of `envspec.kube.stages`, each waited on before
the next; Helm charts are installed right after stage 1, because charts such
as cert-manager (with Gateway API support) need the CRDs stage 1 brings from
`manifests:` when they start.

Before the first write the remote manifests are fetched, the ApplySet
inventory is read and the live members are listed once per kind; that single
listing decides what to patch (only objects whose managed fields differ), what
to prune, and whether a prune guard refuses. A re-apply with nothing to change
therefore sends no write at all (Helm releases already current are skipped
too).

Nothing is taken over that apply did not create (kpt's strict inventory
policy): a desired object that exists but is not a member of the instance's
ApplySet is looked up (one GET, skipped when its namespace does not exist
yet) and refused, all of them listed, before the first write -- unless
`--adopt`, and never when it belongs to another ApplySet. The cluster's own
namespaces (`envspec.system`) are refused before any request at all.
Namespaces apply creates are POSTed (so one created meanwhile by someone else
is refused, not taken) and recorded in the parent, which is what destroy
reads before it deletes a namespace.

Writes happen under the instance's Lease (`envspec.kube.lease`), taken after
the read-only checks: if another run wrote since the Lease was read, or there
was no Lease yet, everything is read again under it. A re-apply with nothing
to write does not take it; it reads the Lease before and after, and applies
again under it when another run wrote meanwhile.

Following the ApplySet KEP, the parent is written before any member: on a
first apply whose parent lives in a namespace the plan creates, that
namespace is created bare (no membership label, but annotated with the
ApplySet that created it) first, so an interruption never leaves a member no
parent records, and the next apply knows the namespace is its own.

Within a stage, the objects that differ are written concurrently, at most
`ApplyOptions.workers` (8) at a time: namespaces first and one at a time (each
is POSTed, see above), then CRDs, then everything else; the stage order, the
Jobs' order and the `after:` gates are kept. Every worker checks the Lease
before its write; the progress lines come in plan order whatever order the
writes finish in, and when writes fail, all of them are attempted and every
failure is reported before the stage ends (no later stage starts).

Everything apply prints goes through the `Redactor`, which knows every secret
value (from the environment, generated, or read from live Secrets): progress
lines carry pod log tails, and CI posts those to pull requests.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol

from envspec.errors import EnvspecError, OperationError, Problem, SpecError
from envspec.kube.helm import HelmTarget, Runner, _run, install_charts
from envspec.kube.inventory import (
    CREATED_BY_ANNOTATION,
    ApplySetRef,
    Inventory,
    Ownership,
    PrunePlan,
    check_ownership,
    inventory_current,
    write_inventory,
)
from envspec.kube.jobs import job_key, run_job
from envspec.kube.lease import InstanceLease, LeaseLost, LeaseSettings
from envspec.kube.observe import live_secret as _live_secret
from envspec.kube.observe import observe
from envspec.plan import DeployPlan
from envspec.kube.preflight import confirm_if_needed, preflight
from envspec.kube.remote import Fetch, default_cache_dir, download, remote_objects
from envspec.kube.secrets import Redactor, prepare_secrets
from envspec.kube.ssa import apply_object, needs_apply
from envspec.kube.stages import ROLLOUT_KINDS, STAGE_NAMES, STAGES, by_stage, desired_objects, stage_of
from envspec.system import SYSTEM_NAMESPACES, system_problems
from envspec.kube.wait import Readiness, WaitSettings, check, needs_wait, wait_ready
from envspec.objects import identity, name_of, namespace_of, object_id, spec_hash

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

__all__ = ["ApplyOptions", "ApplyResult", "RoutesReadyHook", "apply_plan", "desired_objects", "stage_of"]

# Concurrent writes within a stage: enough to hide the round trips of a few hundred objects,
# few enough not to look like a flood to the API server's priority and fairness.
APPLY_WORKERS = 8


class RoutesReadyHook(Protocol):
    """Called once after stage 4 is ready (the DigitalOcean DNS sync).

    `remaining` is what is left of the command's timeout; `report` scrubs secret values.
    """

    def __call__(self, *, remaining: float, report: Callable[[str], None]) -> None: ...


@dataclass
class ApplyOptions:
    force_conflicts: bool = False
    dangerous_prune: bool = False
    # Take over existing objects (and namespaces) that belong to no ApplySet; without it apply refuses.
    adopt: bool = False
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    yes: bool = False
    confirm: Callable[[str], bool] | None = None  # interactive prompt; None when there is no terminal
    target_description: str = ""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    wait: WaitSettings = field(default_factory=WaitSettings)
    helm: HelmTarget = field(default_factory=HelmTarget)
    helm_runner: Runner = _run
    check_helm: bool = True
    # Called once, after stage 4 (gateway and routes) is ready: the DigitalOcean DNS sync hook.
    after_routes_ready: RoutesReadyHook | None = None
    report: Callable[[str], None] = lambda line: None
    fetch: Fetch = download  # how `manifests:` URLs are read (tests pass a stand-in)
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    workers: int = APPLY_WORKERS  # writes in flight at once within a stage (1: one after the other)


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    skipped_prune: list[str] = field(default_factory=list)
    readiness: list[Readiness] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.replaced or self.pruned)


class _StageRunner:
    """Applies and waits on one stage at a time; keeps the tallies for the result."""

    def __init__(
        self,
        kube: "Kube",
        live: dict[tuple[str, str, str, str], dict[str, Any]],
        completed: dict[str, str],
        options: ApplyOptions,
        deadline: float,
        result: ApplyResult,
        *,
        after: Mapping[str, list[str]] | None = None,
        create_first: Callable[[dict[str, Any]], None] = lambda obj: None,
        before_write: Callable[[], None] = lambda: None,
    ) -> None:
        self.kube, self.live, self.completed, self.options = kube, live, completed, options
        self.deadline, self.result = deadline, result
        self.after = dict(after or {})  # workload id -> ids of the Jobs that must succeed before it rolls out
        self.create_first = create_first  # called before the first write of a new object (new namespaces)
        self.before_write = before_write  # called before every write, in the worker (the lease check)

    def _report_ready(self, readiness: Readiness) -> None:
        self.result.readiness.append(readiness)
        self.options.report(str(readiness))

    def _write(self, obj: dict[str, Any]) -> None:
        """One object's write; runs in a worker thread, so it touches no tally and prints nothing."""
        self.before_write()
        if self.live.get(identity(obj)) is None:
            self.create_first(obj)
        apply_object(self.kube, obj, force=self.options.force_conflicts)

    def apply_all(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Patch the objects whose live version differs; returns those that may need waiting on.

        Tallies and progress lines follow the order of `objects`; a failed write fails the whole
        call, after every other write was attempted, with every failure in the message.
        """
        waits: dict[str, bool] = {}
        changed: list[dict[str, Any]] = []
        for obj in objects:
            live = self.live.get(identity(obj))
            if needs_apply(obj, live):
                changed.append(obj)
                waits[object_id(obj)] = needs_wait(obj)
            else:
                self.result.unchanged.append(object_id(obj))
                waits[object_id(obj)] = needs_wait(obj) and live is not None and check(live)[0] != "ready"
        for group in _write_groups(changed):
            self._write_group(group)
        return [o for o in objects if waits[object_id(o)]]

    def _write_group(self, group: list[dict[str, Any]]) -> None:
        workers = 1 if group and group[0]["kind"] == "Namespace" else max(1, self.options.workers)
        errors: list[BaseException] = []
        for obj, error in _bounded(self._write, group, workers):
            if error is not None:
                errors.append(error)
                continue
            live = self.live.get(identity(obj))
            (self.result.created if live is None else self.result.updated).append(object_id(obj))
            self.options.report(f"{'created' if live is None else 'updated'} {object_id(obj)}")
        if errors:
            raise _combined(errors)

    def _gated(self, obj: dict[str, Any]) -> bool:
        return obj["kind"] in ROLLOUT_KINDS and bool(self.after.get(object_id(obj)))

    def _wait(self, objects: list[dict[str, Any]]) -> None:
        if objects:
            wait_ready(self.kube, objects, settings=self.options.wait, deadline=self.deadline, report=self._report_ready)

    def run(self, stage: int, objects: list[dict[str, Any]]) -> None:
        """One stage. A workload whose app declares `after: [jobs]` rolls out only once those Jobs
        succeeded; the other workloads (and Services) go first and, when some workload is held back,
        are ready before the Jobs start (a Job may need them, e.g. a database app)."""
        self.options.report(f"stage {stage}: {STAGE_NAMES[stage]} ({len(objects)} objects)")
        jobs = [o for o in objects if o["kind"] == "Job"]
        held = [o for o in objects if o["kind"] != "Job" and self._gated(o)]
        to_wait = self.apply_all([o for o in objects if o["kind"] != "Job" and not self._gated(o)])
        if stage == 1 and any(o["kind"] == "CustomResourceDefinition" for o in to_wait):
            self._wait(to_wait)
            self.kube.refresh_discovery()  # the new kinds must be discoverable for stage 4
            to_wait = []
        if jobs and held:
            self._wait(to_wait)
            to_wait = []
        done: set[str] = set()
        for job in jobs:
            self._run_job(job)
            done.add(object_id(job))
            ready = [o for o in held if set(self.after[object_id(o)]) <= done]
            held = [o for o in held if o not in ready]
            to_wait += self.apply_all(ready)
        to_wait += self.apply_all(held)  # gates that name no Job of this plan
        self._wait(to_wait)

    def _run_job(self, job: dict[str, Any]) -> None:
        self.before_write()  # a Job may run for minutes: the lease is checked before each one
        live = self.live.get(identity(job))
        outcome = run_job(
            self.kube,
            job,
            live,
            completed=self.completed,
            force=self.options.force_conflicts,
            settings=self.options.wait,
            deadline=self.deadline,
            report=self._report_ready,
        )
        bucket = {
            "created": self.result.created,
            "updated": self.result.updated,
            "replaced": self.result.replaced,
        }.get(outcome.action, self.result.unchanged)
        bucket.append(outcome.id)
        if outcome.action != "unchanged":
            self.options.report(f"{outcome.action} {outcome.id}")


def _write_groups(objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """What may be written together: namespaces (one at a time: each is POSTed first, and a
    refused one takes back what the parent recorded), then CRDs, then the rest, which may live in
    those namespaces or be of those kinds. Plan order is kept inside each group."""
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    rest = [o for o in objects if o["kind"] not in ("Namespace", "CustomResourceDefinition")]
    return [group for group in (namespaces, crds, rest) if group]


def _bounded(
    func: Callable[[dict[str, Any]], None], objects: list[dict[str, Any]], workers: int
) -> Iterator[tuple[dict[str, Any], BaseException | None]]:
    """`func` on each object, at most `workers` at once; yields (object, its error or None) in
    the objects' order, each as soon as it and all before it are done. On an interrupt the
    writes not yet started are cancelled and those in flight finish."""
    if workers <= 1 or len(objects) <= 1:
        for obj in objects:
            try:
                func(obj)
            except EnvspecError as exc:
                yield obj, exc
            else:
                yield obj, None
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(objects)), thread_name_prefix="envspec-apply") as pool:
        futures: list[Future[None]] = [pool.submit(func, obj) for obj in objects]
        try:
            for obj, future in zip(objects, futures):
                error = future.exception()
                if error is not None and not isinstance(error, EnvspecError):
                    raise error  # a bug, not a refusal: surface it as it is
                yield obj, error
        finally:
            for future in futures:
                future.cancel()


def _combined(errors: list[BaseException]) -> BaseException:
    """One error for a group's failed writes: a lost lease alone (every later write stopped on it),
    one failure as it is, several as one error listing every problem in plan order."""
    lost = [e for e in errors if isinstance(e, LeaseLost)]
    if lost:
        return lost[0]
    if len(errors) == 1:
        return errors[0]
    problems: list[Problem] = []
    for error in errors:
        for problem in getattr(error, "problems", None) or [Problem(str(error))]:
            if problem not in problems:
                problems.append(problem)
    spec_only = all(isinstance(e, SpecError) for e in errors)
    return SpecError(problems) if spec_only else OperationError(problems)


def _bare_namespace(name: str, plan: DeployPlan, set_id: str) -> dict[str, Any]:
    """A namespace as envspec creates it: by POST, so one that someone else made is never taken over.

    Bare (the plan's labels, no membership yet: the parent comes first), but naming the ApplySet that
    created it, so an apply interrupted before its parent recorded the creation knows on the next run
    that the namespace is its own.
    """
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(plan.labels), "annotations": {CREATED_BY_ANNOTATION: set_id}},
    }


@dataclass
class _Snapshot:
    """Everything apply read before its first write; it decides what apply writes."""

    desired: list[dict[str, Any]]
    remote: list[dict[str, Any]]
    current: Inventory
    widened: Inventory
    live: dict[tuple[str, str, str, str], dict[str, Any]]
    prune: PrunePlan
    ownership: Ownership


def _refuse_foreign(ownership: Ownership, ref: ApplySetRef, adopt: bool, plan: DeployPlan) -> None:
    """kpt's strict inventory policy: an existing object joins this ApplySet only with --adopt.

    One located line per object (the spec line that asks for it), then what to do about them.
    """
    refused = sorted(ownership.other_set) + ([] if adopt else sorted(ownership.unowned))
    if not refused:
        return
    located: list[Problem] = []
    for oid in refused:
        where, path = plan.sources.get(oid, (None, ""))
        owner = "another ApplySet" if oid in ownership.other_set else "no ApplySet"
        located.append(Problem(f"{oid} already exists and belongs to {owner}, not to {plan.instance}'s",
                               location=where, path=path))
    problems: list[str] = []
    if ownership.other_set:
        problems.append(
            "refusing to take over " + ", ".join(sorted(ownership.other_set)) + ": they belong to another "
            "ApplySet (another envspec instance, or kubectl --applyset); remove them from it first"
        )
    if ownership.unowned and not adopt:
        problems.append(
            "refusing to adopt " + ", ".join(sorted(ownership.unowned)) + ": they exist but are not members "
            f"of this instance's ApplySet (Secret/{ref.namespace}/{ref.name}), so envspec did not create them; "
            "pass --adopt to take them over (destroy then deletes adopted objects, never an adopted namespace)"
        )
    raise SpecError([*located, *(Problem(p) for p in problems)])


def _snapshot(
    kube: "Kube",
    plan: DeployPlan,
    options: ApplyOptions,
    ref: ApplySetRef,
    secrets: list[dict[str, Any]],
    remote: list[dict[str, Any]],
    redactor: Redactor,
) -> _Snapshot:
    """What diff reads too (`observe`), plus apply's ownership checks: never adopt unasked, refuse before any write."""
    ownership = Ownership()

    def admit(desired: list[dict[str, Any]], current: Inventory, live: dict[Any, dict[str, Any]]) -> set[str]:
        nonlocal ownership
        ownership = check_ownership(kube, desired, live, ref.id)
        _refuse_foreign(ownership, ref, options.adopt, plan)
        for found in ownership.found:  # adopted (--adopt): from now on compared with, and applied over, the live one
            live[identity(found)] = found
        if not current.exists:
            # A namespace our own interrupted first apply created before the parent could record it.
            for obj in live.values():
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                if obj["kind"] == "Namespace" and annotations.get(CREATED_BY_ANNOTATION) == ref.id:
                    current.created_namespaces.add(name_of(obj))
        # Recorded before the namespaces are created (by POST, which fails if someone beat us to it).
        return current.created_namespaces | ownership.absent_namespaces

    # The Secrets are completed read-only there (as diff does), so the no-op check compares what stage 2 applies.
    seen = observe(kube, plan, ref, secrets, remote, environ=options.environ, redactor=redactor, admit=admit,
                   dangerous_prune=options.dangerous_prune, protected_namespaces=plan.protected_namespaces)
    widened = seen.current.widen(seen.desired)
    widened.created_namespaces |= ownership.absent_namespaces
    return _Snapshot(seen.desired, remote, seen.current, widened, seen.live, seen.prune, ownership)


def _writes_nothing(snap: _Snapshot, plan: DeployPlan, options: ApplyOptions) -> bool:
    """True when applying `snap` sends no write at all (then it needs no lease, see `_apply`)."""
    if plan.helm or options.after_routes_ready is not None or snap.prune.delete or snap.ownership.absent_namespaces:
        return False
    completed = dict(snap.current.completed_jobs)
    for obj in snap.desired:
        live = snap.live.get(identity(obj))
        if obj["kind"] == "Job":
            if live is None and completed.get(job_key(obj)) == spec_hash(obj):
                continue
            if live is None or needs_apply(obj, live) or check(live)[0] != "ready":
                return False
            completed[job_key(obj)] = spec_hash(obj)
        elif needs_apply(obj, live):
            return False
    now = datetime.now(timezone.utc)
    final = _final_inventory(snap.widened, snap.desired, completed)
    return inventory_current(snap.current, snap.widened, plan.labels, now) and inventory_current(
        snap.current, final, plan.labels, now
    )


def _prune(kube: "Kube", prune: PrunePlan, result: ApplyResult, report: Callable[[str], None]) -> None:
    for obj in sorted(prune.delete, key=stage_of, reverse=True):
        kube.delete(obj["apiVersion"], obj["kind"], name_of(obj), namespace_of(obj))
        result.pruned.append(object_id(obj))
        report(f"pruned  {object_id(obj)}")
    for oid in prune.skipped:
        result.skipped_prune.append(oid)
        report(f"skipped {oid} (owned by another tool or ApplySet)")


def _final_inventory(current: Inventory, desired: list[dict[str, Any]], completed: dict[str, str]) -> Inventory:
    final = Inventory(current.ref, exists=current.exists, labels=current.labels).widen(desired)
    final.created_namespaces = set(current.created_namespaces)
    wanted_jobs = {job_key(o): spec_hash(o) for o in desired if o["kind"] == "Job"}
    final.completed_jobs = {k: v for k, v in completed.items() if wanted_jobs.get(k) == v}
    return final


def apply_plan(kube: "Kube", plan: DeployPlan, options: ApplyOptions) -> ApplyResult:
    """Apply `plan` to the cluster behind `kube`; raises SpecError/OperationError with scrubbed messages.

    Every line passed to `options.report` is scrubbed of secret values first.
    """
    redactor = Redactor()
    options = dataclasses.replace(options, report=redactor.wrap(options.report))
    try:
        return _apply(kube, plan, options, redactor)
    except EnvspecError as exc:
        raise redactor.scrub_error(exc) from None


def _apply(kube: "Kube", plan: DeployPlan, options: ApplyOptions, redactor: Redactor) -> ApplyResult:
    secrets, _ = preflight(plan, options.environ, check_helm=options.check_helm and bool(plan.helm), redactor=redactor)
    ref = ApplySetRef.for_instance(plan.instance, plan.applyset_namespace)
    _refuse_system(plan.objects, ref)
    confirm_if_needed(plan, yes=options.yes, confirm=options.confirm, target=options.target_description)
    deadline = options.wait.clock() + options.wait.timeout
    remote = remote_objects(plan.remote_manifests, plan.labels, fetch=options.fetch, cache_dir=options.cache_dir)
    _refuse_system([*remote, *secrets], ref)

    # Read first, write later: every refusal (here and in _snapshot) comes before any write.
    lease = InstanceLease(kube, plan.instance, action="apply", settings=options.lease, report=options.report)
    seen = lease.observe()
    snap = _snapshot(kube, plan, options, ref, secrets, remote, redactor)
    if seen.obj is not None and seen.free(options.lease.now()) and _writes_nothing(snap, plan, options):
        # Nothing to write: the Lease serves as a sequence lock. Unchanged before and after means no
        # other run wrote while this one read, so "nothing to change" is true, at the cost of no write.
        try:
            result = _execute(kube, plan, options, ref, snap, deadline, lease=None, redactor=redactor)
        except OperationError:
            if lease.unchanged_since(seen):
                raise
        else:
            if lease.unchanged_since(seen):
                return result
        options.report(f"another run took the lease of {plan.instance} meanwhile; applying again under the lease")
    with lease.held(seen) as still_current:
        if not still_current:
            snap = _snapshot(kube, plan, options, ref, secrets, remote, redactor)
        return _execute(kube, plan, options, ref, snap, deadline, lease=lease, redactor=redactor)


def _refuse_system(objects: list[dict[str, Any]], ref: ApplySetRef) -> None:
    """The built-in guard (`envspec.system`), again at apply time: a plan built by hand gets no further."""
    lines = system_problems(objects)
    if ref.namespace in SYSTEM_NAMESPACES:
        lines.append(f"Secret/{ref.namespace}/{ref.name}: the ApplySet parent would be written into {ref.namespace}")
    if lines:
        raise SpecError([Problem(f"refusing to apply {line}") for line in lines])


def _execute(
    kube: "Kube",
    plan: DeployPlan,
    options: ApplyOptions,
    ref: ApplySetRef,
    snap: _Snapshot,
    deadline: float,
    *,
    lease: InstanceLease | None,
    redactor: Redactor,
) -> ApplyResult:
    current, widened, desired = snap.current, snap.widened, snap.desired
    result = ApplyResult()
    completed = dict(current.completed_jobs)
    to_create = set(snap.ownership.absent_namespaces)
    parent_written = current.exists

    def create_first(obj: dict[str, Any]) -> None:
        """A namespace this apply creates is POSTed first: if someone made it since we looked, refuse."""
        from envspec.kube.client import KubeApiError

        name = name_of(obj)
        if obj["kind"] != "Namespace" or name not in to_create:
            return
        try:
            kube.create(_bare_namespace(name, plan, ref.id))
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            found = kube.get("v1", "Namespace", name)
            annotations = ((found or {}).get("metadata") or {}).get("annotations") or {}
            if annotations.get(CREATED_BY_ANNOTATION) == ref.id:  # a retried POST whose first answer was lost
                to_create.discard(name)
                return
            widened.created_namespaces.discard(name)
            if parent_written:  # it recorded the namespace as ours in advance: take that back first
                write_inventory(kube, widened, plan.labels, current=Inventory(ref))
            raise SpecError(
                f"refusing to adopt Namespace/{name}: someone else created it while this apply ran; "
                "re-run (with --adopt to take it over)"
            ) from None
        to_create.discard(name)

    runner = _StageRunner(kube, snap.live, completed, options, deadline, result, after=plan.after,
                          create_first=create_first, before_write=lease.check if lease is not None else lambda: None)
    # The KEP's order: parent first (widened to the superset), then members. A parent inside a
    # namespace this apply creates needs that namespace first.
    if ref.namespace in to_create:
        create_first({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ref.namespace}})
    elif not current.exists and not _namespace_exists(kube, ref, snap):
        raise OperationError(f"namespace {ref.namespace} for the ApplySet parent {ref.name} does not exist")
    if write_inventory(kube, widened, plan.labels, current=current):
        parent_written = True
        current = widened  # the superset is now recorded
        current.exists = True
        current.labels = dict(plan.labels)

    stages = by_stage(desired, first=snap.remote)
    for stage in STAGES:
        if lease is not None:
            lease.check()
        if stage == 2:  # the Secrets' namespaces exist now; generated values are created (once) before any pod reads them
            prepare_secrets(plan, options.environ, desired, _live_secret(kube, snap.live), redactor, kube=kube,
                            report=options.report)
        if stages[stage]:
            runner.run(stage, stages[stage])
        if stage == 1 and install_charts(plan.helm, options.helm, runner=options.helm_runner, report=options.report):
            kube.refresh_discovery()  # the charts may have brought kinds (cert-manager's CRDs) stage 4 applies
        if stage == 4 and options.after_routes_ready is not None:
            remaining = max(0.0, deadline - options.wait.clock())
            options.after_routes_ready(remaining=remaining, report=options.report)

    if lease is not None:
        lease.check()
    _prune(kube, snap.prune, result, options.report)
    write_inventory(kube, _final_inventory(current, desired, completed), plan.labels, current=current)
    return result


def _namespace_exists(kube: "Kube", ref: ApplySetRef, snap: _Snapshot) -> bool:
    if any(o["kind"] == "Namespace" and name_of(o) == ref.namespace for o in snap.live.values()):
        return True
    return kube.get("v1", "Namespace", ref.namespace) is not None
