"""PersistentVolumeClaims."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin
from envspec.spec.base import plain


def units(b: Builder) -> None:
    for claim_name, claim in b.spec.claims.items():
        view = {**plain(claim), "namespace": claim.namespace or b.spec.namespace.name}
        b.add("claim", "pvc.yaml.j2", view, ("claims", claim_name), claim_name)


COMPONENT = Builtin("claim", ("claims",), ("PersistentVolumeClaim",), units)
