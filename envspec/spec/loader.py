"""Stage 1: read a YAML file into plain data plus a map of source positions.

Later stages work on plain dicts, lists and scalars (easy to merge, interpolate
and hand to Pydantic), while every error still needs to point at a line. So
the loader returns both: the data, and `Positions`, which maps each path in
the data (a tuple of keys and indexes) to where its value was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
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


def _node_location(node: Any, display: str) -> Location:
    mark = node.start_mark
    return Location(display, mark.line + 1, mark.column + 1)


_TAG = "tag:yaml.org,2002:"


def _scalar(node: Any, display: str) -> Any:
    """YAML 1.2 core-schema values: `yes` and `on` stay strings; timestamps stay strings."""
    tag, text = node.tag, node.value
    try:
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() == "true"
        if tag == _TAG + "int":
            clean = text.replace("_", "")
            sign = -1 if clean.startswith("-") else 1
            body = clean.lstrip("+-")
            if body.startswith(("0o", "0O")):
                return sign * int(body[2:], 8)
            if body.startswith(("0x", "0X")):
                return sign * int(body[2:], 16)
            if body.startswith(("0b", "0B")):
                return sign * int(body[2:], 2)
            return sign * int(body)
        if tag == _TAG + "float":
            lowered = text.lower().replace("_", "")
            if lowered in (".inf", "+.inf"):
                return float("inf")
            if lowered == "-.inf":
                return float("-inf")
            if lowered == ".nan":
                return float("nan")
            return float(lowered)
    except ValueError:
        raise SpecError([Problem(f"cannot read {text!r} as {tag.rsplit(':', 1)[-1]}", _node_location(node, display))]) from None
    return text


def _plain(node: Any, path: PathKey, positions: Positions, display: str) -> Any:
    """Build plain Python values from composed nodes, recording each value's position on the way."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged = _plain(value_node, path, Positions(), display)
                for source in merged if isinstance(merged, list) else [merged]:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            out.setdefault(k, v)
                continue
            key = _scalar(key_node, display) if not isinstance(key_node, (MappingNode, SequenceNode)) else None
            if key is None or isinstance(key, (dict, list)):
                raise SpecError([Problem("mapping keys must be scalars", _node_location(key_node, display))])
            skey = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
            if skey in out:
                first = positions.lookup(path + (skey,))
                where = f" (first defined at line {first.line})" if first and first.path == display else ""
                raise SpecError([Problem(f"duplicate key {skey!r}{where}", _node_location(key_node, display))])
            child = path + (skey,)
            anchor = key_node if isinstance(value_node, (MappingNode, SequenceNode)) else value_node
            positions.set(child, _node_location(anchor, display))
            out[skey] = _plain(value_node, child, positions, display)
        return out
    if isinstance(node, SequenceNode):
        items: list[Any] = []
        for index, item in enumerate(node.value):
            child = path + (index,)
            positions.set(child, _node_location(item, display))
            items.append(_plain(item, child, positions, display))
        return items
    return _scalar(node, display)


def parse_yaml_text(text: str, display: str) -> tuple[Any, Positions]:
    """Parse one YAML document; syntax errors and duplicate keys become SpecErrors with positions.

    Composing nodes with the C parser and building values ourselves is ~10x faster than
    ruamel's round-trip loader, and gives every value its line and column.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    positions = Positions(default=Location(display, 1, 1))
    try:
        node = YAML(typ="safe", pure=False).compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        raise SpecError([Problem(_syntax_message(exc), location)]) from None
    except YAMLError as exc:
        raise SpecError([Problem(f"invalid YAML: {exc}", Location(display))]) from None
    if node is None:
        return None, positions
    return _plain(node, (), positions, display), positions


def _syntax_message(exc: Any) -> str:
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    text = problem or context or type(exc).__name__
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
    data, positions = _parse_cached(text, display)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError([Problem("an environment file must be a mapping at the top level", Location(display, 1, 1))])
    return Document(data, positions, path, display)


# Parsed spec files by (display path, exact text): `render --all` of many environments that extend the
# same files parses each once per process. The text is the key, so an edited file is parsed anew;
# every caller gets its own copy, since later stages merge into the data.
_PARSED: dict[tuple[str, str], tuple[Any, Positions]] = {}
_PARSED_MAX = 256


def _parse_cached(text: str, display: str) -> tuple[Any, Positions]:
    key = (display, text)
    if key not in _PARSED:
        if len(_PARSED) >= _PARSED_MAX:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[key] = parse_yaml_text(text, display)
    data, positions = _PARSED[key]
    copied = Positions(**{f.name: _copy(getattr(positions, f.name)) for f in fields(positions)})
    return _copy(data), copied


def _copy(value: Any) -> Any:
    """A deep copy of plain data (dicts, lists, immutable scalars), much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
