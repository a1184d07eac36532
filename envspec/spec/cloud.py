"""What an environment declares about DigitalOcean: its Kubernetes cluster and its DNS records.

These models only describe intent; `envspec.cloud` compares them with what the
DigitalOcean account holds. They import nothing heavier than pydantic, because
the spec is loaded by every command, including `envspec render`.

Field names are the YAML keys (camelCase, `nodePool`), like the rest of the
spec, so an error's dotted path is exactly what the user wrote.
"""

# No `from __future__ import annotations` here: pydantic would compile and evaluate each field's
# annotation string when it creates the class, on every start (the models are imported by every command).

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from envspec.spec.base import SpecModel

# A DigitalOcean slug: "nyc3", "s-2vcpu-4gb", "1.34.1-do.0".
_SLUG = r"^[a-z0-9][a-z0-9.\-]*$"
# One DNS label, lowercase letters/digits/hyphens (RFC 1123). Underscores are
# refused on purpose: envspec's ownership TXT records live under `_envspec-…`
# names, and keeping `_` out of declared names means they can never collide.
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

RecordType = Literal["A", "AAAA", "CNAME"]


def _check_hostname(value: str, what: str) -> str:
    """A lowercase DNS name made of RFC 1123 labels (an optional trailing dot is kept)."""
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        raise ValueError(f"{what} must be a DNS name of 1 to 253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise ValueError(
                f"{what} {value!r}: label {label!r} must be 1-63 lowercase letters, digits or '-', "
                "not starting or ending with '-'"
            )
    return value


class Autoscale(SpecModel):
    """Bounds for DigitalOcean's cluster autoscaler; while it is on, the pool's count is its business."""

    min: int = Field(ge=0, le=512)
    max: int = Field(ge=1, le=512)

    @model_validator(mode="after")
    def _ordered(self) -> "Autoscale":
        if self.min > self.max:
            raise ValueError(f"autoscale.min ({self.min}) must not exceed autoscale.max ({self.max})")
        return self


class NodePool(SpecModel):
    name: str = Field(min_length=1, max_length=63)
    size: str = Field(pattern=_SLUG, description="Droplet size slug, e.g. s-2vcpu-4gb")
    count: int = Field(ge=1, le=512)
    autoscale: Autoscale | None = None

    @field_validator("name")
    @classmethod
    def _name_is_label(cls, value: str) -> str:
        if not _LABEL.match(value):
            raise ValueError("node pool name must be lowercase letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _count_within_bounds(self) -> "NodePool":
        scale = self.autoscale
        if scale is not None and not scale.min <= self.count <= scale.max:
            raise ValueError(f"count ({self.count}) must lie within autoscale min..max ({scale.min}..{scale.max})")
        return self


class Cluster(SpecModel):
    """A DOKS cluster, found by name. envspec creates it when missing and never deletes it."""

    name: str = Field(min_length=1, max_length=255)
    region: str = Field(pattern=_SLUG, description="Region slug, e.g. nyc3")
    version: str = Field(pattern=_SLUG, description="DOKS version slug, e.g. 1.34.1-do.0")
    vpc: str | None = Field(default=None, pattern=_UUID, description="VPC UUID; null means the region's default VPC")
    nodePool: NodePool
    tags: tuple[str, ...] = Field(default=(), strict=False)  # a YAML list; items stay strict

    @field_validator("name")
    @classmethod
    def _name_is_dns(cls, value: str) -> str:
        # DigitalOcean builds the kube context name `do-<region>-<name>` from it.
        if not re.match(r"^[a-z0-9]([a-z0-9.\-]*[a-z0-9])?$", value):
            raise ValueError("cluster name must be lowercase letters, digits, '.' and '-'")
        return value


class ServiceRef(SpecModel):
    """A Service of type LoadBalancer whose external address the records point at."""

    namespace: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=63)


class GatewayRef(SpecModel):
    """A Gateway API Gateway; the records point at the address its controller publishes in status.

    Preferred over naming the Service: NGINX Gateway Fabric 2.x provisions one
    data-plane LoadBalancer Service per Gateway, in the Gateway's namespace,
    named after the Gateway and its class (`<gateway>-<gatewayclass>`), and
    copies the load balancer's address into `status.addresses`. Reading the
    Gateway (as external-dns's gateway source does) survives a renamed class or
    a chart upgrade that changes that naming.
    """

    namespace: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)


_TARGET_KINDS = ("gateway", "service", "ip", "hostname")


class Target(SpecModel):
    """Exactly one of: a Gateway, a LoadBalancer Service, a literal IP address, a literal hostname (for CNAME)."""

    gateway: GatewayRef | None = None
    service: ServiceRef | None = None
    ip: str | None = None
    hostname: str | None = None

    @field_validator("ip")
    @classmethod
    def _ip_literal(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None

    @field_validator("hostname")
    @classmethod
    def _hostname_literal(cls, value: str | None) -> str | None:
        return None if value is None else _check_hostname(value, "hostname")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Target":
        given = [key for key in _TARGET_KINDS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("target needs exactly one of gateway, service, ip, hostname")
        return self

    @property
    def in_cluster(self) -> bool:
        """True when the address is read from the cluster (a Gateway or a Service), so a kubeconfig is needed."""
        return self.gateway is not None or self.service is not None


class Record(SpecModel):
    """A record name relative to the domain: `@` (apex), `*`, `www`, `*.pr`."""

    name: str = Field(min_length=1)
    type: RecordType = "A"
    ttl: int | None = Field(default=None, ge=30, le=86400, description="Overrides dns.ttl for this record")

    @field_validator("name")
    @classmethod
    def _relative_name(cls, value: str) -> str:
        if value == "@":
            return value
        if value.endswith("."):
            raise ValueError(f"record name {value!r} must be relative to the domain, without a trailing dot")
        labels = value.split(".")
        if labels[0] == "*":
            labels = labels[1:]
        if "*" in labels:
            raise ValueError(f"record name {value!r}: '*' is only allowed as the leftmost label")
        if labels:
            _check_hostname(".".join(labels), "record name")
        return value


class Dns(SpecModel):
    """Records envspec keeps pointed at the target, in a domain hosted by DigitalOcean DNS."""

    domain: str
    ttl: int = Field(default=300, ge=30, le=86400)
    target: Target
    records: tuple[Record, ...] = Field(min_length=1, strict=False)  # a YAML list; items stay strict

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value.endswith("."):
            raise ValueError("domain must not end with a dot")
        _check_hostname(value, "domain")
        if "." not in value:
            raise ValueError(f"domain {value!r} must have at least two labels, e.g. example.com")
        return value

    @model_validator(mode="after")
    def _records_consistent(self) -> "Dns":
        seen: dict[str, set[str]] = {}
        for record in self.records:
            if record.name == self.domain or record.name.endswith("." + self.domain):
                short = record.name[: -len(self.domain)].rstrip(".") or "@"
                raise ValueError(
                    f"record name {record.name!r} repeats the domain; names are relative, write {short!r}"
                )
            types = seen.setdefault(record.name, set())
            if record.type in types:
                raise ValueError(f"record {record.name} {record.type} is declared twice")
            types.add(record.type)
            if "CNAME" in types and len(types) > 1:
                raise ValueError(f"record {record.name}: a CNAME cannot share its name with other records")
            if record.type == "CNAME" and record.name == "@":
                raise ValueError("a CNAME cannot live at the zone apex '@'")
            self._check_target_fits(record)
        return self

    def _check_target_fits(self, record: Record) -> None:
        """Catch literal targets that can never fit the record type; a cluster address is checked when resolved."""
        if self.target.ip is not None:
            version = ipaddress.ip_address(self.target.ip).version
            wanted = {"A": 4, "AAAA": 6}.get(record.type)
            if wanted != version:
                raise ValueError(f"record {record.name} {record.type} cannot point at IPv{version} address {self.target.ip}")
        if self.target.hostname is not None and record.type != "CNAME":
            raise ValueError(f"record {record.name} {record.type} needs an IP target; a hostname target needs type CNAME")

    def ttl_of(self, record: Record) -> int:
        return record.ttl if record.ttl is not None else self.ttl


class DigitalOcean(SpecModel):
    """The `digitalocean:` block of an environment."""

    cluster: Cluster | None = None
    dns: Dns | None = None

    @model_validator(mode="after")
    def _something_declared(self) -> "DigitalOcean":
        if self.cluster is None and self.dns is None:
            raise ValueError("digitalocean needs a cluster, dns, or both")
        return self
