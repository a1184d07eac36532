"""Stage 3b: names inside the spec that must name something the spec declares.

A mount of a volume the app does not declare, or a `secretEnv`/`configMaps`/`secrets`
entry naming a Secret or ConfigMap the environment does not declare, would otherwise
surface later as a confusing symptom (a `requiredEnv` rule, or a pod stuck in
CreateContainerConfigError). Each is reported here, at the line that names it.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterator

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


def cross_reference_problems(spec: Any, positions: Positions) -> list[Problem]:
    from envspec.spec.resolve import dotted

    problems: list[Problem] = []

    def error(path: PathKey, message: str) -> None:
        problems.append(Problem(message, positions.lookup(path), dotted(path)))

    config_maps = set(spec.configMaps)
    secrets = _declared_secrets(spec)
    for path, container, app in _workloads(spec):
        for var, ref in container.secretEnv.items():
            if ref.secret not in secrets:
                error(path + ("secretEnv", var, "secret"), f"Secret {ref.secret!r} is not declared in secrets{_hint(ref.secret, secrets)}")
        for index, cm in enumerate(container.configMaps):
            if cm not in config_maps:
                error(path + ("configMaps", index), f"ConfigMap {cm!r} is not declared in configMaps{_hint(cm, config_maps)}")
        for index, secret in enumerate(container.secrets):
            if secret not in secrets:
                error(path + ("secrets", index), f"Secret {secret!r} is not declared in secrets{_hint(secret, secrets)}")
        if app is not None:
            volumes = set(app.volumes) | set(app.volumeClaimTemplates)  # a StatefulSet mounts its claims by name
            for volume in container.mounts:
                if volume not in volumes:
                    where = f"apps.{path[1]}.volumes"
                    error(path + ("mounts", volume), f"mounts volume {volume!r}, which is not declared in {where}{_hint(volume, volumes)}")
    for aname, app in spec.apps.items():
        for vname, volume in app.volumes.items():
            if volume.configMap is not None and volume.configMap not in config_maps:
                error(("apps", aname, "volumes", vname, "configMap"), f"ConfigMap {volume.configMap!r} is not declared in configMaps{_hint(volume.configMap, config_maps)}")
            if volume.claim is not None and volume.claim not in spec.claims:
                error(("apps", aname, "volumes", vname, "claim"), f"claim {volume.claim!r} is not declared in claims{_hint(volume.claim, set(spec.claims))}")
    return problems
