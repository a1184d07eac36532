"""cert-manager ClusterIssuers: ACME (DNS-01 or HTTP-01) or self-signed."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin


def units(b: Builder) -> None:
    for issuer_name, issuer in b.spec.issuers.items():
        b.add("issuer", "clusterissuer.yaml.j2", issuer.model_dump(), ("issuers", issuer_name), issuer_name)


COMPONENT = Builtin("issuer", ("issuers",), ("ClusterIssuer",), units)
