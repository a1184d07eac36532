"""`envspec apply`: staged server-side apply of a plan, then prune.

Order matters on a fresh cluster: a custom resource cannot be created before
its CRD is Established, a Deployment should not start before its ConfigMap
exists, and a route is pointless before its backends. So objects go in four
stages, each waited on before the next:

1. CRDs and Namespaces;
2. config, Secrets, RBAC (and storage claims);
3. workloads and Services, then the plan's Jobs one by one in declared order;
4. routes and every other custom resource.

Before the first write the ApplySet inventory is read and the live members are
listed once per kind; that single listing decides what to patch (only objects
whose managed fields differ), what to prune, and whether a prune guard
refuses. A re-apply with nothing to change therefore sends no write at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from envspec.errors import EnvspecError, OperationError, Problem
from envspec.kube.helm import HelmTarget, Runner, _run, install_charts
from envspec.kube.inventory import (
    ApplySetRef,
    Inventory,
    PrunePlan,
    list_members,
    plan_prune,
    read_inventory,
    with_member_label,
    write_inventory,
)
from envspec.kube.jobs import job_key, run_job
from envspec.objects import group_kind, identity, name_of, namespace_of, object_id, spec_hash
from envspec.kube.plan import DeployPlan
from envspec.kube.preflight import confirm_if_needed, preflight
from envspec.kube.secrets import Redactor
from envspec.kube.ssa import apply_object, needs_apply
from envspec.kube.wait import Readiness, WaitSettings, check, needs_wait, wait_ready

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

STAGE_1 = frozenset({"CustomResourceDefinition", "Namespace"})
STAGE_2 = frozenset(
    {
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PriorityClass",
        "StorageClass",
    }
)
STAGE_3 = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Pod",
        "Service",
        "Job",
        "CronJob",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
)
STAGE_NAMES = {1: "CRDs and namespaces", 2: "config, secrets and RBAC", 3: "workloads and services", 4: "routes and custom resources"}


def stage_of(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    if kind in STAGE_1:
        return 1
    if kind in STAGE_2:
        return 2
    if kind in STAGE_3:
        return 3
    return 4


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
    after_routes_ready: Callable[[], None] | None = None
    report: Callable[[str], None] = lambda line: None


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


def desired_objects(plan: DeployPlan, secrets: list[dict[str, Any]], set_id: str) -> list[dict[str, Any]]:
    """Plan objects plus built Secrets, each labelled as an ApplySet member, in stage order (stable)."""
    objects = [with_member_label(o, set_id) for o in [*plan.objects, *secrets]]
    return sorted(objects, key=stage_of)  # sorted() is stable: plan order survives inside a stage


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


def _ensure_parent_namespace(
    kube: "Kube", ref: ApplySetRef, current: Inventory, desired: list[dict[str, Any]], runner: _StageRunner
) -> None:
    """The parent lives in a namespace; on a first apply that namespace may be one the plan creates."""
    if current.exists or kube.get("v1", "Namespace", ref.namespace) is not None:
        return
    for obj in desired:
        if obj["kind"] == "Namespace" and name_of(obj) == ref.namespace:
            runner.apply_one(obj)
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
    """Apply `plan` to the cluster behind `kube`; raises SpecError/OperationError with scrubbed messages."""
    redactor = Redactor()
    try:
        return _apply(kube, plan, options, redactor)
    except EnvspecError as exc:
        scrubbed = [Problem(redactor.scrub(p.message), p.location, p.path, p.severity, p.rule) for p in exc.problems]
        raise type(exc)(scrubbed, exit_code=exc.exit_code) from None


def _apply(kube: "Kube", plan: DeployPlan, options: ApplyOptions, redactor: Redactor) -> ApplyResult:
    secrets, _ = preflight(plan, options.environ, check_helm=options.check_helm and bool(plan.helm), redactor=redactor)
    confirm_if_needed(plan, yes=options.yes, confirm=options.confirm, target=options.target_description)
    deadline = options.wait.clock() + options.wait.timeout
    ref = ApplySetRef.for_instance(plan.instance, plan.applyset_namespace)
    desired = desired_objects(plan, secrets, ref.id)

    current = read_inventory(kube, ref)
    widened = current.widen(desired)
    extra = {group_kind(o): o["apiVersion"] for o in desired}
    members = list_members(kube, widened, extra_kinds=extra)
    prune = plan_prune(
        members,
        desired,
        set_id=ref.id,
        instance=plan.instance,
        protected_namespaces=plan.protected_namespaces,
        dangerous=options.dangerous_prune,
    )

    install_charts(plan.helm, options.helm, runner=options.helm_runner, report=options.report)

    result = ApplyResult()
    completed = dict(current.completed_jobs)
    runner = _StageRunner(kube, _index(members), completed, options, deadline, result)
    _ensure_parent_namespace(kube, ref, current, desired, runner)
    if write_inventory(kube, widened, plan.labels, current=current):
        current = widened  # the superset is now recorded
        current.exists = True
        current.labels = dict(plan.labels)

    for stage in (1, 2, 3, 4):
        objects = [o for o in desired if stage_of(o) == stage and not _already_applied(o, result)]
        if objects:
            runner.run(stage, objects)
        if stage == 4 and options.after_routes_ready is not None:
            options.after_routes_ready()

    _prune(kube, prune, result, options.report)
    write_inventory(kube, _final_inventory(current, desired, completed), plan.labels, current=current)
    return result


def _already_applied(obj: dict[str, Any], result: ApplyResult) -> bool:
    """The parent's namespace may have been applied ahead of stage 1."""
    return obj["kind"] == "Namespace" and object_id(obj) in result.created + result.updated + result.unchanged
