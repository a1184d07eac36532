"""Stage 5a: raw objects, written inline (`objects:`) or in the project's files (`objectFiles:`).

They join the template output here, so from now on they take the same path as
everything else: patches, labels, ordering, rules, schema validation, inventory.
Files are read as YAML streams; each object remembers the line it starts on so
a later problem (a schema error, a duplicate) points into the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from envspec.errors import Location, Problems, SpecError
from envspec.render.templates import RenderedObject, object_problem
from envspec.spec.models import Environment

SpecPath = tuple[str | int, ...]


def _display(root: Path, path: Path) -> str:
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("../../..") else str(path)


def _load_stream(path: Path, display: str, problems: Problems) -> list[tuple[Any, Location]]:
    """Each document of the file with the position it starts at, read by the spec loader (its bounds, its errors)."""
    from envspec.spec.loader import parse_yaml_stream, read_text

    try:
        documents = parse_yaml_stream(read_text(path, display), display)
    except SpecError as exc:
        problems.items.extend(exc.problems)
        return []
    return [(value, positions.default or Location(display, 1, 1)) for value, positions in documents]


def raw_objects(
    spec: Environment, root: Path, problems: Problems, locate: Callable[[SpecPath], Location | None]
) -> list[RenderedObject]:
    from envspec.spec.resolve import dotted

    out: list[RenderedObject] = []
    for index, obj in enumerate(spec.objects):
        origin: SpecPath = ("objects", index)
        reason = object_problem(obj)
        if reason:
            problems.error(f"this is {reason}", locate(origin), dotted(origin))
            continue
        out.append(RenderedObject(dict(obj), "", origin))
    base = root.resolve()
    for index, name in enumerate(spec.objectFiles):
        origin = ("objectFiles", index)
        path = (base / name).resolve()
        if base not in path.parents or not path.is_file():
            why = "is outside the project" if base not in path.parents else "does not exist"
            problems.error(f"object file {name!r} {why}", locate(origin), dotted(origin))
            continue
        display = _display(base, path)
        for doc, location in _load_stream(path, display, problems):
            reason = object_problem(doc)
            if reason:
                problems.error(f"this is {reason}", location)
                continue
            out.append(RenderedObject(doc, "", origin, location))
    return out
