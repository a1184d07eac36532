"""Stage 4: from the typed model to what templates see.

Python decides *what* gets rendered (which template, how many times, with which
derived values); templates only decide the manifest's shape. Each built-in
component (envspec/components/<name>/, listed in its registry) turns its part of
the spec into render units; then come the project's components and extra
templates. Each unit's context is plain data: `env` (environment-wide values),
`item` (the thing being rendered) and `name`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from envspec.components.base import Builder
from envspec.components.project import instance_units
from envspec.components.registry import BUILTIN
from envspec.errors import Location, Problems
from envspec.render.templates import RenderUnit
from envspec.spec.models import Environment

MANAGED_BY = "app.kubernetes.io/managed-by"
ENVIRONMENT_LABEL = "envspec.dev/environment"
INSTANCE_LABEL = "envspec.dev/instance"


def base_labels(name: str, instance: str, extra: dict[str, str]) -> dict[str, str]:
    labels = dict(sorted(extra.items()))
    labels.update({MANAGED_BY: "envspec", ENVIRONMENT_LABEL: name, INSTANCE_LABEL: instance})
    return labels


def build_units(
    spec: Environment,
    name: str,
    instance: str,
    root: Path | None = None,
    problems: Problems | None = None,
    locate: Callable[[tuple[str | int, ...]], Location | None] = lambda origin: None,
) -> list[RenderUnit]:
    """Every (template, context) pair this environment renders, in spec order; project components need `root`."""
    labels = base_labels(name, instance, spec.labels)
    env = {"name": name, "instance": instance, "namespace": spec.namespace.name, "labels": labels}
    builder = Builder(spec, env, root / "templates" if root is not None else None)
    for component in BUILTIN:
        component.units(builder)
    units = builder.units
    if spec.components:
        units.extend(instance_units(spec, env, root or Path.cwd(), problems if problems is not None else Problems(), locate))
    for index, template in enumerate(spec.templates):
        units.append(
            RenderUnit(template, {"env": env, "spec": spec.model_dump(mode="json"), "item": None, "name": ""}, ("templates", index))
        )
    return units
