"""Wait for the external address of a Gateway or a LoadBalancer Service, read through envspec's `Kube`.

The address appears some seconds to minutes after the object is created (the
cloud provisions a load balancer), so callers wait with a timeout. Reads go
through `envspec.kube.client.Kube` so they get the same retries on 429/5xx and
dropped connections as every other request envspec sends.

A Gateway's address comes from `status.addresses`, like external-dns's gateway
source. NGINX Gateway Fabric 2.x fills it from the data-plane Service it
provisions per Gateway (`<gateway>-<gatewayclass>` in the Gateway's
namespace): the load balancer's IP (type IPAddress) or hostname (type
Hostname) when that Service is a LoadBalancer, but the Service's ClusterIP
when it is not. An address in a private or in-cluster range is therefore
never used for public DNS; the wait goes on and the timeout names it.

`kubernetes` is imported inside the functions: this module is imported by the
DNS code, which must stay cheap to import.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from envspec.errors import OperationError

if TYPE_CHECKING:
    from envspec.kube.client import Kube

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"

# Where a load balancer address never lives: private, carrier-grade NAT, loopback, link-local.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "0.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128", "::/128",
    )
)


@dataclass(frozen=True)
class Observation:
    """What one read of the object showed: usable addresses (status order), else why there are none."""

    addresses: tuple[str, ...] = ()
    state: str = "not found"


def is_in_cluster_address(value: str) -> bool:
    """True for an IP in a private, CGNAT, loopback or link-local range: no public record may point there."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in _NOT_PUBLIC)


def service_addresses(service: dict[str, Any], what: str) -> Observation:
    """`status.loadBalancer.ingress[].ip`/`.hostname` of a Service; a non-LoadBalancer Service is an error."""
    kind = (service.get("spec") or {}).get("type")
    if kind != "LoadBalancer":
        raise OperationError(f"{what} has type {kind}, not LoadBalancer; it has no external address")
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    found = [entry.get("ip") or entry.get("hostname") for entry in ingress if isinstance(entry, dict)]
    return _usable([a for a in found if a], "has no load balancer address yet")


def gateway_addresses(gateway: dict[str, Any]) -> Observation:
    """`status.addresses[].value` of type IPAddress (the default) or Hostname; other types are not DNS targets."""
    found: list[str] = []
    for entry in (gateway.get("status") or {}).get("addresses") or []:
        if not isinstance(entry, dict) or not entry.get("value"):
            continue
        kind = entry.get("type") or "IPAddress"
        value = str(entry["value"])
        if kind == "IPAddress":
            try:
                found.append(str(ipaddress.ip_address(value)))
            except ValueError:
                continue
        elif kind == "Hostname":
            found.append(value.rstrip(".").lower())
    return _usable(found, "has no address in status.addresses yet")


def _usable(found: list[str], empty_state: str) -> Observation:
    public = tuple(a for a in found if not is_in_cluster_address(a))
    if public:
        return Observation(public)
    if found:
        return Observation(
            state=f"reports only in-cluster address(es) {', '.join(found)}; "
            "is the gateway's Service of type LoadBalancer?"
        )
    return Observation(state=empty_state)


def wait_for_address(
    kube: Kube,
    kind: str,
    namespace: str,
    name: str,
    *,
    timeout: float = 300.0,
    poll_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[str, ...]:
    """The public addresses of a Gateway (`kind="Gateway"`) or LoadBalancer Service (`kind="Service"`), once it has one.

    A missing object is waited for too: apply calls this right after creating
    it. API failures that retries could not cure stop at once.
    """
    if kind not in ("Gateway", "Service"):
        raise ValueError(f"kind must be Gateway or Service, not {kind!r}")
    what = f"{kind} {namespace}/{name}"
    api_version = GATEWAY_API_VERSION if kind == "Gateway" else "v1"
    deadline = clock() + timeout
    while True:
        obj = _read(kube, api_version, kind, namespace, name, what)
        if obj is None:
            seen = Observation()
        elif kind == "Gateway":
            seen = gateway_addresses(obj)
        else:
            seen = service_addresses(obj, what)
        if seen.addresses:
            return seen.addresses
        if clock() >= deadline:
            raise OperationError(f"timed out after {timeout:g}s waiting for {what}: it {seen.state}")
        sleep(poll_interval)


def _read(kube: Kube, api_version: str, kind: str, namespace: str, name: str, what: str) -> dict[str, Any] | None:
    """One GET through Kube (which retries transient failures); anything left becomes one readable line."""
    from urllib3.exceptions import HTTPError

    from envspec.kube.client import api_message

    try:
        return kube.get(api_version, kind, name, namespace)
    except OperationError:
        raise
    except HTTPError as exc:
        raise OperationError(
            f"reading {what} failed: cannot reach the cluster at {kube.server} ({type(exc).__name__})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the client's ApiException family, reported as one line
        raise OperationError(f"reading {what} failed: {api_message(exc)}") from None
