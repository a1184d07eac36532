"""Stage 1: read a YAML file into plain data plus a map of source positions.

Later stages work on plain dicts, lists and scalars (easy to merge, interpolate
and hand to Pydantic), while every error still needs to point at a line. So
the loader returns both: the data, and `Positions`, which maps each path in
the data (a tuple of keys and indexes) to where its value was written.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from envspec.errors import Location, Problem, SpecError

PathKey = tuple[str | int, ...]


@dataclass
class Positions:
    """Where each value of a document came from. Paths missing here fall back to their nearest ancestor."""

    by_path: dict[PathKey, Location] = field(default_factory=dict)
    default: Location | None = None

    def lookup(self, path: Iterable[str | int]) -> Location | None:
        key = tuple(path)
        while True:
            if key in self.by_path:
                return self.by_path[key]
            if not key:
                return self.default
            key = key[:-1]

    def set(self, path: PathKey, location: Location) -> None:
        self.by_path[path] = location

    def overlay(self, other: "Positions", prefix: PathKey = ()) -> None:
        """Take `other`'s positions (under `prefix`), replacing any already recorded for the same paths."""
        for key, loc in other.by_path.items():
            self.by_path[prefix + key] = loc

    def drop_under(self, prefix: PathKey) -> None:
        n = len(prefix)
        for key in [k for k in self.by_path if len(k) > n and k[:n] == prefix]:
            del self.by_path[key]


@dataclass
class Document:
    data: Any
    positions: Positions
    path: Path
    display: str  # the path as printed in messages (relative to the project root)


def _yaml():  # type: ignore[no-untyped-def]
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def _plain(node: Any, path: PathKey, positions: Positions, display: str) -> Any:
    """Convert ruamel's round-trip nodes into plain Python values, recording positions on the way."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            line, col = node.lc.value(key) if key in node.lc.data else (None, None)
            kline, kcol = node.lc.key(key) if key in node.lc.data else (None, None)
            skey = key if isinstance(key, str) else str(key)
            child = path + (skey,)
            # Point at the value when it is a scalar on the key's line, else at the key.
            if isinstance(value, (CommentedMap, CommentedSeq)) or line is None:
                if kline is not None:
                    positions.set(child, Location(display, kline + 1, kcol + 1))
            else:
                positions.set(child, Location(display, line + 1, col + 1))
            out[skey] = _plain(value, child, positions, display)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            child = path + (index,)
            if index in node.lc.data:
                line, col = node.lc.item(index)
                positions.set(child, Location(display, line + 1, col + 1))
            items.append(_plain(value, child, positions, display))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    return node


def parse_yaml_text(text: str, display: str) -> tuple[Any, Positions]:
    """Parse one YAML document; syntax errors and duplicate keys become SpecErrors with positions."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    positions = Positions(default=Location(display, 1, 1))
    try:
        node = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        message = _syntax_message(exc)
        raise SpecError([Problem(message, location)]) from None
    except YAMLError as exc:
        raise SpecError([Problem(f"invalid YAML: {exc}", Location(display))]) from None
    return _plain(node, (), positions, display), positions


def _syntax_message(exc: Any) -> str:
    name = type(exc).__name__
    problem = (exc.problem or "").strip()
    if name.startswith("DuplicateKey"):
        # ruamel: 'found duplicate key "x" with value "y" (original value: "z")'
        return f"duplicate key: {problem}" if problem else "duplicate key"
    context = (exc.context or "").strip()
    text = problem or context or name
    if context and problem and context != problem:
        text = f"{problem} ({context})"
    return f"YAML syntax error: {text}"


def load_document(path: Path, display: str) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem("file not found", Location(display))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(f"cannot read file: {exc}", Location(display))]) from None
    data, positions = parse_yaml_text(text, display)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError([Problem("an environment file must be a mapping at the top level", Location(display, 1, 1))])
    return Document(data, positions, path, display)
