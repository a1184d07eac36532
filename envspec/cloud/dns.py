"""Keep an environment's DNS records pointed at its gateway, touching nothing envspec does not own.

Ownership works like external-dns's TXT registry. For each record envspec
manages, it keeps one TXT record beside it:

    name: _envspec-<type>.<record name>      e.g. _envspec-a._wildcard.pr for "*.pr" A
                                                  _envspec-a               for "@" A
    data: heritage=envspec,envspec/owner=<instance>,envspec/record=<TYPE> <record name>

The TXT lives under its own name because a CNAME cannot share its name with
any other record, and because "*.pr" cannot carry a prefix label in front of
the "*" (hence `_wildcard`). Declared names may not contain "_", so an
ownership name can never collide with a declared record. One TXT per record
type keeps an A and an AAAA at the same name independently owned.

Rules, in the order a sync applies them:
* prune (only with --prune): the record of an owned (name, type) the spec no
  longer declares is deleted, then its TXT;
* create: the TXT first, then the record, so a crash in between leaves a
  claim, not an unowned record the next run would refuse to touch;
* update: an owned record whose data or TTL differs is changed in place;
* conflict: a declared record that exists without our TXT, or whose TXT names
  another owner, stops the whole sync before anything is written.

envspec keeps exactly one record per owned (name, type). The TXT claims the
name, not a record id, so when a name holds more than one record (a second A
added by hand, a retried create that landed twice) envspec cannot tell which
one it wrote. It then deletes nothing: the name is a conflict (or, when
pruning, an orphan) that names every record, for a person to resolve.
"""

from __future__ import annotations

import ipaddress
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, Sequence

from envspec.errors import OperationError, Problem, SpecError
from envspec.spec.cloud import Dns, Record

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from envspec.cloud.digitalocean import DnsRecord
    from envspec.cloud.provider import DnsProvider
    from envspec.kube.client import Kube

HERITAGE = "envspec"
OWNER_PREFIX = "_envspec"
WILDCARD_REPLACEMENT = "_wildcard"

Action = Literal["create", "update", "unchanged", "prune", "orphan", "conflict"]


@dataclass(frozen=True)
class Change:
    """One line of the plan: what happens to one (name, type) of the domain."""

    action: Action
    name: str
    type: str
    data: str | None = None  # the value it will point at (create/update/unchanged)
    ttl: int | None = None
    current: tuple[DnsRecord, ...] = ()  # records of this (name, type) found now
    owner_records: tuple[DnsRecord, ...] = ()  # our TXT record(s) for it
    reason: str = ""

    def describe(self) -> str:
        symbol = {"create": "+", "update": "~", "unchanged": "=", "prune": "-", "orphan": "?", "conflict": "!"}
        head = f"  {symbol[self.action]} {self.action:<9} {self.name} {self.type}"
        if self.action == "update":
            old = ", ".join(sorted({f"{r.data} ttl {r.ttl}" for r in self.current}))
            return f"{head} {old} -> {self.data} ttl {self.ttl}"
        if self.action in ("create", "unchanged"):
            return f"{head} {self.data} ttl {self.ttl}"
        if self.action == "prune":
            return f"{head} {', '.join(r.data for r in self.current) or '(ownership record only)'}"
        return f"{head}: {self.reason}"


@dataclass(frozen=True)
class DnsPlan:
    domain: str
    owner: str
    target: str
    changes: tuple[Change, ...] = field(default_factory=tuple)

    def of(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def writes(self) -> bool:
        return any(c.action in ("create", "update", "prune") for c in self.changes)

    def lines(self) -> list[str]:
        lines = [f"DNS plan for {self.domain} (owner {self.owner}, target {self.target}):"]
        lines.extend(change.describe() for change in self.changes)
        counts = ", ".join(f"{len(self.of(a))} {a}" for a in ("create", "update", "unchanged", "prune") if self.of(a))
        lines.append(f"  {counts or 'nothing to do'}")
        return lines


# -- ownership records ------------------------------------------------------


def owner_record_name(name: str, type: str) -> str:
    """Where the ownership TXT for (name, type) lives, relative to the domain."""
    prefix = f"{OWNER_PREFIX}-{type.lower()}"
    if name == "@":
        return prefix
    labels = name.split(".")
    if labels[0] == "*":
        labels[0] = WILDCARD_REPLACEMENT
    return ".".join([prefix, *labels])


def owner_record_data(owner: str, name: str, type: str) -> str:
    return f"heritage={HERITAGE},{HERITAGE}/owner={owner},{HERITAGE}/record={type} {name}"


@dataclass(frozen=True)
class Ownership:
    owner: str
    name: str
    type: str


def parse_owner_record(data: str) -> Ownership | None:
    """The claim a TXT value makes, or None when it is not envspec's."""
    text = data.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    if fields.get("heritage") != HERITAGE:
        return None
    owner = fields.get(f"{HERITAGE}/owner", "")
    record_type, _, name = fields.get(f"{HERITAGE}/record", "").partition(" ")
    if not owner or not record_type or not name:
        return None
    return Ownership(owner=owner, name=name.lower(), type=record_type.upper())


def check_owner(owner: str) -> str:
    if not owner or any(ch in owner for ch in ',="\\ ') or len(owner) > 128:
        raise SpecError(f"DNS owner {owner!r} must be a plain name without spaces, commas, quotes or '='")
    return owner


# -- planning (pure) ---------------------------------------------------------


def record_value(record_type: str, target: str) -> str:
    """The record's data for this target, in the form DigitalOcean stores; fails on a type mismatch."""
    try:
        address = ipaddress.ip_address(target)
    except ValueError:
        address = None
    if record_type == "CNAME":
        if address is not None:
            raise OperationError(f"a CNAME record needs a hostname, but the target is the address {target}")
        return target if target.endswith(".") else target + "."
    wanted = 4 if record_type == "A" else 6
    if address is None:
        raise OperationError(
            f"an {record_type} record needs an IPv{wanted} address, but the target is the hostname {target}; "
            "declare the records as type CNAME"
        )
    if address.version != wanted:
        raise OperationError(f"an {record_type} record needs an IPv{wanted} address, not {target}")
    return str(address)


def _same_data(record_type: str, current: str, wanted: str) -> bool:
    if record_type == "CNAME":
        return current.rstrip(".").lower() == wanted.rstrip(".").lower()
    try:
        return ipaddress.ip_address(current) == ipaddress.ip_address(wanted)
    except ValueError:
        return False


def plan_dns(
    dns: Dns, *, owner: str, target: str, existing: list[DnsRecord], prune: bool = False
) -> DnsPlan:
    """Compare the declared records with the domain's current records; no I/O."""
    check_owner(owner)
    by_key: dict[tuple[str, str], list[DnsRecord]] = {}
    for record in existing:
        by_key.setdefault((record.name.lower(), record.type.upper()), []).append(record)

    # Our claims, and claims other envspec owners hold, keyed by the (name, type) they cover.
    ours: dict[tuple[str, str], list[DnsRecord]] = {}
    theirs: dict[tuple[str, str], str] = {}
    for txt in (r for r in existing if r.type.upper() == "TXT"):
        claim = parse_owner_record(txt.data)
        if claim is None or txt.name.lower() != owner_record_name(claim.name, claim.type):
            continue
        key = (claim.name, claim.type)
        if claim.owner == owner:
            ours.setdefault(key, []).append(txt)
        else:
            theirs.setdefault(key, claim.owner)

    declared = {(r.name, r.type): r for r in dns.records}
    changes: list[Change] = []

    # Owned names the spec dropped.
    pruned: set[tuple[str, str]] = set()
    for key in sorted(set(ours) - set(declared)):
        current = tuple(by_key.get(key, ()))
        if len(current) > 1:
            changes.append(Change("orphan", key[0], key[1], current=current, owner_records=tuple(ours[key]),
                                  reason=f"owned by this environment but no longer declared; {_several(current)}, "
                                         "so envspec cannot tell which one it created and deletes none of them"))
        elif prune:
            pruned.add(key)
            changes.append(Change("prune", key[0], key[1], current=current, owner_records=tuple(ours[key])))
        else:
            changes.append(Change("orphan", key[0], key[1], current=current, owner_records=tuple(ours[key]),
                                  reason="owned by this environment but no longer declared; --prune deletes it"))

    for key, record in declared.items():
        name, record_type = key
        ttl = dns.ttl_of(record)
        data = record_value(record_type, target)
        current = tuple(by_key.get(key, ()))
        conflict = _conflict(dns, owner, record, current, key in ours, theirs.get(key), by_key, pruned)
        if conflict:
            changes.append(Change("conflict", name, record_type, data, ttl, current=current, reason=conflict))
        elif not current:
            changes.append(Change("create", name, record_type, data, ttl, owner_records=tuple(ours.get(key, ()))))
        elif len(current) == 1 and current[0].ttl == ttl and _same_data(record_type, current[0].data, data):
            changes.append(Change("unchanged", name, record_type, data, ttl, current=current,
                                  owner_records=tuple(ours[key])))
        else:
            changes.append(Change("update", name, record_type, data, ttl, current=current,
                                  owner_records=tuple(ours[key])))
    return DnsPlan(domain=dns.domain, owner=owner, target=target, changes=tuple(changes))


def _conflict(
    dns: Dns,
    owner: str,
    record: Record,
    current: tuple[DnsRecord, ...],
    owned: bool,
    other_owner: str | None,
    by_key: dict[tuple[str, str], list[DnsRecord]],
    pruned: set[tuple[str, str]],
) -> str:
    """Why this declared record cannot be written, or "" when it can."""
    fqdn = dns.domain if record.name == "@" else f"{record.name}.{dns.domain}"
    if owned and len(current) > 1:
        return (
            f"{fqdn} {record.type}: {_several(current)}; envspec keeps one record per name and type and never "
            "deletes records it cannot tell it created. Delete the extra ones by hand, then run again"
        )
    if other_owner is not None and not owned:
        return f"{fqdn} {record.type} is owned by envspec environment {other_owner!r}; not touching it"
    if current and not owned:
        return (
            f"{fqdn} {record.type} exists but envspec did not create it; not touching it. To hand it to envspec, "
            f"add a TXT record {owner_record_name(record.name, record.type)} "
            f"with data \"{owner_record_data(owner, record.name, record.type)}\""
        )
    others = [
        (key, records) for key, records in by_key.items()
        if key[0] == record.name and key[1] not in (record.type, "TXT") and key not in pruned and records
    ]
    if record.type == "CNAME" and others:
        return f"{fqdn} already has {', '.join(k[1] for k, _ in others)} records; a CNAME cannot share its name"
    if record.type != "CNAME" and any(k[1] == "CNAME" for k, _ in others):
        return f"{fqdn} is a CNAME; an {record.type} record cannot share its name"
    return ""


def _several(records: Sequence[DnsRecord]) -> str:
    listed = ", ".join(f"{r.data} (id {r.id})" for r in sorted(records, key=lambda r: r.id))
    return f"it holds {len(records)} records: {listed}"


# -- applying ----------------------------------------------------------------


def apply_dns_plan(client: DnsProvider, plan: DnsPlan, echo: Callable[[str], None] = print) -> None:
    """Write the plan: prunes, then creates (ownership first), then updates."""
    if plan.of("conflict"):
        raise OperationError([Problem(c.reason) for c in plan.of("conflict")])
    domain = plan.domain
    for change in plan.of("prune"):
        assert len(change.current) <= 1, "plan_dns never prunes a name holding several records"
        for record in change.current:
            client.delete_record(domain, record)
        for txt in change.owner_records:
            client.delete_record(domain, txt)
        echo(f"pruned {change.name} {change.type}")
    for change in plan.of("create"):
        assert change.data is not None and change.ttl is not None
        if not change.owner_records:
            client.create_record(
                domain,
                type="TXT",
                name=owner_record_name(change.name, change.type),
                data=owner_record_data(plan.owner, change.name, change.type),
                ttl=change.ttl,
            )
        client.create_record(domain, type=change.type, name=change.name, data=change.data, ttl=change.ttl)
        echo(f"created {change.name} {change.type} -> {change.data}")
    for change in plan.of("update"):
        assert change.data is not None and change.ttl is not None
        assert len(change.current) == 1, "plan_dns makes a name holding several records a conflict"
        client.update_record(domain, change.current[0], data=change.data, ttl=change.ttl)
        echo(f"updated {change.name} {change.type} -> {change.data}")


def choose_address(addresses: Sequence[str], record_types: Iterable[str]) -> str:
    """The first address (in status order) that fits a declared record type: IPv4 for A, IPv6 for AAAA,
    a hostname for CNAME. With none fitting, the first one, so `record_value` names the mismatch."""
    wanted = set(record_types)
    for address in addresses:
        try:
            kind = "A" if ipaddress.ip_address(address).version == 4 else "AAAA"
        except ValueError:
            kind = "CNAME"
        if kind in wanted:
            return address
    return addresses[0]


@contextmanager
def _kube_for(cluster: Kube | ApiClient) -> Iterator[Kube]:
    """A Kube for reading the target. A caller's Kube is used as is; for a bare ApiClient a Kube is
    built on a second ApiClient sharing its configuration, so closing ours never closes the caller's."""
    from envspec.kube.client import Kube

    if isinstance(cluster, Kube):
        yield cluster
        return
    from kubernetes.client import ApiClient

    kube = Kube(ApiClient(cluster.configuration))
    try:
        yield kube
    finally:
        kube.close()


def resolve_target(
    dns: Dns,
    cluster: Kube | ApiClient | None,
    *,
    timeout: float = 300.0,
    poll_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The literal target, or the Gateway's / LoadBalancer Service's public address once it has one.

    `cluster` reaches the cluster holding a Gateway or Service target: an
    `envspec.kube.client.Kube` (its retries apply) or a kubernetes ApiClient.
    """
    target = dns.target
    if target.ip is not None:
        return target.ip
    if target.hostname is not None:
        return target.hostname
    ref = target.gateway or target.service
    assert ref is not None
    kind = "Gateway" if target.gateway is not None else "Service"
    if cluster is None:
        raise SpecError(
            f"dns.target is {kind} {ref.namespace}/{ref.name}; reading its address needs cluster access (a kubeconfig)"
        )
    from envspec.cloud.loadbalancer import wait_for_address

    with _kube_for(cluster) as kube:
        addresses = wait_for_address(
            kube, kind, ref.namespace, ref.name, timeout=timeout, poll_interval=poll_interval, sleep=sleep
        )
    return choose_address(addresses, (r.type for r in dns.records))


def sync_dns(
    dns: Dns,
    *,
    owner: str,
    api_client: Kube | ApiClient | None = None,
    client: DnsProvider | None = None,  # default: DigitalOcean, from the environment's token
    dry_run: bool = False,
    prune: bool = False,
    timeout: float = 300.0,
    poll_interval: float = 5.0,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> DnsPlan:
    """Resolve the target, print the plan, and (unless dry_run) write it.

    `owner` is the environment instance (e.g. "preview-base"); `api_client`
    (a Kube, or a kubernetes ApiClient) reaches the cluster holding the target
    Gateway or Service (unused for literal targets); `client` defaults to one
    built from DIGITALOCEAN_TOKEN.
    Raises OperationError on conflicts, before anything is written.
    """
    check_owner(owner)
    address = resolve_target(dns, api_client, timeout=timeout, poll_interval=poll_interval, sleep=sleep)
    if client is None:
        from envspec.cloud.digitalocean import DigitalOceanClient

        client = DigitalOceanClient.from_env()
    client.check_domain(dns.domain)
    plan = plan_dns(dns, owner=owner, target=address, existing=client.list_records(dns.domain), prune=prune)
    for line in plan.lines():
        echo(line)
    if plan.of("conflict"):
        raise OperationError(
            [Problem(c.reason) for c in plan.of("conflict")] + [Problem("DNS sync stopped; nothing was written")]
        )
    if dry_run:
        echo("dry run: nothing written")
        return plan
    apply_dns_plan(client, plan, echo)
    return plan


def sync_declared_dns(
    compiled: Any,
    api_client: Kube | ApiClient | None,
    *,
    dry_run: bool = False,
    prune: bool = False,
    timeout: float = 300.0,
    poll_interval: float = 5.0,
    echo: Callable[[str], None] = print,
) -> DnsPlan | None:
    """For apply: sync the compiled environment's DNS records, if it declares any (None otherwise).

    `compiled` is `envspec.pipeline.Compiled`; the owner is its instance name.
    Call it once the gateway is ready, with the Kube (or ApiClient) apply already holds.
    """
    block = compiled.spec.digitalocean
    if block is None or block.dns is None:
        return None
    return sync_dns(
        block.dns, owner=compiled.instance, api_client=api_client, dry_run=dry_run, prune=prune,
        timeout=timeout, poll_interval=poll_interval, echo=echo,
    )
