"""cert-manager Certificates (rule: `rules.acme_wildcard_dns01`)."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin
from envspec.spec.base import plain


def units(b: Builder) -> None:
    for cert_name, cert in b.spec.certificates.items():
        b.add("certificate", "certificate.yaml.j2", plain(cert), ("certificates", cert_name), cert_name)


COMPONENT = Builtin("certificate", ("certificates",), ("Certificate",), units)
