"""Stage 2a: compose an environment from the files it `extends`.

Mappings merge recursively; lists and scalars replace; an explicit `null`
removes the inherited key. The seed project's configuration could not unset an
inherited value, which is how preview stacks ended up with production settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envspec.errors import Location, Problem, SpecError
from envspec.spec.loader import Document, PathKey, Positions, load_document
from envspec.spec.project import Project


def merge(base: Any, override: Any, positions: Positions, path: PathKey = ()) -> Any:
    """Merge `override` onto `base`; `positions` already holds both files' entries, override's winning."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
            positions.drop_under(path + (key,))
        elif key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge(out[key], value, positions, path + (key,))
        else:
            out[key] = value
    return out


def _resolve_extends(project: Project, doc: Document, value: Any) -> Path:
    location = doc.positions.lookup(("extends",))
    if not isinstance(value, str) or not value:
        raise SpecError([Problem("must be the name of a file in environments/ (got {!r})".format(value), location, "extends")])
    name = value if value.endswith((".yaml", ".yml")) else f"{value}.yaml"
    target = (doc.path.parent / name).resolve()
    if not target.is_file():
        raise SpecError([Problem(f"extended file {value!r} not found ({project.display(target)})", location, "extends")])
    return target


def load_composed(project: Project, path: Path) -> tuple[dict[str, Any], Positions, list[Path]]:
    """Load `path` and everything it extends; return merged data, positions and the chain (base first)."""
    chain: list[Document] = []
    seen: list[Path] = []
    current: Path | None = path.resolve()
    while current is not None:
        if current in seen:
            cycle = " -> ".join(project.display(p) for p in [*seen, current])
            last = chain[-1]
            raise SpecError([Problem(f"extends cycle: {cycle}", last.positions.lookup(("extends",)), "extends")])
        seen.append(current)
        doc = load_document(current, project.display(current))
        chain.append(doc)
        parent = doc.data.get("extends")
        current = _resolve_extends(project, doc, parent) if parent is not None else None

    chain.reverse()  # base first
    positions = Positions(default=Location(chain[-1].display, 1, 1))
    data: dict[str, Any] = {}
    for doc in chain:
        layer = {k: v for k, v in doc.data.items() if k != "extends"}
        positions.overlay(doc.positions)
        data = merge(data, layer, positions)
    return data, positions, [d.path for d in chain]
