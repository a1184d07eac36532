"""Wait for a LoadBalancer Service's external address, read with the official kubernetes client.

The address appears some seconds to minutes after the Service is created (the
cloud provisions a load balancer), so callers wait with a timeout. `kubernetes`
is imported inside the function: this module is imported by the DNS code,
which must stay cheap to import.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from envspec.errors import OperationError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def wait_for_load_balancer_address(
    api_client: ApiClient,
    namespace: str,
    name: str,
    *,
    timeout: float = 300.0,
    poll_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """`status.loadBalancer.ingress[0].ip` (or `.hostname`) of the Service, once it has one.

    A missing Service is waited for too: apply calls this right after creating
    it. Any other API failure (401, 403, 500…) stops at once.
    """
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    core = CoreV1Api(api_client)
    deadline = clock() + timeout
    what = f"Service {namespace}/{name}"
    last_state = "not found"
    while True:
        try:
            service = core.read_namespaced_service(name, namespace, _request_timeout=30)
        except ApiException as exc:
            if exc.status != 404:
                raise OperationError(f"reading {what} failed: HTTP {exc.status} {exc.reason}") from None
            service = None
        except HTTPError as exc:
            raise OperationError(f"reading {what} failed: cannot reach the cluster ({type(exc).__name__})") from None
        if service is not None:
            kind = service.spec.type if service.spec else None
            if kind != "LoadBalancer":
                raise OperationError(f"{what} has type {kind}, not LoadBalancer; it has no external address")
            ingress = (service.status.load_balancer.ingress if service.status and service.status.load_balancer else None) or []
            for entry in ingress:
                address = entry.ip or entry.hostname
                if address:
                    return address
            last_state = "has no load balancer address yet"
        if clock() >= deadline:
            raise OperationError(f"timed out after {timeout:g}s waiting for {what}: it {last_state}")
        sleep(poll_interval)
