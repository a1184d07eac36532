"""The certificate component's rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from envspec.checks.context import RuleContext


def acme_wildcard_dns01(ctx: RuleContext) -> None:
    """Let's Encrypt issues wildcard certificates only through DNS-01, which needs the DNS provider's token."""
    issuers = {name: issuer for s in ctx.all_specs() for name, issuer in s.issuers.items()}
    secrets = {name for s in ctx.all_specs() for name in s.secrets}
    for name, cert in ctx.spec.certificates.items():
        issuer = issuers.get(cert.issuer)
        if issuer is None:
            ctx.error("acme-wildcard-dns01", ("certificates", name, "issuer"), f"unknown issuer {cert.issuer!r}")
            continue
        wildcards = [i for i, host in enumerate(cert.dnsNames) if host.startswith("*.")]
        if not wildcards or issuer.acme is None:
            continue
        if issuer.acme.dns01 is None:
            ctx.error(
                "acme-wildcard-dns01",
                ("certificates", name, "dnsNames", wildcards[0]),
                f"wildcard {cert.dnsNames[wildcards[0]]!r} needs a DNS-01 solver, but issuer {cert.issuer} has none",
            )
        elif issuer.acme.dns01.tokenSecret not in secrets:
            ctx.error(
                "acme-wildcard-dns01",
                ("issuers", cert.issuer, "acme", "dns01", "tokenSecret") if cert.issuer in ctx.spec.issuers else ("certificates", name, "issuer"),
                f"the DNS-01 token Secret {issuer.acme.dns01.tokenSecret!r} is not declared under secrets:",
            )
