"""What the compiler hands to cluster operations (built by the compile layer: `envspec.pipeline`).

The render pipeline ends in plain objects; apply, diff and destroy need a
little more: which cluster they may touch, which secrets to build from the
environment, which charts to install first, and how to name the inventory.
`DeployPlan` is that hand-over. It holds no secret *values*, only the names of
the environment variables that carry them, so a plan can be logged or diffed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envspec.errors import Location


@dataclass(frozen=True)
class ClusterBinding:
    """The cluster an environment may touch: a kube context, an API server URL, a CA fingerprint, a DigitalOcean cluster."""

    context: str | None = None
    server: str | None = None
    digitalocean_cluster: str | None = None  # name of the DigitalOcean cluster, if declared
    ca_fingerprint: str | None = None  # sha256:<hex> of the cluster CA certificate (DER)
    digitalocean: bool = False  # the server must be digitalocean_cluster's endpoint, per the DigitalOcean API


@dataclass(frozen=True)
class SecretSource:
    """A Secret built at apply time; each data key's value comes from an environment variable."""

    name: str
    namespace: str
    type: str = "Opaque"  # or kubernetes.io/dockerconfigjson
    data_from_env: dict[str, str] = field(default_factory=dict)  # key -> ENV_VAR
    # For kubernetes.io/dockerconfigjson: registry + username; the password comes from data_from_env["password"].
    registry: str | None = None
    username: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # Keys whose values apply generates (random, 32 URL-safe characters) when the live Secret lacks them,
    # and keeps unchanged afterwards -- e.g. a per-instance database password nobody has to supply.
    generate: tuple[str, ...] = ()
    # (namespace, name) of another Secret of the plan whose data this one repeats once apply has completed
    # it -- e.g. a database role's password, needed by a Job in the shared database's namespace.
    copy_of: tuple[str, str] | None = None
    # With copy_of: hold, instead of each value, its PostgreSQL SCRAM-SHA-256 verifier (which ALTER ROLE ...
    # PASSWORD accepts in place of the password): the copy's namespace then holds no usable credential.
    scram_verifier: bool = False


@dataclass(frozen=True)
class RemoteManifest:
    """Manifests fetched at apply time (e.g. the Gateway API CRDs), applied in stage 1 before Helm charts."""

    url: str
    sha256: str | None = None  # when set, apply refuses content with another digest


@dataclass(frozen=True)
class HelmChart:
    release: str
    namespace: str
    repository: str
    chart: str
    version: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseDrop:
    """How destroy drops the per-instance database: a Job on the shared PostgreSQL."""

    database: str  # validated ^[a-z0-9_]{1,63}$
    host: str  # fully qualified service name
    port: int
    image: str
    namespace: str  # where the drop Job runs (the shared database's namespace)
    user_secret: str  # Secret holding the admin credentials (keys: username, password)
    role: str | None = None  # the per-instance login role to drop after the database (validated like the name)


@dataclass(frozen=True)
class DeployPlan:
    environment: str  # spec name, e.g. "staging"
    instance: str  # environment instance, e.g. "review-107"; names the ApplySet
    objects: list[dict[str, Any]]  # rendered objects in apply order (Jobs in declared order)
    cluster: ClusterBinding
    labels: dict[str, str]  # labels every object carries (managed-by, environment, instance)
    secrets: list[SecretSource] = field(default_factory=list)
    helm: list[HelmChart] = field(default_factory=list)
    remote_manifests: list[RemoteManifest] = field(default_factory=list)
    owned_namespaces: list[str] = field(default_factory=list)  # namespaces this instance creates
    protected_namespaces: list[str] = field(default_factory=list)  # never created, changed or deleted
    requires_confirmation: bool = False  # production: --yes or an interactive prompt
    requires_pinned_images: bool = False  # requirePinnedImages: apply refuses unpinned app images
    # The app images that rule applies to (the spec's apps.*.image, except pinImage: false). Third-party
    # sidecars and infrastructure images (nginx, postgres) are not app builds. Empty: every container image.
    app_images: list[str] = field(default_factory=list)
    database_drop: DatabaseDrop | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    applyset_namespace: str | None = None  # namespace of the ApplySet parent Secret
    # object id of an app's object -> ids of the Jobs that must succeed before it rolls out (apps.*.after)
    after: dict[str, list[str]] = field(default_factory=dict)
    # object id -> (spec position, dotted spec path) of what renders it, so apply's refusals point at a line
    sources: dict[str, tuple[Location | None, str]] = field(default_factory=dict)
