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

Following the ApplySet KEP, the parent is written before any member: on a
first apply whose parent lives in a namespace the plan creates, that
namespace is created bare (no membership label) first, so an interruption
never leaves a member no parent records.

Everything apply prints goes through the `Redactor`, which knows every secret
value (from the environment, generated, or read from live Secrets): progress
lines carry pod log tails, and CI posts those to pull requests.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from envspec.errors import EnvspecError, OperationError
from envspec.kube.helm import HelmTarget, Runner, _run, install_charts
from envspec.kube.inventory import (
    ApplySetRef,
    Inventory,
    PrunePlan,
    list_members,
    plan_prune,
    read_inventory,
    write_inventory,
)
from envspec.kube.jobs import job_key, run_job
from envspec.kube.plan import DeployPlan
from envspec.kube.preflight import confirm_if_needed, preflight
from envspec.kube.remote import Fetch, default_cache_dir, download, remote_objects
from envspec.kube.secrets import Redactor, prepare_secrets
from envspec.kube.ssa import apply_object, needs_apply
from envspec.kube.stages import STAGE_NAMES, STAGES, by_stage, desired_objects, stage_of
from envspec.kube.wait import Readiness, WaitSettings, check, needs_wait, wait_ready
from envspec.objects import group_kind, identity, name_of, namespace_of, object_id, spec_hash

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

__all__ = ["ApplyOptions", "ApplyResult", "RoutesReadyHook", "apply_plan", "desired_objects", "stage_of"]


class RoutesReadyHook(Protocol):
    """Called once after stage 4 is ready (the DigitalOcean DNS sync).

    `remaining` is what is left of the command's timeout; `report` scrubs secret values.
    """

    def __call__(self, *, remaining: float, report: Callable[[str], None]) -> None: ...


@dataclass
class ApplyOptions:
    force_conflicts: bool = False
    dangerous_prune: bool = False
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


def _index(members: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return {identity(live): live for items in members.values() for live in items}


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
    ) -> None:
        self.kube, self.live, self.completed, self.options = kube, live, completed, options
        self.deadline, self.result = deadline, result

    def _report_ready(self, readiness: Readiness) -> None:
        self.result.readiness.append(readiness)
        self.options.report(str(readiness))

    def apply_one(self, obj: dict[str, Any]) -> bool:
        """Patch `obj` if the live object differs; True when it may need waiting on."""
        live = self.live.get(identity(obj))
        oid = object_id(obj)
        if not needs_apply(obj, live):
            self.result.unchanged.append(oid)
            return needs_wait(obj) and live is not None and check(live)[0] != "ready"
        apply_object(self.kube, obj, force=self.options.force_conflicts)
        (self.result.created if live is None else self.result.updated).append(oid)
        self.options.report(f"{'created' if live is None else 'updated'} {oid}")
        return needs_wait(obj)

    def run(self, stage: int, objects: list[dict[str, Any]]) -> None:
        self.options.report(f"stage {stage}: {STAGE_NAMES[stage]} ({len(objects)} objects)")
        jobs = [o for o in objects if o["kind"] == "Job"]
        to_wait = [o for o in objects if o["kind"] != "Job" and self.apply_one(o)]
        if stage == 1 and any(o["kind"] == "CustomResourceDefinition" for o in to_wait):
            wait_ready(self.kube, to_wait, settings=self.options.wait, deadline=self.deadline, report=self._report_ready)
            self.kube.refresh_discovery()  # the new kinds must be discoverable for stage 4
            to_wait = []
        for job in jobs:
            outcome = run_job(
                self.kube,
                job,
                self.live.get(identity(job)),
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
        if to_wait:
            wait_ready(self.kube, to_wait, settings=self.options.wait, deadline=self.deadline, report=self._report_ready)


def _ensure_parent_namespace(kube: "Kube", ref: ApplySetRef, current: Inventory, plan: DeployPlan) -> None:
    """The parent lives in a namespace; on a first apply that namespace may be one the plan creates.

    It is created bare (the plan's labels, no ApplySet membership) so the parent can be written
    before any member; stage 1 then applies the full Namespace and so makes it a member.
    """
    if current.exists or kube.get("v1", "Namespace", ref.namespace) is not None:
        return
    for obj in plan.objects:
        if obj["kind"] == "Namespace" and name_of(obj) == ref.namespace:
            bare = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ref.namespace, "labels": dict(plan.labels)},
            }
            apply_object(kube, bare)
            return
    raise OperationError(f"namespace {ref.namespace} for the ApplySet parent {ref.name} does not exist")


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


def _live_secret(kube: "Kube", live: dict[tuple[str, str, str, str], dict[str, Any]]) -> Callable[[str, str], Any]:
    def lookup(namespace: str, name: str) -> dict[str, Any] | None:
        found = live.get(("", "Secret", namespace, name))
        return found if found is not None else kube.get("v1", "Secret", name, namespace)

    return lookup


def _apply(kube: "Kube", plan: DeployPlan, options: ApplyOptions, redactor: Redactor) -> ApplyResult:
    secrets, _ = preflight(plan, options.environ, check_helm=options.check_helm and bool(plan.helm), redactor=redactor)
    confirm_if_needed(plan, yes=options.yes, confirm=options.confirm, target=options.target_description)
    deadline = options.wait.clock() + options.wait.timeout
    remote = remote_objects(plan.remote_manifests, plan.labels, fetch=options.fetch, cache_dir=options.cache_dir)
    ref = ApplySetRef.for_instance(plan.instance, plan.applyset_namespace)
    desired = desired_objects(plan, secrets, ref.id, remote)

    current = read_inventory(kube, ref)
    widened = current.widen(desired)
    extra = {group_kind(o): o["apiVersion"] for o in desired}
    members = list_members(kube, widened, extra_kinds=extra)
    live = _index(members)
    prune = plan_prune(
        members,
        desired,
        set_id=ref.id,
        instance=plan.instance,
        protected_namespaces=plan.protected_namespaces,
        dangerous=options.dangerous_prune,
    )

    result = ApplyResult()
    completed = dict(current.completed_jobs)
    runner = _StageRunner(kube, live, completed, options, deadline, result)
    # The KEP's order: parent first (widened to the superset), then members.
    _ensure_parent_namespace(kube, ref, current, plan)
    if write_inventory(kube, widened, plan.labels, current=current):
        current = widened  # the superset is now recorded
        current.exists = True
        current.labels = dict(plan.labels)

    stages = by_stage(desired, first=remote)
    for stage in STAGES:
        if stage == 2:  # the Secrets' namespaces exist now; generated values are created (once) before any pod reads them
            prepare_secrets(plan, options.environ, desired, _live_secret(kube, live), redactor, kube=kube,
                            report=options.report)
        if stages[stage]:
            runner.run(stage, stages[stage])
        if stage == 1:
            install_charts(plan.helm, options.helm, runner=options.helm_runner, report=options.report)
        if stage == 4 and options.after_routes_ready is not None:
            remaining = max(0.0, deadline - options.wait.clock())
            options.after_routes_ready(remaining=remaining, report=options.report)

    _prune(kube, prune, result, options.report)
    write_inventory(kube, _final_inventory(current, desired, completed), plan.labels, current=current)
    return result


def secrets_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Secret objects among `objects` (the built ones are completed in place)."""
    return [o for o in objects if o.get("kind") == "Secret" and o.get("apiVersion") == "v1"]
