"""Secrets. Their values are built by `envspec apply` from environment variables and never rendered
(see envspec.kube.secrets); only an `external:` secret renders, as an ExternalSecret."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin
from envspec.spec.base import plain


def units(b: Builder) -> None:
    for sname, secret in b.spec.secrets.items():
        if secret.external is not None:
            view = {"namespace": secret.namespace or b.spec.namespace.name, **plain(secret.external)}
            b.add("secret", "externalsecret.yaml.j2", view, ("secrets", sname), sname)


COMPONENT = Builtin("secret", ("secrets",), ("ExternalSecret",), units)
