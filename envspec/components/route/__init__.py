"""HTTPRoutes to an app's Service (or redirects), with optional HTTP-to-HTTPS redirect routes
(rule: `rules.route_parents`)."""

from __future__ import annotations

from typing import Any

from envspec.components.base import Builder, Builtin
from envspec.spec.base import plain
from envspec.spec.models import Environment


def route_views(name: str, spec: Environment) -> list[dict[str, Any]]:
    route = spec.routes[name]
    namespace = route.namespace or spec.namespace.name
    parent = {"name": route.gateway.name, "namespace": route.gateway.namespace, "sectionName": route.gateway.listener}
    backend = None
    if route.backend is not None:
        app = spec.apps[route.backend.app]
        service_port = (next(iter(app.service.ports.values())).port if app.service.ports else app.service.port) if app.service else 80
        port = route.backend.port or service_port
        backend = {"name": route.backend.app, "port": port}
    redirect = plain(route.redirect, exclude_none=True) if route.redirect else None
    views = [{"name": name, "namespace": namespace, "hostnames": route.hostnames, "parent": parent, "backend": backend, "redirect": redirect}]
    if route.httpsRedirectFrom:
        views.append(
            {
                "name": f"{name}-https-redirect",
                "namespace": namespace,
                "hostnames": route.hostnames,
                "parent": {**parent, "sectionName": route.httpsRedirectFrom},
                "backend": None,
                "redirect": {"scheme": "https", "statusCode": 301},
            }
        )
    return views


def units(b: Builder) -> None:
    for route_name in b.spec.routes:
        for view in route_views(route_name, b.spec):
            b.add("route", "httproute.yaml.j2", view, ("routes", route_name), view["name"])


COMPONENT = Builtin("route", ("routes",), ("HTTPRoute",), units)
