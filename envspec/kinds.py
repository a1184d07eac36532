"""What envspec knows about each Kubernetes kind, in one table.

Rendering (scope, output order, name limits, pod templates: render/normalize.py,
objects.py, checks/rules.py), apply (stage and readiness rule: kube/stages.py,
kube/wait.py) and destroy (which kinds are searched for leftovers:
kube/destroy.py) all read this table, so a kind is described once. The compiler reads it without
importing the deployer: readiness rules are named here and implemented in
`envspec.kube.wait`.

A kind not in the table is rendered after routes, applied in the last stage,
ready as soon as it exists, and named as a DNS subdomain -- which is what
custom resources need; its scope is unknown, so its namespace is left as
written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NameLimit = Literal["label", "subdomain"]

# Output order ranks (render): the order a reader (and `kubectl apply -f`) meets objects in.
CRDS, NAMESPACES, CLUSTER, CONFIG, WORKLOADS, SERVICES, ROUTES, OTHER, JOBS = range(9)
# Apply stages (envspec apply waits on each before the next); destroy walks them backwards.
STAGE_NAMES = {
    1: "CRDs and namespaces",
    2: "config, secrets and RBAC",
    3: "workloads and services",
    4: "routes and custom resources",
}
LAST_STAGE = 4


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str  # the version envspec renders and searches with
    order: int  # output rank (see the constants above)
    stage: int = LAST_STAGE  # apply stage
    cluster_scoped: bool = False
    readiness: str | None = None  # name of the wait rule in envspec.kube.wait; None: ready once it exists
    verify_destroyed: bool = False  # destroy searches the instance's namespaces for leftovers of this kind
    name_limit: NameLimit = "subdomain"  # "label": the name becomes a DNS label (at most 63 characters)
    pod_template: str | None = None  # where its pod spec lives: "template", "jobTemplate", "pod"


# One row per kind. Keep rows grouped by output rank.
TABLE: tuple[Kind, ...] = (
    Kind("CustomResourceDefinition", "apiextensions.k8s.io/v1", CRDS, 1, cluster_scoped=True, readiness="established"),
    Kind("Namespace", "v1", NAMESPACES, 1, cluster_scoped=True, verify_destroyed=True, name_limit="label"),
    Kind("StorageClass", "storage.k8s.io/v1", CLUSTER, 2, cluster_scoped=True),
    Kind("PriorityClass", "scheduling.k8s.io/v1", CLUSTER, 2, cluster_scoped=True),
    Kind("ClusterRole", "rbac.authorization.k8s.io/v1", CLUSTER, 2, cluster_scoped=True),
    Kind("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", CLUSTER, 2, cluster_scoped=True),
    Kind("ClusterIssuer", "cert-manager.io/v1", CLUSTER, cluster_scoped=True),
    Kind("GatewayClass", "gateway.networking.k8s.io/v1", CLUSTER, cluster_scoped=True),
    Kind("ClusterSecretStore", "external-secrets.io/v1", CLUSTER, cluster_scoped=True),
    Kind("MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1", CLUSTER, cluster_scoped=True),
    Kind("ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1", CLUSTER, cluster_scoped=True),
    Kind("ResourceQuota", "v1", CONFIG, 2, verify_destroyed=True),
    Kind("LimitRange", "v1", CONFIG, 2, verify_destroyed=True),
    Kind("NetworkPolicy", "networking.k8s.io/v1", CONFIG, 2, verify_destroyed=True),
    Kind("ServiceAccount", "v1", CONFIG, 2, verify_destroyed=True),
    Kind("Role", "rbac.authorization.k8s.io/v1", CONFIG, 2, verify_destroyed=True),
    Kind("RoleBinding", "rbac.authorization.k8s.io/v1", CONFIG, 2, verify_destroyed=True),
    Kind("Secret", "v1", CONFIG, 2, verify_destroyed=True),
    Kind("ExternalSecret", "external-secrets.io/v1", CONFIG),
    Kind("SecretStore", "external-secrets.io/v1", CONFIG),
    Kind("ConfigMap", "v1", CONFIG, 2, verify_destroyed=True),
    Kind("PersistentVolumeClaim", "v1", CONFIG, 2, verify_destroyed=True),
    Kind("Deployment", "apps/v1", WORKLOADS, 3, readiness="rollout", verify_destroyed=True, name_limit="label", pod_template="template"),
    Kind("StatefulSet", "apps/v1", WORKLOADS, 3, readiness="statefulset", verify_destroyed=True, name_limit="label", pod_template="template"),
    Kind("DaemonSet", "apps/v1", WORKLOADS, 3, readiness="daemonset", pod_template="template"),
    Kind("CronJob", "batch/v1", WORKLOADS, 3, verify_destroyed=True, name_limit="label", pod_template="jobTemplate"),
    Kind("PodDisruptionBudget", "policy/v1", WORKLOADS, 3, verify_destroyed=True),
    Kind("HorizontalPodAutoscaler", "autoscaling/v2", WORKLOADS, 3),
    Kind("ReplicaSet", "apps/v1", OTHER, 3, pod_template="template"),
    Kind("Pod", "v1", OTHER, 3, pod_template="pod"),
    Kind("Service", "v1", SERVICES, 3, verify_destroyed=True, name_limit="label"),
    Kind("Issuer", "cert-manager.io/v1", ROUTES),
    Kind("Certificate", "cert-manager.io/v1", ROUTES, readiness="certificate", verify_destroyed=True),
    Kind("Gateway", "gateway.networking.k8s.io/v1", ROUTES, readiness="gateway"),
    Kind("HTTPRoute", "gateway.networking.k8s.io/v1", ROUTES, readiness="httproute", verify_destroyed=True),
    Kind("GRPCRoute", "gateway.networking.k8s.io/v1", ROUTES),
    Kind("ReferenceGrant", "gateway.networking.k8s.io/v1beta1", ROUTES),
    Kind("PersistentVolume", "v1", OTHER, cluster_scoped=True),
    Kind("ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1", OTHER, cluster_scoped=True),
    Kind("ValidatingAdmissionPolicyBinding", "admissionregistration.k8s.io/v1", OTHER, cluster_scoped=True),
    Kind("IngressClass", "networking.k8s.io/v1", OTHER, cluster_scoped=True),
    Kind("RuntimeClass", "node.k8s.io/v1", OTHER, cluster_scoped=True),
    Kind("CSIDriver", "storage.k8s.io/v1", OTHER, cluster_scoped=True),
    Kind("APIService", "apiregistration.k8s.io/v1", OTHER, cluster_scoped=True),
    Kind("Job", "batch/v1", JOBS, 3, readiness="job", verify_destroyed=True, name_limit="label", pod_template="template"),
)

BY_KIND: dict[str, Kind] = {row.kind: row for row in TABLE}


def info(kind: str) -> Kind:
    """The row for `kind`, or the defaults every unknown (custom) kind gets."""
    return BY_KIND.get(kind) or Kind(kind, "", OTHER)


def is_cluster_scoped(kind: str) -> bool:
    return info(kind).cluster_scoped


def is_known_namespaced(kind: str) -> bool:
    """True for the table's namespaced kinds; False for cluster-scoped ones and kinds it does not know."""
    row = BY_KIND.get(kind)
    return row is not None and not row.cluster_scoped


def order_of(kind: str) -> int:
    return info(kind).order


def stage_of_kind(kind: str) -> int:
    return info(kind).stage


def readiness_of(kind: str) -> str | None:
    return info(kind).readiness


def name_limit_of(kind: str) -> NameLimit:
    return info(kind).name_limit


def pod_template_of(kind: str) -> str | None:
    return info(kind).pod_template


def verified_after_destroy() -> tuple[tuple[str, str], ...]:
    """(apiVersion, kind) of the kinds destroy searches for leftovers, in table order."""
    return tuple((row.api_version, row.kind) for row in TABLE if row.verify_destroyed)
