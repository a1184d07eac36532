"""Stage 2a: compose an environment from the files it `extends`.

Mappings merge recursively; lists and scalars replace; an explicit `null`
removes the inherited key. The seed project's configuration could not unset an
inherited value, which is how preview stacks ended up with production settings.

`render --all` of many environments that extend the same files composes those
files once per process: each parsed file is kept by its exact text, and each
composition of a parent chain by the texts of the files in it, so an edited file
is never served from memory. What these caches hold is shared; it is never
changed after it is built (`load_composed` hands out copies, and the resolver
copies before it writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envspec.errors import Location, Problem, SpecError
from envspec.memo import Bounded
from envspec.spec.loader import Document, PathKey, Positions, copy_data, shared_document
from envspec.spec.project import Project

FileKey = tuple[str, str, str]  # (absolute path, display path, exact text) of one file read


def merge(base: Any, override: Any, positions: Positions, path: PathKey = ()) -> Any:
    """Merge `override` onto `base`; `positions` already holds both files' entries, override's winning.

    Neither input is changed: changed mappings are new, the rest is shared with the inputs."""
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


def ref_paths(value: Any, path: PathKey = ()) -> list[PathKey]:
    """The path of every string under `value` that holds `${`, in document order (the order they resolve in)."""
    out: list[PathKey] = []
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, str):
                if "${" in child:
                    out.append(path + (key,))
            elif isinstance(child, (dict, list)):
                out += ref_paths(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            if isinstance(child, str):
                if "${" in child:
                    out.append(path + (index,))
            elif isinstance(child, (dict, list)):
                out += ref_paths(child, path + (index,))
    return out


@dataclass(frozen=True)
class Composed:
    """An environment's files merged, base first. Shared between callers: never change it."""

    data: dict[str, Any]
    positions: Positions
    chain: tuple[Path, ...]  # base first
    files: tuple[FileKey, ...]  # every file it was composed from, base first
    refs: dict[str, tuple[PathKey, ...]]  # top-level key -> `ref_paths` under it

    def ref_paths(self) -> list[PathKey]:
        """Every string holding `${`, in document order, without walking the data again."""
        return [p for key in self.data for p in self.refs[key]]


# Compositions by the keys (path, display, exact text) of their files; one process only.
_COMPOSED: Bounded[tuple[FileKey, ...], Composed] = Bounded(256)


def _layer(below: Composed | None, doc: Document, key: FileKey) -> Composed:
    """`below` with one more file merged on top; positions default to the top file, as errors without a place do."""
    positions = below.positions.copy() if below else Positions()
    positions.default = Location(doc.display, 1, 1)
    positions.overlay(doc.positions)
    base = below.data if below else {}
    data = merge(base, {k: v for k, v in doc.data.items() if k != "extends"}, positions)
    refs = {
        k: below.refs[k] if below and k in base and v is base[k] else tuple(ref_paths({k: v}))
        for k, v in data.items()
    }
    return Composed(
        data, positions, (*(below.chain if below else ()), doc.path), (*(below.files if below else ()), key), refs
    )


class SpecFiles:
    """The spec files one run has read (a Resolver's life: one `render --all`): each file is read, parsed
    and located once per run rather than once per environment extending it."""

    def __init__(self, project: Project):
        self.project = project
        self._documents: dict[Path, tuple[Document, FileKey]] = {}
        self._targets: dict[tuple[Path, str], Path] = {}

    def document(self, path: Path) -> tuple[Document, FileKey]:
        """The file, parsed once per text (loader.shared_document), and the key compositions are kept by."""
        found = self._documents.get(path)
        if found is None:
            display = self.project.display(path)
            doc, text = shared_document(path, display)
            found = self._documents[path] = (doc, (str(path), display, text))
        return found

    def extends_target(self, doc: Document, value: Any) -> Path:
        if not isinstance(value, str):
            return _resolve_extends(self.project, doc, value)
        key = (doc.path, value)
        if key not in self._targets:
            self._targets[key] = _resolve_extends(self.project, doc, value)
        return self._targets[key]


def compose(project: Project, path: Path, files: SpecFiles | None = None) -> Composed:
    """`path` and everything it extends, merged; the compositions of its parents are kept for their siblings.

    `files` are the files this run has read already (by default: none)."""
    files = files or SpecFiles(project)
    chain: list[tuple[Document, FileKey]] = []
    seen: list[Path] = []
    current: Path | None = path.resolve()
    while current is not None:
        if current in seen:
            cycle = " -> ".join(project.display(p) for p in [*seen, current])
            last = chain[-1][0]
            raise SpecError([Problem(f"extends cycle: {cycle}", last.positions.lookup(("extends",)), "extends")])
        seen.append(current)
        doc, key = files.document(current)
        chain.append((doc, key))
        parent = doc.data.get("extends")
        current = files.extends_target(doc, parent) if parent is not None else None

    chain.reverse()  # base first
    keys = tuple(key for _, key in chain)
    composed: Composed | None = None
    start = 0
    for n in range(len(chain), 0, -1):  # the longest composition already made
        if keys[:n] in _COMPOSED:
            composed, start = _COMPOSED[keys[:n]], n
            break
    for n in range(start, len(chain)):
        composed = _layer(composed, *chain[n])
        if n < len(chain) - 1:  # a parent: its other children will need it too
            _COMPOSED.remember(keys[: n + 1], composed)
    assert composed is not None
    return composed


def load_composed(project: Project, path: Path) -> tuple[dict[str, Any], Positions, list[Path]]:
    """Load `path` and everything it extends; return merged data, positions and the chain (base first).

    The data and positions are the caller's own to change."""
    composed = compose(project, path)
    return copy_data(composed.data), composed.positions.copy(), list(composed.chain)
