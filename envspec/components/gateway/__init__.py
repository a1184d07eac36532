"""A Gateway API Gateway, and its namespace when the environment creates it."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin
from envspec.spec.base import plain


def units(b: Builder) -> None:
    gateway = b.spec.gateway
    if gateway is None:
        return
    if gateway.createNamespace:
        b.add("namespace", "namespace.yaml.j2", {"name": gateway.namespace}, ("gateway", "namespace"), gateway.namespace)
    b.add("gateway", "gateway.yaml.j2", plain(gateway), ("gateway",), gateway.name)


COMPONENT = Builtin("gateway", ("gateway",), ("Namespace", "Gateway"), units)
