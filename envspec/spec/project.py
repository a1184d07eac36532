"""Where a project's files live: the root, its environments and its templates."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from envspec.errors import Location, Problem, SpecError

ENVIRONMENTS_DIR = "environments"
TEMPLATES_DIR = "templates"


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def environments_dir(self) -> Path:
        return self.root / ENVIRONMENTS_DIR

    @property
    def templates_dir(self) -> Path:
        return self.root / TEMPLATES_DIR

    def display(self, path: Path) -> str:
        """A path as printed in messages: relative to the current directory when that is shorter."""
        try:
            rel = os.path.relpath(path)
        except ValueError:
            return str(path)
        return rel if not rel.startswith("../../..") else str(path)

    def environment_names(self) -> list[str]:
        """Every environment; files starting with `_` are shared partials, not environments."""
        return sorted(
            p.stem for p in self.environments_dir.glob("*.yaml") if not p.name.startswith(("_", "."))
        )

    def environment_path(self, name: str) -> Path:
        path = self.environments_dir / f"{name}.yaml"
        if name.startswith("_") or "/" in name or not path.is_file():
            known = self.environment_names()
            hint = [h for h in difflib.get_close_matches(name, known, n=2) if h != name][:1]
            if path.exists() and not path.is_file():
                raise SpecError([Problem("is not a file", Location(self.display(path)))])
            message = f"unknown environment {name!r}"
            message += f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known) or 'none'})"
            raise SpecError([Problem(message, Location(self.display(path)))])
        return path


def find_project(root: Path | None = None, start: Path | None = None) -> Project:
    """The nearest folder upward from `start` (the current directory) that holds environments/."""
    if root is not None:
        try:
            usable = (root / ENVIRONMENTS_DIR).is_dir()
        except (OSError, ValueError):  # e.g. a NUL byte in the path
            usable = False
        if not usable:
            raise SpecError([Problem(f"--root {root}: no {ENVIRONMENTS_DIR}/ folder there")])
        return Project(root.resolve())
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ENVIRONMENTS_DIR).is_dir():
            return Project(candidate)
    raise SpecError([Problem(f"no {ENVIRONMENTS_DIR}/ folder in {here} or any parent; use --root")])
