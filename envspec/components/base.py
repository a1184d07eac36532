"""What a built-in component is, and the builder its `units` function fills.

A built-in component is one folder under `envspec/components/<name>/`: its
`__init__.py` says which spec keys it reads (`keys`, typed by the models in
`envspec.spec.models`), which kinds it renders, and how the spec becomes render
units (`units`); its templates live in `envspec/templates/<name>/`; rules that
belong to it live in its `rules.py`, hooks (work done around apply/destroy) in
its `hooks.py`. The registry (`registry.py`) lists them in render order.
"""

from __future__ import annotations

import os
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
    _project_files: frozenset[str] | None = field(default=None, init=False, repr=False)

    def template(self, component: str, file: str) -> str:
        if file in self._overrides():
            return file  # a project template of the same file name overrides the built-in one
        return f"{component}/{file}"

    def _overrides(self) -> frozenset[str]:
        """The files in the project's templates/ folder, listed once per build instead of a stat per unit."""
        if self._project_files is None:
            self._project_files = frozenset()
            if self.project_templates is not None:
                try:
                    with os.scandir(self.project_templates) as entries:
                        self._project_files = frozenset(e.name for e in entries if e.is_file())
                except OSError:
                    pass
        return self._project_files

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
