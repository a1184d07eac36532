"""The semantic rules. Each is named for the production failure it prevents.

Rules that concern one component live in that component's folder
(envspec/components/<name>/rules.py) and are registered here, in the order
all rules run; the rest look across components (quota, images, hosts, names).

Rules work on the typed spec, so their messages point at the line the user must
change; where they need the final manifests (names, label values) they read the
rendered objects.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Callable, Iterator
from urllib.parse import urlsplit

from envspec.checks.context import RuleContext
from envspec.components.app.rules import pdb_below_replicas, rwo_recreate
from envspec.components.certificate.rules import acme_wildcard_dns01
from envspec.components.database.rules import database_credentials, is_database_job
from envspec.components.route.rules import route_parents
from envspec.kinds import name_limit_of
from envspec.memo import Bounded
from envspec.quantity import parse as parse_quantity
from envspec.spec.models import DNS1123_LABEL, DNS1123_SUBDOMAIN, LABEL_VALUE, Container, Environment, Resources
from envspec.spec.params import parse_image

Rule = Callable[[RuleContext], None]
RULES: list[Rule] = []


def rule(func: Rule) -> Rule:
    RULES.append(func)
    return func


# ------------------------------------------------------------------ helpers

def fmt_cpu(value: Fraction) -> str:
    return f"{int(value * 1000)}m"


def fmt_mem(value: Fraction) -> str:
    return f"{int(value / 2**20)}Mi"


SpecPath = tuple[str | int, ...]
ContainerResources = list[tuple[SpecPath, Resources | None]]


def pods(spec: Environment) -> Iterator[tuple[SpecPath, str, str, int, ContainerResources, ContainerResources]]:
    """(spec path, kind, namespace, pod count incl. surge, containers, init containers) for every pod the spec runs."""
    for name, app in spec.apps.items():
        surge = app.maxSurge if app.kind == "Deployment" and app.strategy == "RollingUpdate" else 0
        containers = [(("apps", name, "containers", c), cont.resources) for c, cont in app.containers.items()]
        inits = [(("apps", name, "initContainers", c), cont.resources) for c, cont in app.initContainers.items()]
        yield ("apps", name), app.kind, app.namespace or spec.namespace.name, app.max_replicas() + surge, containers, inits
    if spec.database:
        yield ("database",), "Job", spec.database.namespace or spec.namespace.name, 1, [(("database",), spec.database.resources)], []
    for name, job in spec.jobs.items():
        yield ("jobs", name), "Job", job.namespace or spec.namespace.name, 1, [(("jobs", name), job.resources)], []
    for name, cron in spec.cronJobs.items():  # a scheduled Job can start at any time: it counts like a replica
        count = 2 if cron.concurrencyPolicy == "Replace" else 1
        yield ("cronJobs", name), "CronJob", cron.namespace or spec.namespace.name, count, [(("cronJobs", name), cron.resources)], []


def _value(resources: Resources | None, kind: str, resource: str) -> str | int | float | None:
    if resources is None:
        return None
    amounts = getattr(resources, kind)
    return (getattr(amounts, resource) if amounts else None) or None


def _nanos(resources: Resources | None, kind: str, resource: str) -> int:
    """The amount in whole nano-units (0 when unset): quantities are exact multiples of 1/NANOS."""
    value = _value(resources, kind, resource)
    return 0 if value is None else _quantity_nanos(value)


NANOS = 10**9  # envspec.quantity rounds every quantity up to a multiple of 1/NANOS

# Quantities by (type, text or number): `render --all` meets the same few values in every environment.
# (type, value): 1, 1.0 and True are equal keys to a dict, but not the same quantity text.
_QUANTITIES: Bounded[tuple[type, object], int] = Bounded(4096)


def _quantity_nanos(value: str | int | float) -> int:
    """`envspec.quantity.parse(value)` in whole nano-units, once per distinct value in a process:
    a parsed value never changes, and errors are not kept."""
    key = (type(value), value)
    found = _QUANTITIES.get(key)
    if found is None:
        found = _QUANTITIES.remember(key, int(parse_quantity(value) * NANOS))
    return found


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
                if _value(resources, kind, res) is None
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
    # Sums in whole nano-units: quantities are rounded up to 1e-9, so integers are exact (and far cheaper than Fractions).
    totals = {("requests", "cpu"): 0, ("requests", "memory"): 0, ("limits", "cpu"): 0, ("limits", "memory"): 0}
    job_peak = {key: 0 for key in totals}
    pod_count, job_pods = 0, 0
    for _path, kind, namespace, count, containers, inits in pods(spec):
        if namespace != spec.namespace.name:
            continue
        for key in totals:
            regular = sum(_nanos(r, *key) for _, r in containers)
            init = max((_nanos(r, *key) for _, r in inits), default=0)
            per_pod = max(regular, init)
            if kind == "Job":  # Jobs run one after another; finished pods leave the quota
                job_peak[key] = max(job_peak[key], per_pod)
            else:
                totals[key] += per_pod * count
        if kind == "Job":
            job_pods = 1
        else:
            pod_count += count
    limits = {"cpu": _quantity_nanos(quota.cpu), "memory": _quantity_nanos(quota.memory)}
    for (kind, res), total in totals.items():
        need = total + job_peak[(kind, res)]
        if need > limits[res]:
            shown = fmt_cpu if res == "cpu" else fmt_mem
            ctx.error(
                "quota-fit",
                ("namespace", "quota", res),
                f"pods need {shown(Fraction(need, NANOS))} of {kind}.{res} during a rolling update (with the largest Job), "
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
    for section, jobs in (("jobs", spec.jobs), ("cronJobs", spec.cronJobs)):
        for name, job in jobs.items():
            ref, reason = parse_image(job.image)
            if ref is None:
                ctx.error("pinned-images", (section, name, "image"), f"{reason} (got {job.image!r})")


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


@functools.lru_cache(maxsize=4096)
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
    for section, jobs in (("jobs", spec.jobs), ("cronJobs", spec.cronJobs)):
        for name, job in jobs.items():
            values += [((section, name, "env", k), v, job.namespace or spec.namespace.name) for k, v in job.env.items()]
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


# The components' own rules, in their place in the run order.
rule(route_parents)
rule(acme_wildcard_dns01)
rule(pdb_below_replicas)
rule(rwo_recreate)


@rule
def protected_namespaces(ctx: RuleContext) -> None:
    """An environment must never create, change or delete a namespace it does not own."""
    protected = set(ctx.spec.protectedNamespaces)
    if not protected:
        return
    if ctx.spec.namespace.name in protected:
        ctx.error("protected-namespaces", ("namespace", "name"), f"namespace {ctx.spec.namespace.name} is protected")
    for index, obj in enumerate(ctx.objects):
        meta = obj["metadata"]
        target = meta["name"] if obj["kind"] == "Namespace" else meta.get("namespace")
        if target in protected and not is_database_job(ctx, obj):
            ctx.error(
                "protected-namespaces",
                _origin_path(ctx, index),
                f"{obj['kind']} {meta['name']} would be written to protected namespace {target}",
            )


@rule
def system_namespaces(ctx: RuleContext) -> None:
    """The cluster's own namespaces are never the environment's, whatever protectedNamespaces says."""
    from envspec.system import SYSTEM_NAMESPACES, system_reason

    spec = ctx.spec
    if spec.namespace.name in SYSTEM_NAMESPACES:
        ctx.error("system-namespaces", ("namespace", "name"),
                  f"namespace {spec.namespace.name} belongs to the cluster; envspec never writes into it")
    for index, obj in enumerate(ctx.objects):
        reason = system_reason(obj)
        if reason is None:
            continue
        inside = obj["kind"] != "Namespace"
        if inside and obj["metadata"].get("namespace") == spec.namespace.name:
            continue  # reported once, at namespace.name, above
        if inside:
            ctx.error("system-namespaces", _origin_path(ctx, index), f"{obj['kind']} {obj['metadata']['name']}: {reason}")
        else:
            hint = "; use it without creating it (create: false)" if obj["metadata"]["name"] == "default" else ""
            ctx.error("system-namespaces", _origin_path(ctx, index), reason + hint)


# Spec sections whose entries carry their own `namespace:` key (a message about the namespace points there).
_NAMESPACED_SECTIONS = {"apps", "jobs", "cronJobs", "claims", "routes", "certificates", "serviceAccounts", "secrets"}


def _origin_path(ctx: RuleContext, index: int) -> tuple[str | int, ...]:
    """The spec path that produced objects[index] (recorded by the renderer), for a message at the line to change."""
    origin = ctx.origins[index] if index < len(ctx.origins) else ("namespace",)
    if ctx.objects[index]["kind"] == "Namespace" and origin == ("namespace",):
        return ("namespace", "name")
    if len(origin) == 2 and origin[0] in _NAMESPACED_SECTIONS:
        entry = getattr(ctx.spec, str(origin[0])).get(origin[1])
        if entry is not None and getattr(entry, "namespace", None):
            return (*origin, "namespace")
    return origin or ("namespace",)


def _rendered_apart(ctx: RuleContext, index: int) -> bool:
    """Objects a project template, project component or raw object writes (their namespace included)."""
    origin = ctx.origins[index] if index < len(ctx.origins) else ()
    return bool(origin) and origin[0] in ("templates", "components", "objects", "objectFiles")


# The same patterns the spec models check (one definition each, in envspec.spec.models).
_DNS1123_LABEL = re.compile(DNS1123_LABEL)
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN)
_LABEL_VALUE = re.compile(LABEL_VALUE)


# Verdicts on names and label values, kept per text: every environment of a `render --all` repeats most of them.
@functools.lru_cache(maxsize=4096)
def _name_ok(name: str, strict: bool) -> bool:
    """A DNS-1123 label (strict: at most 63 characters) or subdomain (at most 253)."""
    return bool((_DNS1123_LABEL if strict else _DNS1123_SUBDOMAIN).match(name)) and len(name) <= (63 if strict else 253)


@functools.lru_cache(maxsize=4096)
def _label_value_ok(text: str) -> bool:
    return len(text) <= 63 and bool(_LABEL_VALUE.match(text))


@rule
def name_limits(ctx: RuleContext) -> None:
    """Names and label values over 63 characters (or with bad characters) are rejected at apply time, not render time."""
    for index, obj in enumerate(ctx.objects):
        meta = obj["metadata"]
        name = meta["name"]
        for ns_name, where in ((name, "name"), (meta.get("namespace"), "namespace")):
            if ns_name is None:
                continue
            strict = name_limit_of(obj["kind"]) == "label" or where == "namespace"
            if not _name_ok(ns_name, strict):
                ctx.error(
                    "name-limits",
                    _origin_path(ctx, index) if where == "name" or _rendered_apart(ctx, index) else ("namespace", "name"),
                    f"{obj['kind']} {where} {ns_name!r} is not a valid DNS-1123 {'label' if strict else 'subdomain'}"
                    f"{' (at most 63 characters)' if strict else ''}",
                )
        for key, value in (meta.get("labels") or {}).items():
            if not _label_value_ok(str(value)):
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
    for section, jobs in (("jobs", spec.jobs), ("cronJobs", spec.cronJobs)):
        for name, job in jobs.items():
            provided = set(job.env) | set(job.secretEnv)
            for cm in job.configMaps:
                provided |= config_keys.get(cm, set())
            for secret in job.secrets:
                provided |= secret_keys.get(secret, set())
            for index, var in enumerate(job.requiredEnv):
                if var not in provided:
                    what = "job" if section == "jobs" else "cron job"
                    ctx.error("required-env", (section, name, "requiredEnv", index), f"{what} {name} requires {var}, but it is not set")


rule(database_credentials)  # the database component's own rule, last as before
