"""The route component's rule: a route nobody serves is silently ignored by the Gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from envspec.checks.context import RuleContext


def _covers(listener_host: str | None, host: str) -> bool:
    if not listener_host:
        return True
    if listener_host.startswith("*."):
        suffix = listener_host[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)] and len(host) > len(suffix)
    return listener_host == host


def route_parents(ctx: RuleContext) -> None:
    """A route attached to a missing gateway or listener, or outside the listener's hostname, is silently ignored."""
    gateways = {(s.gateway.namespace, s.gateway.name): s.gateway for s in ctx.all_specs() if s.gateway}
    for name, route in ctx.spec.routes.items():
        ref = route.gateway
        gateway = gateways.get((ref.namespace, ref.name))
        if gateway is None and ref.external:
            continue  # a Gateway owned outside envspec: nothing here to check its listeners against
        if gateway is None:
            known = ", ".join(f"{ns}/{n}" for ns, n in sorted(gateways)) or "none"
            ctx.error("route-parents", ("routes", name, "gateway"), f"no Gateway {ref.namespace}/{ref.name} is declared (known: {known})")
            continue
        listeners = {l.name: l for l in gateway.listeners}
        for listener_name, section in [(ref.listener, "listener"), (route.httpsRedirectFrom, "httpsRedirectFrom")]:
            if listener_name is None:
                continue
            path = ("routes", name, "gateway", "listener") if section == "listener" else ("routes", name, "httpsRedirectFrom")
            listener = listeners.get(listener_name)
            if listener is None:
                ctx.error("route-parents", path, f"Gateway {ref.namespace}/{ref.name} has no listener {listener_name!r} (has: {', '.join(listeners)})")
                continue
            for index, host in enumerate(route.hostnames):
                if not _covers(listener.hostname, host):
                    ctx.error(
                        "route-parents",
                        ("routes", name, "hostnames", index),
                        f"hostname {host!r} is not covered by listener {listener_name} ({listener.hostname})",
                    )
