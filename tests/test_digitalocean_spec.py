"""The `digitalocean:` block: what it accepts and the mistakes it catches."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from envspec.spec.cloud import DigitalOcean


def block(**overrides: Any) -> dict[str, Any]:
    dns: dict[str, Any] = {
        "domain": "aphiria.com",
        "ttl": 300,
        "target": {"service": {"namespace": "nginx-gateway", "name": "nginx-gateway-nginx-gateway-fabric"}},
        "records": [{"name": "*.pr", "type": "A"}, {"name": "*.pr-api", "type": "A"}],
    }
    dns.update(overrides.pop("dns", {}))
    cluster: dict[str, Any] = {
        "name": "aphiria-com-preview-cluster",
        "region": "nyc3",
        "version": "1.34.1-do.0",
        "nodePool": {"name": "default", "size": "s-2vcpu-4gb", "count": 2, "autoscale": {"min": 1, "max": 3}},
    }
    cluster.update(overrides.pop("cluster", {}))
    return {"cluster": cluster, "dns": dns, **overrides}


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        DigitalOcean.model_validate(data)
    return str(info.value)


def test_the_recommended_preview_block_validates() -> None:
    spec = DigitalOcean.model_validate(block())
    assert spec.cluster is not None and spec.cluster.nodePool.autoscale is not None
    assert spec.cluster.nodePool.autoscale.max == 3
    assert spec.dns is not None and [r.name for r in spec.dns.records] == ["*.pr", "*.pr-api"]
    assert spec.dns.ttl_of(spec.dns.records[0]) == 300


def test_production_names_and_a_literal_ip_validate() -> None:
    spec = DigitalOcean.model_validate(block(dns={
        "target": {"ip": "203.0.113.10"},
        "records": [{"name": "@"}, {"name": "www"}, {"name": "api", "ttl": 60}],
    }))
    assert spec.dns is not None
    assert [spec.dns.ttl_of(r) for r in spec.dns.records] == [300, 300, 60]


@pytest.mark.parametrize(
    ("dns", "message"),
    [
        ({"records": [{"name": "WWW"}]}, "lowercase"),
        ({"records": [{"name": "a.*.pr"}]}, "leftmost"),
        ({"records": [{"name": "www."}]}, "trailing dot"),
        ({"records": [{"name": "_acme"}]}, "lowercase letters"),
        ({"records": [{"name": "www.aphiria.com"}]}, "write 'www'"),
        ({"records": [{"name": "www", "type": "MX"}]}, "'A', 'AAAA' or 'CNAME'"),
        ({"records": [{"name": "www"}, {"name": "www"}]}, "declared twice"),
        ({"records": [{"name": "www", "type": "CNAME"}, {"name": "www", "type": "AAAA"}]}, "cannot share"),
        ({"records": [{"name": "@", "type": "CNAME"}], "target": {"hostname": "lb.example.net"}}, "apex"),
        ({"ttl": 10}, "greater than or equal to 30"),
        ({"ttl": 90000}, "less than or equal to 86400"),
        ({"target": {"ip": "203.0.113.300"}}, "not an IPv4 or IPv6 address"),
        ({"target": {"ip": "2001:db8::1"}}, "cannot point at IPv6"),
        ({"target": {"hostname": "lb.example.net"}}, "needs an IP target"),
        ({"target": {}}, "exactly one of"),
        ({"target": {"ip": "203.0.113.1", "hostname": "x.example"}}, "exactly one of"),
        ({"target": {"gateway": {"namespace": "nginx-gateway", "name": "nginx-gateway"},
                     "service": {"namespace": "nginx-gateway", "name": "nginx-gateway-nginx"}}},
         "exactly one of gateway, service, ip, hostname"),
        ({"target": {"gateway": {"name": "nginx-gateway"}}}, "namespace"),
        ({"target": {"gateway": {"namespace": "nginx-gateway", "name": "g", "listener": "https"}}},
         "Extra inputs are not permitted"),
        ({"domain": "localhost"}, "at least two labels"),
        ({"records": []}, "at least 1 item"),
    ],
)
def test_dns_mistakes_are_caught(dns: dict[str, Any], message: str) -> None:
    assert message in error_of(block(dns=dns))


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"region": ""}, "String should match pattern"),
        ({"nodePool": {"name": "default", "size": "", "count": 2}}, "String should match pattern"),
        ({"nodePool": {"name": "default", "size": "s-1vcpu-2gb", "count": 5, "autoscale": {"min": 1, "max": 3}}},
         "within autoscale"),
        ({"nodePool": {"name": "default", "size": "s-1vcpu-2gb", "count": 2, "autoscale": {"min": 3, "max": 2}}},
         "must not exceed"),
        ({"vpc": "not-a-uuid"}, "String should match pattern"),
        ({"node_pool": {"name": "x", "size": "s", "count": 1}}, "Extra inputs are not permitted"),
        ({"name": "Aphiria_Cluster"}, "cluster name"),
    ],
)
def test_cluster_mistakes_are_caught(cluster: dict[str, Any], message: str) -> None:
    assert message in error_of(block(cluster=cluster))


def test_an_empty_block_is_refused() -> None:
    assert "needs a cluster, dns, or both" in error_of({})


def test_ipv6_literal_is_normalised() -> None:
    spec = DigitalOcean.model_validate(block(dns={"target": {"ip": "2001:DB8:0::1"}, "records": [{"name": "v6", "type": "AAAA"}]}))
    assert spec.dns is not None and spec.dns.target.ip == "2001:db8::1"


def test_a_gateway_target_validates_and_needs_the_cluster() -> None:
    spec = DigitalOcean.model_validate(block(dns={"target": {"gateway": {"namespace": "nginx-gateway", "name": "nginx-gateway"}}}))
    assert spec.dns is not None and spec.dns.target.gateway is not None
    assert (spec.dns.target.gateway.namespace, spec.dns.target.gateway.name) == ("nginx-gateway", "nginx-gateway")
    assert spec.dns.target.in_cluster
    literal = DigitalOcean.model_validate(block(dns={"target": {"ip": "203.0.113.10"}}))
    assert literal.dns is not None and not literal.dns.target.in_cluster
