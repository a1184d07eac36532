"""What envspec needs from a cloud: DNS records and a managed cluster (with its kubeconfig).

`envspec.cloud.digitalocean.DigitalOceanClient` is the one implementation
today. Another DNS host or cloud is one module with a class that has these
methods; dns.py, cluster.py and kubeconfig.py depend only on these protocols
(the DNS record it hands back only needs `id`, `type`, `name`, `data`, `ttl`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class DnsRecordLike(Protocol):
    id: Any
    type: str
    name: str
    data: str
    ttl: int


@runtime_checkable
class DnsProvider(Protocol):
    """Records of one domain the provider hosts."""

    def check_domain(self, domain: str) -> None: ...

    def list_records(self, domain: str) -> list[Any]: ...

    def create_record(self, domain: str, *, type: str, name: str, data: str, ttl: int) -> Any: ...

    def update_record(self, domain: str, record: Any, *, data: str, ttl: int) -> None: ...

    def delete_record(self, domain: str, record: Any) -> None: ...


@runtime_checkable
class ClusterProvider(Protocol):
    """A managed Kubernetes cluster, found by name, and short-lived credentials for it."""

    def find_cluster(self, name: str) -> dict[str, Any] | None: ...

    def get_cluster(self, cluster_id: str) -> dict[str, Any]: ...

    def create_cluster(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def update_node_pool(self, cluster_id: str, pool_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def get_kubeconfig(self, cluster_id: str, *, expiry_seconds: int | None = None) -> str: ...
