"""ConfigMaps (name -> data)."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin


def units(b: Builder) -> None:
    for cname, data in b.spec.configMaps.items():
        b.add("config", "configmap.yaml.j2", {"namespace": b.spec.namespace.name, "data": data}, ("configMaps", cname), cname)


COMPONENT = Builtin("config", ("configMaps",), ("ConfigMap",), units)
