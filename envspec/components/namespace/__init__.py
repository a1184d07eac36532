"""The environment's namespace: the Namespace (when the environment owns it), its ResourceQuota and
its NetworkPolicy (deny-all with the declared exceptions)."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin
from envspec.spec.base import plain


def units(b: Builder) -> None:
    ns = b.spec.namespace
    if ns.create:
        b.add("namespace", "namespace.yaml.j2", {"name": ns.name}, ("namespace",), ns.name)
    if ns.quota:
        b.add("namespace", "resourcequota.yaml.j2", {"namespace": ns.name, **plain(ns.quota)}, ("namespace", "quota"))
    if ns.networkPolicy:
        view = {"namespace": ns.name, **plain(ns.networkPolicy)}
        b.add("namespace", "networkpolicy.yaml.j2", view, ("namespace", "networkPolicy"))


COMPONENT = Builtin("namespace", ("namespace",), ("Namespace", "ResourceQuota", "NetworkPolicy"), units)
