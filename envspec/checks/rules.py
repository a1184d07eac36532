"""The semantic rules. Each is named for the production failure it prevents.

Rules work on the typed spec, so their messages point at the line the user must
change; where they need the final manifests (names, label values) they read the
rendered objects.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from envspec.checks.context import RuleContext
from envspec.quantity import parse as parse_quantity
from envspec.spec.models import Container, Environment, Resources
from envspec.spec.params import parse_image

Rule = Callable[[RuleContext], None]
RULES: list[Rule] = []


def rule(func: Rule) -> Rule:
    RULES.append(func)
    return func


# ------------------------------------------------------------------ helpers

def quantity(text: str) -> Fraction:
    """The exact value of a resource quantity (one parser for all of envspec: `envspec.quantity`)."""
    return parse_quantity(text)


def fmt_cpu(value: Fraction) -> str:
    return f"{int(value * 1000)}m"


def fmt_mem(value: Fraction) -> str:
    return f"{int(value / 2**20)}Mi"


SpecPath = tuple[str | int, ...]
ContainerResources = list[tuple[SpecPath, Resources | None]]


def pods(spec: Environment) -> Iterator[tuple[SpecPath, str, str, int, ContainerResources, ContainerResources]]:
    """(spec path, kind, namespace, pod count incl. surge, containers, init containers) for every pod the spec runs."""
    for name, app in spec.apps.items():
        surge = app.maxSurge if app.strategy == "RollingUpdate" else 0
        containers = [(("apps", name, "containers", c), cont.resources) for c, cont in app.containers.items()]
        inits = [(("apps", name, "initContainers", c), cont.resources) for c, cont in app.initContainers.items()]
        yield ("apps", name), "Deployment", app.namespace or spec.namespace.name, app.replicas + surge, containers, inits
    if spec.database:
        yield ("database",), "Job", spec.database.namespace or spec.namespace.name, 1, [(("database",), spec.database.resources)], []
    for name, job in spec.jobs.items():
        yield ("jobs", name), "Job", job.namespace or spec.namespace.name, 1, [(("jobs", name), job.resources)], []


def _amount(resources: Resources | None, kind: str, resource: str) -> Fraction | None:
    if resources is None:
        return None
    amounts = getattr(resources, kind)
    value = getattr(amounts, resource) if amounts else None
    return quantity(value) if value else None


# ------------------------------------------------------------------ rules


@rule
def quota_resources(ctx: RuleContext) -> None:
    """A namespace with a ResourceQuota rejects pods whose containers (init containers too) lack requests or limits."""
    spec = ctx.spec
    if not spec.namespace.quota:
        return
    for _path, _kind, namespace, _count, containers, inits in pods(spec):
        if namespace != spec.namespace.name:
            continue
        for cpath, resources in [*containers, *inits]:
            missing = [
                f"{kind}.{res}"
                for kind in ("requests", "limits")
                for res in ("cpu", "memory")
                if _amount(resources, kind, res) is None
            ]
            if missing:
                what = "init container" if "initContainers" in cpath else "container"
                ctx.error(
                    "quota-resources",
                    cpath + ("resources",) if "resources" not in cpath else cpath,
                    f"{what} must set {', '.join(missing)}: namespace {namespace} has a ResourceQuota, which rejects pods without them",
                )


@rule
def quota_fit(ctx: RuleContext) -> None:
    """The environment's pods, with rolling-update surge and the largest Job, must fit the quota."""
    spec = ctx.spec
    quota = spec.namespace.quota
    if not quota:
        return
    totals = {("requests", "cpu"): Fraction(0), ("requests", "memory"): Fraction(0), ("limits", "cpu"): Fraction(0), ("limits", "memory"): Fraction(0)}
    job_peak = {key: Fraction(0) for key in totals}
    pod_count, job_pods = 0, 0
    for _path, kind, namespace, count, containers, inits in pods(spec):
        if namespace != spec.namespace.name:
            continue
        for key in totals:
            regular = sum((_amount(r, *key) or Fraction(0) for _, r in containers), Fraction(0))
            init = max((_amount(r, *key) or Fraction(0) for _, r in inits), default=Fraction(0))
            per_pod = max(regular, init)
            if kind == "Job":  # Jobs run one after another; finished pods leave the quota
                job_peak[key] = max(job_peak[key], per_pod)
            else:
                totals[key] += per_pod * count
        if kind == "Job":
            job_pods = 1
        else:
            pod_count += count
    limits = {"cpu": quantity(quota.cpu), "memory": quantity(quota.memory)}
    for (kind, res), total in totals.items():
        need = total + job_peak[(kind, res)]
        if need > limits[res]:
            shown = fmt_cpu if res == "cpu" else fmt_mem
            ctx.error(
                "quota-fit",
                ("namespace", "quota", res),
                f"pods need {shown(need)} of {kind}.{res} during a rolling update (with the largest Job), "
                f"but the quota allows {getattr(quota, res)}",
            )
    if pod_count + job_pods > quota.pods:
        ctx.error(
            "quota-fit",
            ("namespace", "quota", "pods"),
            f"{pod_count + job_pods} pods can run at once (replicas + surge + one Job), but the quota allows {quota.pods}",
        )


@rule
def pinned_images(ctx: RuleContext) -> None:
    """Tags move and truncated digests don't resolve: app images must be pinned by a full sha256 digest."""
    spec = ctx.spec
    for name, app in spec.apps.items():
        images = [(("apps", name, "image"), app.image)]
        images += [(("apps", name, "containers", c, "image"), cont.image) for c, cont in app.containers.items() if cont.image]
        images += [(("apps", name, "initContainers", c, "image"), cont.image) for c, cont in app.initContainers.items() if cont.image]
        for path, image in images:
            ref, reason = parse_image(image)
            if ref is None:
                ctx.error("pinned-images", path, f"{reason} (got {image!r})")
            elif spec.requirePinnedImages and app.pinImage and not ref.pinned and len(path) == 3:
                ctx.warn(
                    "pinned-images",
                    path,
                    f"image {image!r} is not pinned by digest; apply will refuse it (pass the image as name@sha256:<64 hex>)",
                )
    for name, job in spec.jobs.items():
        ref, reason = parse_image(job.image)
        if ref is None:
            ctx.error("pinned-images", ("jobs", name, "image"), f"{reason} (got {job.image!r})")


def _service_hosts(ctx: RuleContext) -> dict[str, set[str]]:
    """Service name -> namespaces it exists in, across this environment and the ones it uses."""
    hosts: dict[str, set[str]] = {}
    for spec in ctx.all_specs():
        for name, app in spec.apps.items():
            if app.service is not None:
                hosts.setdefault(name, set()).add(app.namespace or spec.namespace.name)
    for obj in ctx.objects:
        if obj["kind"] == "Service":
            hosts.setdefault(obj["metadata"]["name"], set()).add(obj["metadata"].get("namespace", ""))
    return hosts


def _host_of(value: str) -> str:
    text = value.strip()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    elif ":" in text and not text.startswith("["):
        text = text.split(":", 1)[0]
    return text.lower()


@rule
def fqdn_hosts(ctx: RuleContext) -> None:
    """A short Service name only resolves inside its own namespace; cross-namespace hosts must be fully qualified."""
    spec = ctx.spec
    services = _service_hosts(ctx)
    values: list[tuple[tuple[str | int, ...], str, str]] = []  # path, value, consumer namespace
    if spec.database:
        values.append((("database", "host"), spec.database.host, spec.namespace.name))
    for cname, data in spec.configMaps.items():
        values += [(("configMaps", cname, key), v, spec.namespace.name) for key, v in data.items()]
    for name, app in spec.apps.items():
        ns = app.namespace or spec.namespace.name
        for group in ("containers", "initContainers"):
            for cname, cont in getattr(app, group).items():
                values += [(("apps", name, group, cname, "env", k), v, ns) for k, v in cont.env.items()]
    for name, job in spec.jobs.items():
        values += [(("jobs", name, "env", k), v, job.namespace or spec.namespace.name) for k, v in job.env.items()]
    for path, value, consumer in values:
        host = _host_of(value)
        if not host:
            continue
        parts = host.split(".")
        service = parts[0]
        if service not in services:
            continue
        if len(parts) == 1:
            others = sorted(ns for ns in services[service] if ns != consumer)
            if others and consumer not in services[service]:
                ctx.error(
                    "fqdn-hosts",
                    path,
                    f"{host!r} names Service {service} in namespace {others[0]}, which does not resolve from namespace "
                    f"{consumer}; use {service}.{others[0]}.svc.cluster.local",
                )
        elif len(parts) in (2, 3) and parts[1] in services[service] and parts[1] != consumer and (len(parts) == 2 or parts[2] == "svc"):
            ctx.error(
                "fqdn-hosts",
                path,
                f"{host!r} is a partly qualified Service name; use {service}.{parts[1]}.svc.cluster.local",
            )


def _covers(listener_host: str | None, host: str) -> bool:
    if not listener_host:
        return True
    if listener_host.startswith("*."):
        suffix = listener_host[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)] and len(host) > len(suffix)
    return listener_host == host


@rule
def route_parents(ctx: RuleContext) -> None:
    """A route attached to a missing gateway or listener, or outside the listener's hostname, is silently ignored."""
    gateways = {(s.gateway.namespace, s.gateway.name): s.gateway for s in ctx.all_specs() if s.gateway}
    for name, route in ctx.spec.routes.items():
        ref = route.gateway
        gateway = gateways.get((ref.namespace, ref.name))
        if gateway is None:
            known = ", ".join(f"{ns}/{n}" for ns, n in sorted(gateways)) or "none"
            ctx.error("route-parents", ("routes", name, "gateway"), f"no Gateway {ref.namespace}/{ref.name} is declared (known: {known})")
            continue
        listeners = {l.name: l for l in gateway.listeners}
        for listener_name, section in [(ref.listener, "listener"), (route.httpsRedirectFrom, "httpsRedirectFrom")]:
            if listener_name is None:
                continue
            path = ("routes", name, "gateway", "listener") if section == "listener" else ("routes", name, "httpsRedirectFrom")
            listener = listeners.get(listener_name)
            if listener is None:
                ctx.error("route-parents", path, f"Gateway {ref.namespace}/{ref.name} has no listener {listener_name!r} (has: {', '.join(listeners)})")
                continue
            for index, host in enumerate(route.hostnames):
                if not _covers(listener.hostname, host):
                    ctx.error(
                        "route-parents",
                        ("routes", name, "hostnames", index),
                        f"hostname {host!r} is not covered by listener {listener_name} ({listener.hostname})",
                    )


@rule
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


@rule
def pdb_below_replicas(ctx: RuleContext) -> None:
    """minAvailable equal to the replica count blocks every node drain."""
    for name, app in ctx.spec.apps.items():
        if app.disruptionBudget and app.disruptionBudget.minAvailable >= app.replicas:
            ctx.error(
                "pdb-below-replicas",
                ("apps", name, "disruptionBudget", "minAvailable"),
                f"minAvailable {app.disruptionBudget.minAvailable} must be below replicas ({app.replicas}), or no pod can ever be evicted",
            )


@rule
def rwo_recreate(ctx: RuleContext) -> None:
    """A rolling update can't mount a ReadWriteOnce volume that the old pod still holds: use Recreate."""
    spec = ctx.spec
    for name, app in spec.apps.items():
        claims = [v.claim for v in app.volumes.values() if v.claim]
        rwo = [c for c in claims if c in spec.claims and spec.claims[c].accessMode in ("ReadWriteOnce", "ReadWriteOncePod")]
        if rwo and app.replicas == 1 and app.strategy != "Recreate":
            ctx.error(
                "rwo-recreate",
                ("apps", name, "strategy"),
                f"mounts ReadWriteOnce claim {rwo[0]!r} with one replica, so a rolling update deadlocks; set strategy: Recreate",
            )


@rule
def protected_namespaces(ctx: RuleContext) -> None:
    """An environment must never create, change or delete a namespace it does not own."""
    protected = set(ctx.spec.protectedNamespaces)
    if not protected:
        return
    if ctx.spec.namespace.name in protected:
        ctx.error("protected-namespaces", ("namespace", "name"), f"namespace {ctx.spec.namespace.name} is protected")
    for obj in ctx.objects:
        meta = obj["metadata"]
        target = meta["name"] if obj["kind"] == "Namespace" else meta.get("namespace")
        if target in protected and not _is_database_job(ctx, obj):
            ctx.error(
                "protected-namespaces",
                _origin_path(ctx, obj),
                f"{obj['kind']} {meta['name']} would be written to protected namespace {target}",
            )


def _is_database_job(ctx: RuleContext, obj: dict[str, Any]) -> bool:
    """The create-database Job runs in `database.namespace` by design (the one place the admin Secret is)."""
    from envspec.database import create_job_name, jobs_namespace

    db = ctx.spec.database
    return (
        db is not None and db.namespace is not None and obj["kind"] == "Job"
        and obj["metadata"].get("namespace") == jobs_namespace(ctx.spec) and obj["metadata"]["name"] == create_job_name(ctx.spec)
    )


@rule
def system_namespaces(ctx: RuleContext) -> None:
    """The cluster's own namespaces are never the environment's, whatever protectedNamespaces says."""
    from envspec.kube.system import SYSTEM_NAMESPACES, system_reason

    spec = ctx.spec
    if spec.namespace.name in SYSTEM_NAMESPACES:
        ctx.error("system-namespaces", ("namespace", "name"),
                  f"namespace {spec.namespace.name} belongs to the cluster; envspec never writes into it")
    for obj in ctx.objects:
        reason = system_reason(obj)
        if reason is None:
            continue
        inside = obj["kind"] != "Namespace"
        if inside and obj["metadata"].get("namespace") == spec.namespace.name:
            continue  # reported once, at namespace.name, above
        if inside:
            ctx.error("system-namespaces", _origin_path(ctx, obj), f"{obj['kind']} {obj['metadata']['name']}: {reason}")
        else:
            hint = "; use it without creating it (create: false)" if obj["metadata"]["name"] == "default" else ""
            ctx.error("system-namespaces", _origin_path(ctx, obj), reason + hint)


def _origin_path(ctx: RuleContext, obj: dict[str, Any]) -> tuple[str | int, ...]:
    """The spec path that produced `obj`, for a message that points at the line to change."""
    origin = ctx.origin_of(obj)
    if origin and origin[0] == "templates":
        return origin  # a project template's object: the `templates:` entry that requested it
    name = obj["metadata"]["name"]
    if obj["kind"] == "Namespace":
        if name == ctx.spec.namespace.name:
            return ("namespace", "name")
        if ctx.spec.gateway and name == ctx.spec.gateway.namespace:
            return ("gateway", "namespace")
    for section in ("apps", "jobs", "configMaps", "claims", "routes", "certificates"):
        if name in getattr(ctx.spec, section):
            return (section, name, "namespace") if section in ("apps", "jobs", "claims", "routes", "certificates") else (section, name)
    return ("namespace",)


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose names become DNS labels (and so must be at most 63 characters).
_LABEL_NAMED = {"Namespace", "Service", "Deployment", "StatefulSet", "Job", "CronJob"}


@rule
def name_limits(ctx: RuleContext) -> None:
    """Names and label values over 63 characters (or with bad characters) are rejected at apply time, not render time."""
    for obj in ctx.objects:
        meta = obj["metadata"]
        name = meta["name"]
        for ns_name, where in ((name, "name"), (meta.get("namespace"), "namespace")):
            if ns_name is None:
                continue
            strict = obj["kind"] in _LABEL_NAMED or where == "namespace"
            ok = (_DNS1123_LABEL if strict else _DNS1123_SUBDOMAIN).match(ns_name) and len(ns_name) <= (63 if strict else 253)
            if not ok:
                ctx.error(
                    "name-limits",
                    _origin_path(ctx, obj) if where == "name" or ctx.origin_of(obj) else ("namespace", "name"),
                    f"{obj['kind']} {where} {ns_name!r} is not a valid DNS-1123 {'label' if strict else 'subdomain'}"
                    f"{' (at most 63 characters)' if strict else ''}",
                )
        for key, value in (meta.get("labels") or {}).items():
            if len(str(value)) > 63 or not _LABEL_VALUE.match(str(value)):
                path = ("instance",) if key == "envspec.dev/instance" else ("labels", key)
                ctx.error("name-limits", path, f"label {key}={value!r} on {obj['kind']} {name} is not a valid label value (at most 63 characters)")
    if ctx.spec.database:
        db = ctx.spec.database.name
        if len(db) > 63 or not re.fullmatch(r"[a-z0-9_]+", db):
            ctx.error("name-limits", ("database", "name"), f"database name {db!r} must match ^[a-z0-9_]+$ and be at most 63 characters")


def _container_env(container: Container, config_keys: dict[str, set[str]], secret_keys: dict[str, set[str]]) -> set[str]:
    names = set(container.env) | set(container.secretEnv)
    for cm in container.configMaps:
        names |= config_keys.get(cm, set())
    for secret in container.secrets:
        names |= secret_keys.get(secret, set())
    return names


@rule
def required_env(ctx: RuleContext) -> None:
    """An app started without a variable it needs fails at runtime, far from the spec line that forgot it."""
    spec = ctx.spec
    config_keys = {name: set(data) for name, data in spec.configMaps.items()}
    secret_keys = {name: set(s.external.data if s.external else s.fromEnv) for name, s in spec.secrets.items()}
    for name, app in spec.apps.items():
        provided: set[str] = set()
        for cont in app.containers.values():
            provided |= _container_env(cont, config_keys, secret_keys)
        for index, var in enumerate(app.requiredEnv):
            if var not in provided:
                ctx.error("required-env", ("apps", name, "requiredEnv", index), f"app {name} requires {var}, but none of its containers sets it")
    for name, job in spec.jobs.items():
        provided = set(job.env) | set(job.secretEnv)
        for cm in job.configMaps:
            provided |= config_keys.get(cm, set())
        for secret in job.secrets:
            provided |= secret_keys.get(secret, set())
        for index, var in enumerate(job.requiredEnv):
            if var not in provided:
                ctx.error("required-env", ("jobs", name, "requiredEnv", index), f"job {name} requires {var}, but it is not set")


@rule
def database_credentials(ctx: RuleContext) -> None:
    """With `database.namespace`, the admin Secret is read there only: building it anywhere else would put
    PostgreSQL admin credentials into a namespace the database Jobs left precisely to avoid them."""
    db = ctx.spec.database
    if db is None or db.namespace is None or db.adminSecret not in ctx.spec.secrets:
        return
    where = ctx.spec.secrets[db.adminSecret].namespace or ctx.spec.namespace.name
    if where != db.namespace:
        ctx.error(
            "database-credentials",
            ("secrets", db.adminSecret),
            f"Secret {db.adminSecret} is the database's adminSecret, read in namespace {db.namespace} "
            f"(database.namespace), but would be built in {where}; remove it here ({db.adminSecret}: null) "
            f"or build it in {db.namespace}",
        )
