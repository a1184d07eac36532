"""What a built-in component is, and the builder its `units` function fills.

A built-in component is one folder under `envspec/components/<name>/`: its
`__init__.py` says which spec keys it reads (`keys`, typed by the models in
`envspec.spec.models`), which kinds it renders, and how the spec becomes render
units (`units`); its templates live in `envspec/templates/<name>/`; rules that
belong to it live in its `rules.py`, hooks (work done around apply/destroy) in
its `hooks.py`. The registry (`registry.py`) lists them in render order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from envspec.render.templates import RenderUnit
from envspec.spec.models import Environment

SpecPath = tuple[str | int, ...]


@dataclass
class Builder:
    """Collects render units; templates are `<component>/<file>`, unless the project overrides `<file>` flat."""

    spec: Environment
    env: dict[str, Any]
    project_templates: Path | None = None
    units: list[RenderUnit] = field(default_factory=list)

    def template(self, component: str, file: str) -> str:
        if self.project_templates is not None and (self.project_templates / file).is_file():
            return file  # a project template of the same file name overrides the built-in one
        return f"{component}/{file}"

    def add(self, component: str, file: str, item: Any, origin: SpecPath, name: str = "") -> None:
        context = {"env": self.env, "item": item, "name": name}
        self.units.append(RenderUnit(self.template(component, file), context, origin))


@dataclass(frozen=True)
class Builtin:
    name: str  # the folder under envspec/components/ and envspec/templates/
    keys: tuple[str, ...]  # the environment keys it reads
    kinds: tuple[str, ...]  # the Kubernetes kinds it renders (each described in envspec.kinds)
    units: Callable[[Builder], None]
    description: str = ""
