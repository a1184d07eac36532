"""Stage 3: the typed environment model.

Field names mirror the YAML (camelCase, like Kubernetes), so an error's
dotted path is exactly what the user wrote. Derived values that templates need
(a route's backend port, the job order) are computed here, not in templates.
"""

# No `from __future__ import annotations` here: pydantic would compile and evaluate each field's
# annotation string when it creates the class, on every start (the models are imported by every command).

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from envspec.quantity import SPEC_PATTERN as QUANTITY_PATTERN
from envspec.spec.base import SpecModel, empty_list
from envspec.spec.cloud import DigitalOcean
from envspec.spec.params import Param


def _integer_as_text(value: Any) -> Any:
    """ConfigMap data is text: an integer (`PR_NUMBER: ${params.pr}`) is written as its digits; nothing else is coerced."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ConfigValue = Annotated[str, BeforeValidator(_integer_as_text)]

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Port = Annotated[int, Field(ge=1, le=65535)]
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE, max_length=63)]
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY, max_length=317)]


class Cluster(SpecModel):
    """The one cluster this environment may touch. apply, diff and destroy refuse any other.

    A context name only selects an entry of the kubeconfig (doctl names every
    context `do-<region>-<cluster>`, in every account); `server`, `caFingerprint`
    and `digitalocean` are what identify the cluster itself.
    """

    context: str | None = Field(default=None, description="kube context name")
    server: str | None = Field(default=None, description="API server URL")
    caFingerprint: str | None = Field(
        default=None, pattern=r"^sha256:[0-9a-f]{64}$",
        description="sha256:<hex> of the cluster CA certificate (DER) in the kubeconfig's certificate-authority-data.",
    )
    digitalocean: bool = Field(
        default=False,
        description="The context's API server must be the endpoint of the cluster declared in digitalocean.cluster, "
        "looked up through the DigitalOcean API (needs DIGITALOCEAN_TOKEN).",
    )
    confirm: bool = Field(default=False, description="Require --yes or an interactive confirmation (production).")

    @model_validator(mode="after")
    def _one_of(self) -> "Cluster":
        if not (self.context or self.server or self.caFingerprint or self.digitalocean):
            raise ValueError("declare the cluster's `context`, `server`, `caFingerprint` or `digitalocean: true`")
        return self


class Quota(SpecModel):
    cpu: Quantity
    memory: Quantity
    pods: Annotated[int, Field(ge=1)]


class EgressService(SpecModel):
    namespace: Name
    selector: dict[str, str]
    port: Port


class NetworkPolicy(SpecModel):
    """Isolate the namespace: deny everything but what is listed."""

    ingressFromNamespaces: list[Name] = Field(default_factory=empty_list)
    egressDns: bool = True
    egressHttps: bool = True
    egressServices: list[EgressService] = Field(default_factory=empty_list)


class Namespace(SpecModel):
    name: Name
    create: bool = Field(default=True, description="Whether this environment creates and owns the namespace.")
    quota: Quota | None = None
    networkPolicy: NetworkPolicy | None = None


class ResourceAmounts(SpecModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(SpecModel):
    requests: ResourceAmounts | None = None
    limits: ResourceAmounts | None = None


class SecretKeyRef(SpecModel):
    secret: Name
    key: str


PortName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=15)]


class Probe(SpecModel):
    """A probe: exactly one of an HTTP GET `path`, a `tcp` connection or an `exec` command."""

    path: str | None = Field(default=None, description="HTTP GET path.")
    tcp: bool = False
    exec: list[str] | None = Field(default=None, description="Command whose exit status is the result.")
    port: Port | PortName | None = Field(default=None, description="Port number or name (default: the container's first port).")
    initialDelaySeconds: Annotated[int, Field(ge=0)] | None = None
    periodSeconds: Annotated[int, Field(ge=1)] | None = None
    timeoutSeconds: Annotated[int, Field(ge=1)] | None = None
    failureThreshold: Annotated[int, Field(ge=1)] | None = None
    successThreshold: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> "Probe":
        if sum([self.path is not None, self.tcp, self.exec is not None]) != 1:
            raise ValueError("a probe is exactly one of path: /..., tcp: true, exec: [command]")
        return self


class Capabilities(SpecModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class ContainerSecurity(SpecModel):
    """A container's securityContext."""

    runAsUser: Annotated[int, Field(ge=0)] | None = None
    runAsGroup: Annotated[int, Field(ge=0)] | None = None
    runAsNonRoot: bool | None = None
    readOnlyRootFilesystem: bool | None = None
    allowPrivilegeEscalation: bool | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None


class PodSecurity(SpecModel):
    """A pod's securityContext."""

    runAsUser: Annotated[int, Field(ge=0)] | None = None
    runAsGroup: Annotated[int, Field(ge=0)] | None = None
    runAsNonRoot: bool | None = None
    fsGroup: Annotated[int, Field(ge=0)] | None = None
    seccompProfile: Literal["RuntimeDefault", "Unconfined"] | None = None


class Container(SpecModel):
    image: str | None = Field(default=None, description="Defaults to the app's image.")
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    port: Port | None = None
    ports: dict[PortName, Port] = Field(default_factory=dict, description="Named ports: name -> container port.")
    env: dict[EnvVarName, str] = Field(default_factory=dict)
    secretEnv: dict[EnvVarName, SecretKeyRef] = Field(default_factory=dict)
    configMaps: list[Name] = Field(default_factory=empty_list, description="ConfigMaps loaded as environment (envFrom).")
    secrets: list[Name] = Field(default_factory=empty_list, description="Secrets loaded as environment (envFrom).")
    mounts: dict[Name, str] = Field(default_factory=dict, description="volume name -> mount path")
    resources: Resources | None = None
    readinessPath: str | None = None
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None
    securityContext: ContainerSecurity | None = None
    preStop: list[str] | None = Field(default=None, description="Command run before the container is stopped.")

    @model_validator(mode="after")
    def _probes(self) -> "Container":
        if self.readiness is not None and self.readinessPath is not None:
            raise ValueError("use readiness or readinessPath, not both")
        if self.port is not None and self.port in self.ports.values():
            raise ValueError(f"port {self.port} is also listed under ports")
        return self

    def first_port(self) -> int | None:
        return self.port or next(iter(self.ports.values()), None)


class Volume(SpecModel):
    emptyDir: bool = False
    claim: Name | None = None
    configMap: Name | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Volume":
        if sum([self.emptyDir, self.claim is not None, self.configMap is not None]) != 1:
            raise ValueError("a volume is exactly one of emptyDir: true, claim: NAME, configMap: NAME")
        return self


class ClaimSpec(SpecModel):
    size: Quantity
    accessMode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"] = "ReadWriteOnce"
    storageClass: str | None = None
    namespace: Name | None = None


class Disruption(SpecModel):
    minAvailable: Annotated[int, Field(ge=0)]


class ServicePort(SpecModel):
    port: Port
    targetPort: Port | PortName | None = Field(default=None, description="Default: the same as port.")


class Service(SpecModel):
    port: Port = 80
    targetPort: Port | None = None
    ports: dict[PortName, ServicePort] = Field(
        default_factory=dict, description="Named ports; when given, the Service has exactly these (port/targetPort are unused)."
    )
    headless: bool = Field(default=False, description="clusterIP: None (a StatefulSet's stable pod names).")


class ClaimTemplate(SpecModel):
    size: Quantity
    accessMode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"] = "ReadWriteOnce"
    storageClass: str | None = None


class Autoscale(SpecModel):
    """A HorizontalPodAutoscaler (autoscaling/v2) on average utilisation of the pods' requests."""

    minReplicas: Annotated[int, Field(ge=1)] = 1
    maxReplicas: Annotated[int, Field(ge=1)]
    cpu: Annotated[int, Field(ge=1, le=1000)] | None = Field(default=None, description="Target CPU utilisation, percent.")
    memory: Annotated[int, Field(ge=1, le=1000)] | None = Field(default=None, description="Target memory utilisation, percent.")

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscale":
        if self.maxReplicas < self.minReplicas:
            raise ValueError("maxReplicas must be >= minReplicas")
        if self.cpu is None and self.memory is None:
            raise ValueError("an autoscaler targets cpu, memory or both")
        return self


class ServiceAccountSpec(SpecModel):
    namespace: Name | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    automountToken: bool | None = Field(default=None, description="automountServiceAccountToken")


class App(SpecModel):
    """A Deployment (or StatefulSet), its Service, and optionally a PodDisruptionBudget and an autoscaler."""

    image: str
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    pinImage: bool = Field(
        default=True,
        description="Whether requirePinnedImages applies to this app's image; false for third-party infrastructure images.",
    )
    namespace: Name | None = None
    replicas: Annotated[int, Field(ge=1)] = 1
    strategy: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    maxSurge: Annotated[int, Field(ge=0)] = 1
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None
    containers: dict[Name, Container] = Field(min_length=1)
    initContainers: dict[Name, Container] = Field(default_factory=dict)
    volumes: dict[Name, Volume] = Field(default_factory=dict)
    service: Service | None = None
    disruptionBudget: Disruption | None = None
    autoscale: Autoscale | None = None
    serviceAccount: Name | None = Field(default=None, description="serviceAccountName of the pods.")
    securityContext: PodSecurity | None = None
    nodeSelector: dict[str, str] = Field(default_factory=dict)
    terminationGracePeriodSeconds: Annotated[int, Field(ge=0)] | None = None
    volumeClaimTemplates: dict[Name, ClaimTemplate] = Field(
        default_factory=dict, description="A StatefulSet's per-pod claims (mounted by name like volumes)."
    )
    requiredEnv: list[EnvVarName] = Field(
        default_factory=empty_list, description="Environment variables the app needs; checked against what its containers get."
    )
    after: list[Name] = Field(
        default_factory=empty_list,
        description="Jobs (or the database's create Job) that must succeed before apply rolls this app out, e.g. its migrations.",
    )

    @model_validator(mode="after")
    def _kind(self) -> "App":
        if self.kind == "Deployment" and self.volumeClaimTemplates:
            raise ValueError("volumeClaimTemplates need kind: StatefulSet")
        if self.kind == "StatefulSet" and (self.strategy != "RollingUpdate" or "maxSurge" in self.model_fields_set):
            raise ValueError("a StatefulSet rolls pods one by one: strategy and maxSurge apply to Deployments")
        return self

    def max_replicas(self) -> int:
        return self.autoscale.maxReplicas if self.autoscale else self.replicas


class JobPod(SpecModel):
    """What a Job and a CronJob's Jobs run: one container."""

    image: str
    namespace: Name | None = None
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[EnvVarName, str] = Field(default_factory=dict)
    secretEnv: dict[EnvVarName, SecretKeyRef] = Field(default_factory=dict)
    configMaps: list[Name] = Field(default_factory=empty_list)
    secrets: list[Name] = Field(default_factory=empty_list)
    resources: Resources | None = None
    serviceAccount: Name | None = None
    securityContext: ContainerSecurity | None = None
    podSecurityContext: PodSecurity | None = None
    backoffLimit: Annotated[int, Field(ge=0)] = 2
    requiredEnv: list[EnvVarName] = Field(default_factory=empty_list)


class Job(JobPod):
    after: list[Name] = Field(default_factory=empty_list, description="Jobs that must complete first.")
    ttlSecondsAfterFinished: Annotated[int, Field(ge=0)] | None = 3600


class CronJob(JobPod):
    """A CronJob: a Job on a schedule."""

    schedule: Annotated[str, StringConstraints(pattern=r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$")]
    timeZone: str | None = None
    concurrencyPolicy: Literal["Allow", "Forbid", "Replace"] = "Forbid"
    suspend: bool = False
    successfulJobsHistoryLimit: Annotated[int, Field(ge=0)] = 3
    failedJobsHistoryLimit: Annotated[int, Field(ge=0)] = 1
    startingDeadlineSeconds: Annotated[int, Field(ge=1)] | None = None


class Database(SpecModel):
    """A database on a shared PostgreSQL, created by a Job (idempotently) and dropped on destroy."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$", max_length=63)]
    host: str
    port: Port = 5432
    namespace: Name | None = Field(
        default=None,
        description="Namespace the database Jobs run in: the shared PostgreSQL's, where adminSecret already lives, "
        "so the admin credentials never enter this environment's namespace (default: the environment's namespace).",
    )
    adminSecret: Name = Field(
        description="Secret with keys username and password for the PostgreSQL admin, read in `namespace`."
    )
    appSecret: Name | None = Field(
        default=None,
        description="Secret with key `password` for a login role named like the database, which owns it and "
        "nothing else; the app connects as that role instead of the admin.",
    )
    image: str = "postgres:16"
    resources: Resources | None = None
    job: Annotated[str, StringConstraints(pattern=DNS1123_LABEL, max_length=63)] = Field(
        default="create-db", description="Name of the create Job; other jobs wait for it with `after: [<job>]`."
    )


class ExternalSource(SpecModel):
    """Where an ExternalSecret (external-secrets.io) reads a Secret's values from."""

    store: Name
    storeKind: Literal["SecretStore", "ClusterSecretStore"] = "ClusterSecretStore"
    refreshInterval: str = "1h"
    data: dict[str, str] = Field(min_length=1, description="secret key -> key in the external store")


class SecretSpec(SpecModel):
    """A Secret whose values come from environment variables at apply time (never rendered),
    or, with `external`, from an external store through a rendered ExternalSecret."""

    namespace: Name | None = None
    type: Literal["Opaque", "kubernetes.io/dockerconfigjson"] = "Opaque"
    fromEnv: dict[str, EnvVarName] = Field(default_factory=dict, description="data key -> environment variable")
    registry: str | None = None
    username: str | None = None
    passwordEnv: EnvVarName | None = None
    generate: list[str] = Field(
        default_factory=empty_list,
        description="Keys whose values apply generates once (random) and keeps: e.g. a per-instance password.",
    )
    external: ExternalSource | None = None

    @model_validator(mode="after")
    def _shape(self) -> "SecretSpec":
        if self.external is not None:
            if self.fromEnv or self.passwordEnv or self.generate or self.type != "Opaque":
                raise ValueError("an external secret takes its values from `external.data` only")
        elif self.type == "kubernetes.io/dockerconfigjson":
            if not (self.registry and self.username and self.passwordEnv):
                raise ValueError("a dockerconfigjson secret needs registry, username and passwordEnv")
        elif not self.fromEnv and not self.generate:
            raise ValueError("an Opaque secret needs fromEnv: {key: ENV_VAR} or generate: [key]")
        if set(self.generate) & set(self.fromEnv):
            raise ValueError("a key is either taken from the environment or generated, not both")
        return self


class Listener(SpecModel):
    name: Annotated[str, StringConstraints(pattern=DNS1123_LABEL, max_length=63)]
    protocol: Literal["HTTP", "HTTPS"]
    port: Port
    hostname: str | None = None
    tlsSecret: Name | None = None

    @model_validator(mode="after")
    def _tls(self) -> "Listener":
        if self.protocol == "HTTPS" and not self.tlsSecret:
            raise ValueError("an HTTPS listener needs tlsSecret")
        return self


class Gateway(SpecModel):
    name: Name
    namespace: Name
    createNamespace: bool = True
    className: str
    listeners: list[Listener] = Field(min_length=1)


class Dns01DigitalOcean(SpecModel):
    """A DNS-01 solver whose provider takes one API token from a Secret (cert-manager's built-in solvers)."""

    provider: Literal["digitalocean", "cloudflare"] = Field(
        default="digitalocean", description="The DNS provider cert-manager's solver talks to."
    )
    tokenSecret: Name
    tokenKey: str = "access-token"


class Acme(SpecModel):
    server: str
    email: str
    dns01: Dns01DigitalOcean | None = None
    http01: bool = False


class Issuer(SpecModel):
    """A cert-manager ClusterIssuer."""

    acme: Acme | None = None
    selfSigned: bool = False

    @model_validator(mode="after")
    def _one(self) -> "Issuer":
        if (self.acme is None) == (not self.selfSigned):
            raise ValueError("an issuer is either acme: {...} or selfSigned: true")
        return self


class Certificate(SpecModel):
    namespace: Name
    secretName: Name
    issuer: Name
    dnsNames: list[str] = Field(min_length=1)


class ParentRef(SpecModel):
    name: Name
    namespace: Name
    listener: str
    external: bool = Field(
        default=False,
        description="The Gateway belongs to no environment envspec knows (shared, owned elsewhere): its listeners are not checked.",
    )


class Backend(SpecModel):
    app: Name
    port: Port | None = None


class Redirect(SpecModel):
    scheme: Literal["http", "https"] | None = None
    hostname: str | None = None
    statusCode: Literal[301, 302] = 301


class Route(SpecModel):
    """An HTTPRoute to an app's Service, or a redirect; optionally with an HTTP-to-HTTPS redirect route."""

    namespace: Name | None = None
    hostnames: list[str] = Field(min_length=1)
    gateway: ParentRef
    backend: Backend | None = None
    redirect: Redirect | None = None
    httpsRedirectFrom: str | None = Field(default=None, description="An HTTP listener to redirect to HTTPS from.")

    @model_validator(mode="after")
    def _target(self) -> "Route":
        if (self.backend is None) == (self.redirect is None):
            raise ValueError("a route has exactly one of backend or redirect")
        return self


class RemoteManifest(SpecModel):
    """Manifests fetched when applying (such as the Gateway API CRDs), applied before Helm charts."""

    url: Annotated[str, StringConstraints(pattern=r"^https://")]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="Digest of the fetched content; apply refuses anything else."
    )


class HelmChart(SpecModel):
    repository: str
    chart: str
    version: str
    namespace: Name
    values: dict[str, Any] = Field(default_factory=dict)


class PatchTarget(SpecModel):
    """Which rendered objects a patch applies to: every object matching all the given fields."""

    kind: str | None = None
    apiVersion: str | None = None
    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict, description="Labels the object must carry (envspec's own included).")

    @model_validator(mode="after")
    def _something(self) -> "PatchTarget":
        if not (self.kind or self.apiVersion or self.name or self.namespace or self.labels):
            raise ValueError("a patch target names at least one of kind, apiVersion, name, namespace, labels")
        return self


class JsonOp(SpecModel):
    """One JSON Patch (RFC 6902) operation."""

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    value: Any = None
    from_: str | None = Field(default=None, alias="from")

    @model_validator(mode="after")
    def _operands(self) -> "JsonOp":
        if self.op in ("add", "replace", "test") and "value" not in self.model_fields_set:
            raise ValueError(f"a JSON Patch {self.op!r} operation needs `value`")
        if self.op in ("move", "copy") and self.from_ is None:
            raise ValueError(f"a JSON Patch {self.op!r} operation needs `from`")
        return self


class Patch(SpecModel):
    """A change to rendered objects, applied before labels, rules and schema validation."""

    target: PatchTarget
    strategicMerge: dict[str, Any] | None = Field(
        default=None, description="A strategic-merge patch: maps merge, null deletes, lists merge by their Kubernetes merge key."
    )
    jsonPatch: list[JsonOp] | None = Field(default=None, description="JSON Patch (RFC 6902) operations, in order.")

    @model_validator(mode="after")
    def _one(self) -> "Patch":
        if (self.strategicMerge is None) == (self.jsonPatch is None):
            raise ValueError("a patch has exactly one of strategicMerge or jsonPatch")
        return self


class Preview(SpecModel):
    """This environment is a per-pull-request preview: one instance per PR, removed when the PR ends.

    `envspec gc` finds previews by this block (never by an environment's name): instances whose PR is
    closed, or that nobody applied for longer than `ttl`, are destroyed.
    """

    prParam: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        default="pr", description="The integer parameter that carries the PR number (`--pr N` sets `pr`)."
    )
    ttl: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*[mhdw]$")] | None = Field(
        default=None, description="gc destroys instances not applied for longer than this (90m, 36h, 7d, 2w)."
    )


class ComponentUse(SpecModel):
    """An instance of a project component (components/<use>/component.yaml)."""

    use: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")] = Field(
        description="The component's folder name under components/."
    )
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="Values for the component's params.")
    namespace: Name | None = Field(
        default=None, description="The namespace its templates see as env.namespace (default: the environment's)."
    )


class Environment(SpecModel):
    """One environment: everything envspec renders and deploys for it."""

    extends: str | None = Field(default=None, description="A file in environments/ whose values this one overrides.")
    description: str = ""
    uses: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict, description="alias -> environment whose outputs ${alias.output} reads"
    )
    params: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Param] = Field(
        default_factory=dict
    )
    instance: Annotated[str, StringConstraints(pattern=DNS1123_LABEL, max_length=63)] | None = Field(
        default=None, description="Name of this deployed instance (default: the environment's name)."
    )
    cluster: Cluster
    namespace: Namespace
    protectedNamespaces: list[Name] = Field(
        default_factory=empty_list, description="Namespaces this environment must never create, change or delete."
    )
    requirePinnedImages: bool = Field(default=False, description="apply refuses app images without a sha256 digest.")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)  # each value's error is located at its own line
    imagePullSecrets: list[Name] = Field(default_factory=empty_list)
    secrets: dict[Name, SecretSpec] = Field(default_factory=dict)
    configMaps: dict[Name, dict[str, ConfigValue]] = Field(default_factory=dict)
    claims: dict[Name, ClaimSpec] = Field(default_factory=dict)
    apps: dict[Name, App] = Field(default_factory=dict)
    database: Database | None = None
    jobs: dict[Name, Job] = Field(default_factory=dict)
    cronJobs: dict[Name, CronJob] = Field(default_factory=dict)
    serviceAccounts: dict[Name, ServiceAccountSpec] = Field(default_factory=dict)
    gateway: Gateway | None = None
    issuers: dict[Name, Issuer] = Field(default_factory=dict)
    certificates: dict[Name, Certificate] = Field(default_factory=dict)
    routes: dict[Name, Route] = Field(default_factory=dict)
    manifests: list[RemoteManifest] = Field(
        default_factory=empty_list, description="Remote manifests fetched at apply time by URL (not rendered)."
    )
    objects: list[dict[str, Any]] = Field(
        default_factory=empty_list,
        description="Raw Kubernetes objects written inline; rendered, labelled, checked and applied like every other object.",
    )
    objectFiles: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=empty_list,
        description="YAML files in the project (paths relative to its root) holding raw Kubernetes objects.",
    )
    preview: Preview | None = Field(default=None, description="Declares this environment a per-pull-request preview.")
    components: dict[Name, ComponentUse] = Field(
        default_factory=dict, description="Instances of the project's own components (components/<name>/)."
    )
    patches: list[Patch] = Field(default_factory=empty_list, description="Patches to rendered objects, in order.")
    helm: dict[Name, HelmChart] = Field(default_factory=dict)
    digitalocean: DigitalOcean | None = None
    templates: list[str] = Field(default_factory=empty_list, description="Extra templates (from the project's templates/) to render.")
    outputs: dict[str, Any] = Field(default_factory=dict, description="Values other environments and `envspec outputs` read.")

    @model_validator(mode="after")
    def _preview_param(self) -> "Environment":
        if self.preview is not None:
            param = self.params.get(self.preview.prParam)
            if param is None or param.type != "integer":
                raise ValueError(f"preview.prParam: {self.preview.prParam!r} must name an integer parameter under params:")
        return self

    @model_validator(mode="after")
    def _digitalocean_binding(self) -> "Environment":
        if self.cluster.digitalocean and (self.digitalocean is None or self.digitalocean.cluster is None):
            raise ValueError("cluster.digitalocean: binding to the DigitalOcean cluster needs digitalocean.cluster")
        return self

    @model_validator(mode="after")
    def _references(self) -> "Environment":
        for name, job in self.jobs.items():
            for dep in job.after:
                if dep not in self.jobs and not (self.database and dep == self.database.job):
                    raise ValueError(f"jobs.{name}.after: unknown job {dep!r}")
        for name, app in self.apps.items():
            for dep in app.after:
                if dep not in self.jobs and not (self.database and dep == self.database.job):
                    raise ValueError(f"apps.{name}.after: unknown job {dep!r}")
        for name, route in self.routes.items():
            if route.backend and route.backend.app not in self.apps:
                raise ValueError(f"routes.{name}.backend.app: unknown app {route.backend.app!r}")
        return self

    def job_order(self) -> list[str]:
        """Jobs in the order they must run: `after` first, otherwise as declared. Cycles are a model error."""
        order: list[str] = []
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                cycle = [*visiting[visiting.index(name):], name]
                raise ValueError(f"jobs.{cycle[0]}.after: job cycle: " + " -> ".join(cycle))
            visiting.append(name)
            for dep in self.jobs[name].after if name in self.jobs else []:
                visit(dep)
            visiting.pop()
            order.append(name)

        if self.database:
            order.append(self.database.job)
        for name in self.jobs:
            visit(name)
        return order

    @model_validator(mode="after")
    def _acyclic_jobs(self) -> "Environment":
        self.job_order()
        return self
