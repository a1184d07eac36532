"""cert-manager ClusterIssuers: ACME (DNS-01 or HTTP-01) or self-signed."""

from __future__ import annotations

from typing import Any

from envspec.components.base import Builder, Builtin
from envspec.spec.base import plain

# DNS-01 providers: cert-manager's solver key and the field naming the token's Secret reference.
DNS01_PROVIDERS: dict[str, tuple[str, str]] = {
    "digitalocean": ("digitalocean", "tokenSecretRef"),
    "cloudflare": ("cloudflare", "apiTokenSecretRef"),
}


def issuer_view(issuer: Any) -> dict[str, Any]:
    view = plain(issuer)
    dns01 = issuer.acme.dns01 if issuer.acme else None
    if dns01 is not None:
        solver, ref = DNS01_PROVIDERS[dns01.provider]
        view["acme"]["dns01"] = {solver: {ref: {"name": dns01.tokenSecret, "key": dns01.tokenKey}}}
    return view


def units(b: Builder) -> None:
    for issuer_name, issuer in b.spec.issuers.items():
        b.add("issuer", "clusterissuer.yaml.j2", issuer_view(issuer), ("issuers", issuer_name), issuer_name)


COMPONENT = Builtin("issuer", ("issuers",), ("ClusterIssuer",), units)
