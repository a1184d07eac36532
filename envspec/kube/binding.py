"""Is the resolved target the cluster the environment is bound to? The one check every command passes.

`check_binding` (envspec.kube.client) answers what the kubeconfig alone can
tell: the context name, the API server URL, the CA certificate's fingerprint.
An environment that declares a DigitalOcean cluster can also bind to *that*
cluster (`cluster.digitalocean: true`): the DigitalOcean API, asked with the
account's token, names the cluster's API endpoint, and the context must point
exactly there. A kubeconfig from another account whose context happens to be
called `do-nyc3-<the same name>` points at another endpoint and is refused.

Every check here only reads; nothing is sent to the cluster before it passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from envspec.errors import Problem, SpecError
from envspec.kube.client import KubeTarget, check_binding, normalise_server
from envspec.plan import ClusterBinding

if TYPE_CHECKING:  # pragma: no cover
    from envspec.cloud.digitalocean import DigitalOceanClient


def verify_digitalocean(
    binding: ClusterBinding, target: KubeTarget, *, environment: str, client: "DigitalOceanClient | None" = None
) -> str:
    """Refuse unless the target's server is the declared DigitalOcean cluster's endpoint; the line to print if it is."""
    from envspec.cloud.digitalocean import DigitalOceanClient

    name = binding.digitalocean_cluster
    if not name:
        raise SpecError(f"environment {environment}: cluster.digitalocean needs digitalocean.cluster")
    bound = f"environment {environment} is bound to DigitalOcean cluster {name}"
    if client is None:
        try:
            client = DigitalOceanClient.from_env()
        except SpecError as exc:
            raise SpecError([Problem(f"{bound}; to check that {target.server} is that cluster, "
                                     f"{exc.problems[0].message}")]) from None
    cluster = client.find_cluster(name)  # a failed lookup is an OperationError: nothing was sent to the cluster
    if cluster is None:
        raise SpecError(
            f"{bound}, but the DigitalOcean account of DIGITALOCEAN_TOKEN has no cluster of that name; "
            f"refusing {target.server} (create it with `envspec cluster`, or use the account's token)"
        )
    endpoint = str(cluster.get("endpoint") or "")
    cluster_id = cluster.get("id")
    if not endpoint or normalise_server(endpoint) != normalise_server(target.server):
        raise SpecError(
            f"{bound} (id {cluster_id}, API server {endpoint or 'not yet assigned'}), "
            f"but context {target.context!r} points at {target.server}; refusing. "
            f"Fetch its kubeconfig with `envspec kubeconfig {environment}` or pass --kubeconfig-from-do"
        )
    return f"cluster: DigitalOcean cluster {name} (id {cluster_id}), API server {endpoint}"


def enforce_binding(
    binding: ClusterBinding,
    target: KubeTarget,
    *,
    environment: str,
    explicit_context: str | None = None,
    digitalocean: "DigitalOceanClient | None" = None,
) -> list[str]:
    """Every binding check, cheapest first; SpecError (exit 2) on a mismatch. Returns lines worth printing."""
    check_binding(binding, target, environment=environment, explicit_context=explicit_context)
    lines: list[str] = []
    if binding.digitalocean:
        lines.append(verify_digitalocean(binding, target, environment=environment, client=digitalocean))
    return lines
