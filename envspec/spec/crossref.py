"""Stage 3b: names inside the spec that must name something the spec declares.

A mount of a volume the app does not declare, or a `secretEnv`/`configMaps`/`secrets`
entry naming a Secret or ConfigMap the environment does not declare, would otherwise
surface later as a confusing symptom (a `requiredEnv` rule, or a pod stuck in
CreateContainerConfigError). Each is reported here, at the line that names it.
Volumes and claims are checked on the spec alone; Secrets and ConfigMaps once the
environment is rendered, since a raw object or a component may be what makes them.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Iterator, Mapping

from envspec.errors import Problem
from envspec.spec.loader import Positions

PathKey = tuple[str | int, ...]


def _hint(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (declared: {', '.join(sorted(known))})" if known else " (none are declared)"


def _workloads(spec: Any) -> Iterator[tuple[PathKey, Any, Any]]:
    """(path, container-like, owning app or None) for every container, init container and job."""
    for aname, app in spec.apps.items():
        for section in ("containers", "initContainers"):
            for cname, container in getattr(app, section).items():
                yield ("apps", aname, section, cname), container, app
    for jname, job in spec.jobs.items():
        yield ("jobs", jname), job, None
    for cname, cron in spec.cronJobs.items():
        yield ("cronJobs", cname), cron, None


def _declared_secrets(spec: Any) -> set[str]:
    names = set(spec.secrets)
    if spec.database is not None:
        names.add(spec.database.adminSecret)
        if spec.database.appSecret:
            names.add(spec.database.appSecret)
    for cert in spec.certificates.values():
        secret = getattr(cert, "secretName", None)
        if secret:
            names.add(secret)
    return names


# Kinds whose objects make a Secret or ConfigMap a container can use: kind -> (what it makes, where
# its name is written, the first set wins). An ExternalSecret's target defaults to its own name.
_PRODUCERS: dict[str, tuple[str, tuple[PathKey, ...]]] = {
    "Secret": ("Secret", (("metadata", "name"),)),
    "ConfigMap": ("ConfigMap", (("metadata", "name"),)),
    "ExternalSecret": ("Secret", (("spec", "target", "name"), ("metadata", "name"))),
    "SealedSecret": ("Secret", (("metadata", "name"),)),
}


def produced_names(objects: Iterable[Mapping[str, Any]], namespace: str) -> dict[str, set[str]]:
    """The Secrets and ConfigMaps the rendered objects (templates, components, raw objects) make in `namespace`."""
    made: dict[str, set[str]] = {"Secret": set(), "ConfigMap": set()}
    for obj in objects:
        producer = _PRODUCERS.get(str(obj.get("kind")))
        meta = obj.get("metadata") or {}
        if producer is None or not isinstance(meta, dict) or meta.get("namespace", namespace) != namespace:
            continue
        makes, paths = producer
        for path in paths:
            value: Any = obj
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str) and value:
                made[makes].add(value)
                break
    return made


def cross_reference_problems(spec: Any, positions: Positions) -> list[Problem]:
    """Names the spec alone must declare: mounted volumes and claims."""
    from envspec.spec.resolve import dotted

    problems: list[Problem] = []

    def error(path: PathKey, message: str) -> None:
        problems.append(Problem(message, positions.lookup(path), dotted(path)))

    for path, container, app in _workloads(spec):
        if app is not None:
            volumes = set(app.volumes) | set(app.volumeClaimTemplates)  # a StatefulSet mounts its claims by name
            for volume in container.mounts:
                if volume not in volumes:
                    where = f"apps.{path[1]}.volumes"
                    error(path + ("mounts", volume), f"mounts volume {volume!r}, which is not declared in {where}{_hint(volume, volumes)}")
    for aname, app in spec.apps.items():
        for vname, volume in app.volumes.items():
            if volume.claim is not None and volume.claim not in spec.claims:
                error(("apps", aname, "volumes", vname, "claim"), f"claim {volume.claim!r} is not declared in claims{_hint(volume.claim, set(spec.claims))}")
    return problems


def reference_problems(spec: Any, positions: Positions, objects: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Secrets and ConfigMaps the workloads use, checked once rendered: declared in the spec, or made by an object.

    A Secret may come from a raw object (a plain Secret, an ExternalSecret's target) or a
    component rather than `secrets:`; only when nothing makes it is the reference an error.
    """
    from envspec.spec.resolve import dotted

    problems: list[Problem] = []

    def error(path: PathKey, message: str) -> None:
        problems.append(Problem(message, positions.lookup(path), dotted(path)))

    made = produced_names(objects, spec.namespace.name)
    config_maps = set(spec.configMaps) | made["ConfigMap"]
    secrets = _declared_secrets(spec) | made["Secret"]
    for path, container, _ in _workloads(spec):
        for var, ref in container.secretEnv.items():
            if ref.secret not in secrets:
                error(path + ("secretEnv", var, "secret"), f"Secret {ref.secret!r} is not declared in secrets{_hint(ref.secret, secrets)}")
        for index, cm in enumerate(container.configMaps):
            if cm not in config_maps:
                error(path + ("configMaps", index), f"ConfigMap {cm!r} is not declared in configMaps{_hint(cm, config_maps)}")
        for index, secret in enumerate(container.secrets):
            if secret not in secrets:
                error(path + ("secrets", index), f"Secret {secret!r} is not declared in secrets{_hint(secret, secrets)}")
    for aname, app in spec.apps.items():
        for vname, volume in app.volumes.items():
            if volume.configMap is not None and volume.configMap not in config_maps:
                error(("apps", aname, "volumes", vname, "configMap"), f"ConfigMap {volume.configMap!r} is not declared in configMaps{_hint(volume.configMap, config_maps)}")
    return problems
