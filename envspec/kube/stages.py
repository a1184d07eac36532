"""In which order a plan's objects go to the cluster (and come off it again).

Order matters on a fresh cluster: a custom resource cannot be created before
its CRD is Established, a Deployment should not start before its ConfigMap
exists, and a route is pointless before its backends. So objects go in four
stages, each waited on before the next:

1. CRDs and Namespaces (and everything fetched from `manifests:`, e.g. the Gateway API CRDs);
2. config, Secrets, RBAC (and storage claims);
3. workloads and Services, then the plan's Jobs one by one in declared order;
   a workload whose app declares `after: [job, ...]` (the plan's `after`)
   rolls out only once those Jobs succeeded -- an API never starts before its
   migrations ran -- and when one is held back, the others are ready before
   the Jobs start, since a Job may need them (a database app);
4. routes and every other custom resource.

Destroy walks the same stages backwards. apply, diff and destroy all import
from here so the three never disagree about the order.
"""

from __future__ import annotations

from typing import Any, Iterable

from envspec.kube.inventory import with_member_label
from envspec.kube.plan import DeployPlan
from envspec.objects import identity

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
# Kinds that start pods: these are what an app's `after` holds back (its Service and PDB go first).
ROLLOUT_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "CronJob"})
STAGES = (1, 2, 3, 4)
STAGE_NAMES = {
    1: "CRDs and namespaces",
    2: "config, secrets and RBAC",
    3: "workloads and services",
    4: "routes and custom resources",
}


def stage_of(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    if kind in STAGE_1:
        return 1
    if kind in STAGE_2:
        return 2
    if kind in STAGE_3:
        return 3
    return 4


def desired_objects(
    plan: DeployPlan,
    secrets: list[dict[str, Any]],
    set_id: str,
    remote: Iterable[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Fetched manifests, plan objects and built Secrets, each an ApplySet member, in stage order (stable).

    Fetched manifests come first: they are infrastructure (CRDs and whatever ships with them) that
    the rest may need, so they belong to stage 1 whatever their kind.
    """
    fetched = [with_member_label(o, set_id) for o in remote]
    rest = [with_member_label(o, set_id) for o in [*plan.objects, *secrets]]
    return fetched + sorted(rest, key=stage_of)  # sorted() is stable: plan order survives inside a stage


def by_stage(objects: list[dict[str, Any]], first: Iterable[dict[str, Any]] = ()) -> dict[int, list[dict[str, Any]]]:
    """`objects` grouped per stage; those whose identity is in `first` (fetched manifests) go to stage 1."""
    early = {identity(o) for o in first}
    out: dict[int, list[dict[str, Any]]] = {stage: [] for stage in STAGES}
    for obj in objects:
        out[1 if identity(obj) in early else stage_of(obj)].append(obj)
    return out
