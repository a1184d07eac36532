"""DNS sync against the fake DigitalOcean API (and, for Service targets, the fake Kubernetes API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envspec.cloud.digitalocean import DigitalOceanClient, RetryPolicy
from envspec.cloud.dns import owner_record_data, owner_record_name, parse_owner_record, sync_dns
from envspec.errors import EXIT_OPERATION, OperationError, SpecError
from envspec.spec.cloud import Dns
from tests.fakes.do_server import FakeDigitalOcean, fake_do  # noqa: F401  (fixture)
from tests.fakes.kube_server import FakeKube, fake_kube  # noqa: F401  (fixture)

DOMAIN = "aphiria.com"
GATEWAY = {"namespace": "nginx-gateway", "name": "nginx-gateway-nginx-gateway-fabric"}


def dns_spec(*names: str, target: dict[str, Any] | None = None, ttl: int = 300) -> Dns:
    return Dns.model_validate({
        "domain": DOMAIN,
        "ttl": ttl,
        "target": target or {"ip": "203.0.113.10"},
        "records": [{"name": n, "type": "A"} for n in names or ("*.pr", "*.pr-api")],
    })


def sync(spec: Dns, owner: str = "preview-base", **kwargs: Any) -> tuple[Any, list[str]]:
    lines: list[str] = []
    client = DigitalOceanClient.from_env(policy=RetryPolicy(), sleep=lambda s: None)
    plan = sync_dns(spec, owner=owner, client=client, echo=lines.append, **kwargs)
    return plan, lines


def state(fake: FakeDigitalOcean) -> set[tuple[str, str, str, int]]:
    return {(r["name"], r["type"], r["data"], r["ttl"]) for r in fake.records(DOMAIN)}


@pytest.fixture
def zone(fake_do: FakeDigitalOcean) -> FakeDigitalOcean:
    fake_do.add_domain(DOMAIN)
    # Records envspec did not create: they must survive everything below.
    fake_do.add_record(DOMAIN, "A", "@", "198.51.100.1")
    fake_do.add_record(DOMAIN, "A", "www", "198.51.100.1")
    fake_do.add_record(DOMAIN, "MX", "@", "mail.example.net.")
    fake_do.add_record(DOMAIN, "TXT", "@", "v=spf1 -all")
    fake_do.add_record(DOMAIN, "TXT", "_envspec-a.www", "some note someone left")
    return fake_do


FOREIGN = {
    ("@", "A", "198.51.100.1", 1800),
    ("www", "A", "198.51.100.1", 1800),
    ("@", "MX", "mail.example.net.", 1800),
    ("@", "TXT", "v=spf1 -all", 1800),
    ("_envspec-a.www", "TXT", "some note someone left", 1800),
}


def test_first_sync_creates_records_with_ownership_then_second_sync_changes_nothing(zone: FakeDigitalOcean) -> None:
    plan, lines = sync(dns_spec())
    assert [(c.action, c.name) for c in plan.changes] == [("create", "*.pr"), ("create", "*.pr-api")]
    assert state(zone) == FOREIGN | {
        ("*.pr", "A", "203.0.113.10", 300),
        ("*.pr-api", "A", "203.0.113.10", 300),
        ("_envspec-a._wildcard.pr", "TXT", "heritage=envspec,envspec/owner=preview-base,envspec/record=A *.pr", 300),
        ("_envspec-a._wildcard.pr-api", "TXT",
         "heritage=envspec,envspec/owner=preview-base,envspec/record=A *.pr-api", 300),
    }
    assert "  + create    *.pr A 203.0.113.10 ttl 300" in lines
    posts = [e.body for e in zone.requests_to("POST", ".*")]
    assert [b["type"] for b in posts] == ["TXT", "A", "TXT", "A"]  # ownership first

    zone.log.clear()
    plan, lines = sync(dns_spec())
    assert [c.action for c in plan.changes] == ["unchanged", "unchanged"]
    assert zone.writes() == []
    assert lines[-1] == "  2 unchanged"


def test_ip_change_updates_only_the_declared_records(zone: FakeDigitalOcean) -> None:
    sync(dns_spec())
    zone.log.clear()
    plan, lines = sync(dns_spec(target={"ip": "203.0.113.77"}))
    assert [c.action for c in plan.changes] == ["update", "update"]
    assert "  ~ update    *.pr A 203.0.113.10 ttl 300 -> 203.0.113.77 ttl 300" in lines
    assert {e.method for e in zone.writes()} == {"PUT"}
    assert len(zone.writes()) == 2
    after = state(zone)
    assert FOREIGN <= after
    assert ("*.pr", "A", "203.0.113.77", 300) in after and ("*.pr-api", "A", "203.0.113.77", 300) in after


def test_ttl_change_is_an_update(zone: FakeDigitalOcean) -> None:
    sync(dns_spec())
    plan, _ = sync(dns_spec(ttl=600))
    assert [c.action for c in plan.changes] == ["update", "update"]
    assert ("*.pr", "A", "203.0.113.10", 600) in state(zone)


def test_a_declared_name_held_by_someone_else_stops_the_sync_before_any_write(zone: FakeDigitalOcean) -> None:
    with pytest.raises(OperationError) as info:
        sync(dns_spec("www", "new"), owner="production")
    assert info.value.exit_code == EXIT_OPERATION
    text = str(info.value)
    assert "www.aphiria.com A exists but envspec did not create it; not touching it" in text
    assert ('add a TXT record _envspec-a.www with data '
            '"heritage=envspec,envspec/owner=production,envspec/record=A www"') in text
    assert "nothing was written" in text
    assert zone.writes() == []
    assert state(zone) == FOREIGN


def test_records_owned_by_another_environment_are_left_alone(zone: FakeDigitalOcean) -> None:
    sync(dns_spec("api"), owner="production")
    zone.log.clear()
    with pytest.raises(OperationError, match="owned by envspec environment 'production'"):
        sync(dns_spec("api", target={"ip": "203.0.113.99"}), owner="preview-base")
    assert zone.writes() == []
    # ...and the other environment's prune never touches them either.
    sync(dns_spec("other"), owner="preview-base", prune=True)
    assert ("api", "A", "203.0.113.10", 300) in state(zone)


def test_an_adopted_record_is_updated_in_place(zone: FakeDigitalOcean) -> None:
    """A TXT written by hand hands an existing record to envspec."""
    zone.add_record(DOMAIN, "TXT", "_envspec-a", owner_record_data("production", "@", "A"))
    plan, _ = sync(dns_spec("@", target={"ip": "203.0.113.5"}), owner="production")
    assert [c.action for c in plan.changes] == ["update"]
    assert ("@", "A", "203.0.113.5", 300) in state(zone) and ("www", "A", "198.51.100.1", 1800) in state(zone)


def test_prune_removes_only_owned_records_the_spec_dropped(zone: FakeDigitalOcean) -> None:
    sync(dns_spec("*.pr", "*.pr-api", "old"))
    zone.log.clear()

    plan, lines = sync(dns_spec("*.pr", "*.pr-api"))
    assert [c.action for c in plan.changes][0] == "orphan"
    assert any("? orphan    old A: owned by this environment but no longer declared; --prune deletes it" in l
               for l in lines)
    assert zone.writes() == []

    plan, lines = sync(dns_spec("*.pr", "*.pr-api"), prune=True)
    assert [(c.action, c.name) for c in plan.changes] == [("prune", "old"), ("unchanged", "*.pr"),
                                                           ("unchanged", "*.pr-api")]
    assert [e.method for e in zone.writes()] == ["DELETE", "DELETE"]
    after = state(zone)
    assert not any(name in ("old", "_envspec-a.old") for name, *_ in after)
    assert FOREIGN <= after
    assert ("*.pr", "A", "203.0.113.10", 300) in after


def test_dry_run_prints_the_plan_and_writes_nothing(zone: FakeDigitalOcean) -> None:
    sync(dns_spec("*.pr", "gone"))
    zone.log.clear()
    before = state(zone)
    plan, lines = sync(dns_spec("*.pr", "*.pr-api", target={"ip": "203.0.113.11"}), dry_run=True, prune=True)
    assert sorted(c.action for c in plan.changes) == ["create", "prune", "update"]
    assert lines[-1] == "dry run: nothing written"
    assert zone.writes() == []
    assert state(zone) == before


def test_sync_works_across_many_pages_of_records(zone: FakeDigitalOcean) -> None:
    zone.max_per_page = 2
    for i in range(7):
        zone.add_record(DOMAIN, "A", f"host{i}", f"198.51.100.{i + 10}")
    sync(dns_spec())
    plan, _ = sync(dns_spec())
    assert [c.action for c in plan.changes] == ["unchanged", "unchanged"]
    assert len(zone.records(DOMAIN)) == 5 + 7 + 4


def test_a_second_record_at_an_owned_name_is_a_conflict_and_nothing_is_deleted(zone: FakeDigitalOcean) -> None:
    """The TXT claims the name, not a record: with two records envspec cannot tell which it wrote."""
    sync(dns_spec("*.pr"))
    zone.add_record(DOMAIN, "A", "*.pr", "198.51.100.50", ttl=300)  # added by hand
    zone.log.clear()
    with pytest.raises(OperationError) as info:
        sync(dns_spec("*.pr", target={"ip": "203.0.113.77"}))
    text = str(info.value)
    assert "*.pr.aphiria.com A: it holds 2 records: 203.0.113.10 (id" in text and "198.51.100.50 (id" in text
    assert "never deletes records it cannot tell it created" in text and "nothing was written" in text
    assert zone.writes() == []
    assert {(r["data"]) for r in zone.records(DOMAIN) if r["name"] == "*.pr"} == {"203.0.113.10", "198.51.100.50"}


def test_even_an_identical_duplicate_is_reported_not_deleted(zone: FakeDigitalOcean) -> None:
    sync(dns_spec("*.pr"))
    zone.add_record(DOMAIN, "A", "*.pr", "203.0.113.10", ttl=300)  # e.g. a retried create that did land
    zone.log.clear()
    with pytest.raises(OperationError, match="it holds 2 records"):
        sync(dns_spec("*.pr"))
    assert zone.writes() == []
    assert len([r for r in zone.records(DOMAIN) if r["name"] == "*.pr"]) == 2


def test_prune_leaves_a_name_holding_several_records_alone(zone: FakeDigitalOcean) -> None:
    sync(dns_spec("*.pr", "old"))
    zone.add_record(DOMAIN, "A", "old", "198.51.100.60", ttl=300)  # someone else's record at our name
    zone.log.clear()
    plan, lines = sync(dns_spec("*.pr"), prune=True)
    assert [(c.action, c.name) for c in plan.changes] == [("orphan", "old"), ("unchanged", "*.pr")]
    assert any("? orphan    old A: owned by this environment but no longer declared; it holds 2 records" in line
               and "deletes none of them" in line for line in lines)
    assert zone.writes() == []
    assert {r["data"] for r in zone.records(DOMAIN) if r["name"] == "old"} == {"203.0.113.10", "198.51.100.60"}
    assert any(r["name"] == "_envspec-a.old" for r in zone.records(DOMAIN))  # the claim stays too


def test_an_a_record_cannot_be_created_beside_a_foreign_cname(zone: FakeDigitalOcean) -> None:
    zone.add_record(DOMAIN, "CNAME", "docs", "www.aphiria.com.")
    with pytest.raises(OperationError, match="docs.aphiria.com is a CNAME"):
        sync(dns_spec("docs"))
    assert zone.writes() == []


def test_a_missing_domain_is_named(fake_do: FakeDigitalOcean) -> None:
    with pytest.raises(OperationError, match="domain aphiria.com is not managed by this DigitalOcean account"):
        sync(dns_spec())


def test_ownership_names_and_values_round_trip() -> None:
    assert owner_record_name("@", "A") == "_envspec-a"
    assert owner_record_name("*", "AAAA") == "_envspec-aaaa._wildcard"
    assert owner_record_name("*.pr", "A") == "_envspec-a._wildcard.pr"
    assert owner_record_name("www", "CNAME") == "_envspec-cname.www"
    claim = parse_owner_record('"' + owner_record_data("preview-base", "*.pr", "A") + '"')
    assert claim is not None and (claim.owner, claim.name, claim.type) == ("preview-base", "*.pr", "A")
    assert parse_owner_record("heritage=external-dns,external-dns/owner=default") is None
    with pytest.raises(SpecError):
        sync_dns(dns_spec(), owner="bad,owner", client=None)


# -- Service targets: the gateway's LoadBalancer address, read from the (fake) cluster ----------


def kube_api(fake: FakeKube, tmp_path: Path) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(str(fake.write_kubeconfig(tmp_path / "kubeconfig")), client_configuration=configuration)
    configuration.retries = False
    return client.ApiClient(configuration)


def gateway_service(fake: FakeKube, kind: str = "LoadBalancer") -> None:
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY["namespace"]}})
    fake.put({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": GATEWAY["name"], "namespace": GATEWAY["namespace"]},
        "spec": {"type": kind, "ports": [{"port": 443}]},
    })


def set_ingress(fake: FakeKube, entry: dict[str, str]) -> None:
    fake.set_status("v1", "Service", GATEWAY["name"], GATEWAY["namespace"], {"loadBalancer": {"ingress": [entry]}})


def test_service_target_waits_for_the_load_balancer_ip(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path
) -> None:
    gateway_service(fake_kube)
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the address appears after the second poll
        polls.append(seconds)
        if len(polls) == 2:
            set_ingress(fake_kube, {"ip": "203.0.113.7"})

    plan, _ = sync(dns_spec(target={"service": GATEWAY}), api_client=kube_api(fake_kube, tmp_path),
                   poll_interval=0.01, timeout=30, sleep=sleep)
    assert polls == [0.01, 0.01]
    assert plan.target == "203.0.113.7"
    assert ("*.pr", "A", "203.0.113.7", 300) in state(zone)


def test_service_without_an_address_times_out_and_writes_nothing(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path
) -> None:
    gateway_service(fake_kube)
    with pytest.raises(OperationError) as info:
        sync(dns_spec(target={"service": GATEWAY}), api_client=kube_api(fake_kube, tmp_path),
             poll_interval=0.01, timeout=0.05)
    assert str(info.value) == (
        "timed out after 0.05s waiting for Service nginx-gateway/nginx-gateway-nginx-gateway-fabric: "
        "it has no load balancer address yet"
    )
    assert zone.log == []


def test_a_missing_service_is_waited_for_then_named(zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path) -> None:
    with pytest.raises(OperationError, match="nginx-gateway-fabric: it not found"):
        sync(dns_spec(target={"service": GATEWAY}), api_client=kube_api(fake_kube, tmp_path),
             poll_interval=0.01, timeout=0.03)


def test_a_cluster_ip_service_is_refused(zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path) -> None:
    gateway_service(fake_kube, kind="ClusterIP")
    with pytest.raises(OperationError, match="has type ClusterIP, not LoadBalancer"):
        sync(dns_spec(target={"service": GATEWAY}), api_client=kube_api(fake_kube, tmp_path), timeout=5)


def test_a_hostname_address_cannot_back_a_records(zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path) -> None:
    gateway_service(fake_kube)
    set_ingress(fake_kube, {"hostname": "abc.elb.example.net"})
    with pytest.raises(OperationError, match="needs an IPv4 address, but the target is the hostname"):
        sync(dns_spec(target={"service": GATEWAY}), api_client=kube_api(fake_kube, tmp_path))
    assert zone.writes() == []


def test_a_service_target_without_cluster_access_is_a_user_error(zone: FakeDigitalOcean) -> None:
    with pytest.raises(SpecError, match="needs cluster access"):
        sync(dns_spec(target={"service": GATEWAY}))


# -- Gateway targets: status.addresses, as NGINX Gateway Fabric 2.x publishes it ----------------

GW = {"namespace": "nginx-gateway", "name": "nginx-gateway"}


def gateway(fake: FakeKube, addresses: list[dict[str, str]] | None = None) -> None:
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GW["namespace"]}})
    fake.put({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": GW["name"], "namespace": GW["namespace"]},
        "spec": {"gatewayClassName": "nginx", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    })
    if addresses is not None:
        set_addresses(fake, addresses)


def set_addresses(fake: FakeKube, addresses: list[dict[str, str]]) -> None:
    fake.set_status("gateway.networking.k8s.io/v1", "Gateway", GW["name"], GW["namespace"], {"addresses": addresses})


def kube(fake: FakeKube, tmp_path: Path) -> Any:
    from envspec.kube.client import Kube
    from envspec.kube.retry import RetryPolicy

    return Kube(kube_api(fake, tmp_path), retry=RetryPolicy(attempts=3, sleep=lambda s: None))


def test_gateway_target_waits_for_its_status_address(zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path) -> None:
    gateway(fake_kube)
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # NGF publishes the load balancer's IP after the second poll
        polls.append(seconds)
        if len(polls) == 2:
            set_addresses(fake_kube, [{"type": "IPAddress", "value": "203.0.113.8"}])

    plan, lines = sync(dns_spec(target={"gateway": GW}), api_client=kube(fake_kube, tmp_path),
                       poll_interval=0.01, timeout=30, sleep=sleep)
    assert polls == [0.01, 0.01]
    assert plan.target == "203.0.113.8"
    assert lines[0] == "DNS plan for aphiria.com (owner preview-base, target 203.0.113.8):"
    assert ("*.pr", "A", "203.0.113.8", 300) in state(zone)
    reads = [r for r in fake_kube.requests if r.method == "GET" and r.path.endswith("/gateways/nginx-gateway")]
    assert len(reads) == 3


def test_gateway_reads_are_retried_through_kube(zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path) -> None:
    gateway(fake_kube, [{"type": "IPAddress", "value": "203.0.113.8"}])
    fake_kube.add_fault(method="GET", path_regex=r"/gateways/nginx-gateway$", status=503, times=1)
    plan, _ = sync(dns_spec(target={"gateway": GW}), api_client=kube(fake_kube, tmp_path), timeout=0)
    assert plan.target == "203.0.113.8"


def test_gateway_address_is_chosen_to_fit_the_record_type(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path
) -> None:
    gateway(fake_kube, [
        {"type": "Hostname", "value": "lb.example.net"},
        {"type": "IPAddress", "value": "2001:db8::8"},
        {"value": "203.0.113.9"},  # no type means IPAddress
        {"type": "example.com/custom", "value": "whatever"},
    ])
    api = kube(fake_kube, tmp_path)
    spec_v6 = Dns.model_validate({"domain": DOMAIN, "target": {"gateway": GW}, "records": [{"name": "v6", "type": "AAAA"}]})
    spec_cname = Dns.model_validate({"domain": DOMAIN, "target": {"gateway": GW},
                                     "records": [{"name": "docs", "type": "CNAME"}]})
    assert sync(dns_spec(target={"gateway": GW}), api_client=api, timeout=0)[0].target == "203.0.113.9"
    assert sync(spec_v6, api_client=api, timeout=0)[0].target == "2001:db8::8"
    assert sync(spec_cname, api_client=api, timeout=0)[0].target == "lb.example.net"
    assert ("docs", "CNAME", "lb.example.net.", 300) in state(zone)


def test_a_gateway_reporting_only_its_cluster_ip_is_never_used(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path
) -> None:
    """NGF puts the Service's ClusterIP in status.addresses when the Service is not a LoadBalancer."""
    gateway(fake_kube, [{"type": "IPAddress", "value": "10.245.12.7"}])
    with pytest.raises(OperationError) as info:
        sync(dns_spec(target={"gateway": GW}), api_client=kube(fake_kube, tmp_path), poll_interval=0.01, timeout=0.03)
    assert str(info.value) == (
        "timed out after 0.03s waiting for Gateway nginx-gateway/nginx-gateway: it reports only in-cluster "
        "address(es) 10.245.12.7; is the gateway's Service of type LoadBalancer?"
    )
    assert zone.log == []


def test_a_missing_gateway_times_out_with_its_name(zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path) -> None:
    with pytest.raises(OperationError, match="waiting for Gateway nginx-gateway/nginx-gateway: it not found"):
        sync(dns_spec(target={"gateway": GW}), api_client=kube(fake_kube, tmp_path), poll_interval=0.01, timeout=0.02)
    gateway(fake_kube)
    with pytest.raises(OperationError, match="it has no address in status.addresses yet"):
        sync(dns_spec(target={"gateway": GW}), api_client=kube(fake_kube, tmp_path), poll_interval=0.01, timeout=0.02)
    assert zone.log == []


def test_a_forbidden_gateway_read_is_one_line_not_a_traceback(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path
) -> None:
    gateway(fake_kube, [{"type": "IPAddress", "value": "203.0.113.8"}])
    fake_kube.add_fault(method="GET", path_regex=r"/gateways/nginx-gateway$", status=403, times=5)
    with pytest.raises(OperationError) as info:
        sync(dns_spec(target={"gateway": GW}), api_client=kube(fake_kube, tmp_path), timeout=30)
    assert "nginx-gateway" in str(info.value) and "403" in str(info.value)
    assert zone.log == []


def test_a_bare_api_client_is_borrowed_not_closed(zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path) -> None:
    """apply hands over the ApiClient it keeps using afterwards."""
    from kubernetes.client import CoreV1Api

    gateway(fake_kube, [{"type": "IPAddress", "value": "203.0.113.8"}])
    api = kube_api(fake_kube, tmp_path)
    assert sync(dns_spec(target={"gateway": GW}), api_client=api)[0].target == "203.0.113.8"
    assert CoreV1Api(api).read_namespace(GW["namespace"]).metadata.name == GW["namespace"]


@pytest.mark.parametrize(("address", "inside"), [
    ("10.245.0.1", True), ("172.20.1.1", True), ("192.168.1.1", True), ("100.64.0.1", True), ("127.0.0.1", True),
    ("fd00::1", True), ("203.0.113.8", False), ("8.8.8.8", False), ("2001:db8::1", False), ("lb.example.net", False),
])
def test_in_cluster_addresses(address: str, inside: bool) -> None:
    from envspec.cloud.loadbalancer import is_in_cluster_address

    assert is_in_cluster_address(address) is inside
