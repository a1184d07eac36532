"""Stage 1: read a YAML file into plain data plus a map of source positions.

Later stages work on plain dicts, lists and scalars (easy to merge, interpolate
and hand to Pydantic), while every error still needs to point at a line. So
the loader returns both: the data, and `Positions`, which maps each path in
the data (a tuple of keys and indexes) to where its value was written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from envspec.errors import Location, Problem, SpecError
from envspec.memo import Bounded

PathKey = tuple[str | int, ...]


@dataclass
class Positions:
    """Where each value of a document came from. Paths missing here fall back to their nearest ancestor."""

    by_path: dict[PathKey, Location] = field(default_factory=dict)
    default: Location | None = None

    def copy(self) -> Positions:
        """A copy that can be changed without touching this one (its tables hold immutable Locations)."""
        return Positions(**{f.name: dict(v) if isinstance(v := getattr(self, f.name), dict) else v for f in fields(self)})

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


# Tags the resolver gives plain values; any other (`!!python/object`, `!!binary`, `!custom`) is refused.
_PLAIN_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp"))


def _check_tag(tag: str, node: Any, display: str) -> None:
    if tag not in _PLAIN_TAGS:
        shown = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
        raise SpecError([Problem(f"YAML tags are not allowed (got {shown}); write a plain value", _node_location(node, display))])


def _scalar(node: Any, display: str) -> Any:
    """YAML 1.2 core-schema values: `yes` and `on` stay strings; timestamps stay strings."""
    tag, text = node.tag, node.value
    if tag not in _PLAIN_TAGS:
        _check_tag(tag, node, display)
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


# Bounds on YAML aliases: a "billion laughs" chain of anchors expands exponentially, so expansion
# stops (with an error at the alias) long before it costs time or memory. Aliases to scalars and to
# small mappings (`<<: *defaults`) stay far below these.
MAX_ALIAS_NODES = 10_000  # values produced by expanding aliases, per document
MAX_ALIAS_DEPTH = 4  # aliases inside aliased content inside aliased content ...
MAX_NESTING = 100  # mappings/lists inside each other


def expanded_size(node: Any, sizes: dict[int, int], stack: set[int], bound: int | None = None) -> int:
    """Values one expansion of composed `node` produces, an aliased node counted each time it appears;
    -1 if it contains itself. `sizes` memoises every node counted (so its length is the number of
    distinct nodes); with a `bound`, counting a collection stops once it is past it."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if not isinstance(node.value, list):
        sizes[key] = 1
        return 1
    if key in stack:
        return -1
    stack.add(key)
    total = 1
    children = [n for pair in node.value for n in pair] if node.value and isinstance(node.value[0], tuple) else node.value
    for child in children:
        size = expanded_size(child, sizes, stack, bound)
        if size < 0:
            return -1
        total += size
        if bound is not None and total > bound:
            break  # large enough to refuse; no need to count the rest
    stack.discard(key)
    sizes[key] = total
    return total


class _Builder:
    """Build plain Python values from composed nodes, recording each value's position on the way.

    The composer shares one node object between an anchor and its aliases, so a node seen a
    second time is an alias; expansion is counted and bounded (see MAX_ALIAS_*).
    """

    def __init__(self, display: str, text: str):
        self.display = display
        self.text = text
        self.seen: set[int] = set()
        self.sizes: dict[int, int] = {}
        self.expanded = 0
        self.alias_depth = 0
        self.aliases_seen = 0  # aliases met outside any expansion: the n-th AliasEvent of the document
        self.tracking = "&" in text  # without an anchor there can be no alias: skip the bookkeeping

    def build(self, node: Any, path: PathKey, positions: Positions, depth: int = 0) -> Any:
        if depth > MAX_NESTING:
            raise SpecError([Problem(f"nested more than {MAX_NESTING} levels deep", _node_location(node, self.display))])
        if self.tracking:
            if id(node) in self.seen:
                return self._alias(node, path, positions, depth)
            if self.alias_depth == 0:
                self.seen.add(id(node))
        if node.id != "scalar":
            _check_tag(node.tag, node, self.display)
            return self.build_fresh(node, path, positions, depth)
        return _scalar(node, self.display)

    def _alias(self, node: Any, path: PathKey, positions: Positions, depth: int) -> Any:
        if self.alias_depth == 0:  # the outermost alias: its size counts everything nested in it
            self.aliases_seen += 1
            size = self._size(node, set())
            if size < 0:
                self._refuse("an alias that contains itself (a recursive anchor) cannot be expanded")
            self.expanded += size
            if self.expanded > MAX_ALIAS_NODES:
                self._refuse(f"aliases expand to more than {MAX_ALIAS_NODES} values; refusing (a YAML alias bomb?)")
        elif self.alias_depth >= MAX_ALIAS_DEPTH:
            self._refuse(f"aliases nested more than {MAX_ALIAS_DEPTH} deep; refusing (a YAML alias bomb?)")
        self.alias_depth += 1
        try:
            if isinstance(node.value, list):  # mapping or sequence; scalars are rebuilt below
                return self.build_fresh(node, path, positions, depth)
            return _scalar(node, self.display)
        finally:
            self.alias_depth -= 1

    def build_fresh(self, node: Any, path: PathKey, positions: Positions, depth: int) -> Any:
        if node.id == "mapping":
            return self._mapping(node, path, positions, depth)
        items: list[Any] = []
        for index, item in enumerate(node.value):
            child = path + (index,)
            positions.set(child, _node_location(item, self.display))
            items.append(self.build(item, child, positions, depth + 1))
        return items

    def _size(self, node: Any, stack: set[int]) -> int:
        return expanded_size(node, self.sizes, stack, MAX_ALIAS_NODES)

    def _refuse(self, message: str) -> None:
        raise SpecError([Problem(message, self._alias_location())])

    def _alias_location(self) -> Location:
        """Where the offending alias is written: the n-th alias of the document (events are in document order)."""
        from ruamel.yaml import YAML
        from ruamel.yaml.events import AliasEvent

        count = 0
        for event in YAML(typ="safe", pure=True).parse(self.text):
            if isinstance(event, AliasEvent):
                count += 1
                if count == self.aliases_seen:
                    return Location(self.display, event.start_mark.line + 1, event.start_mark.column + 1)
        return Location(self.display, 1, 1)

    def _mapping(self, node: Any, path: PathKey, positions: Positions, depth: int) -> dict[str, Any]:
        display = self.display
        out: dict[str, Any] = {}
        merged_keys: set[str] = set()  # keys from `<<:`; the mapping's own keys override them
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged = self.build(value_node, path, Positions(), depth + 1)
                for source in merged if isinstance(merged, list) else [merged]:
                    if not isinstance(source, dict):
                        raise SpecError([Problem("`<<` must merge a mapping (or a list of mappings)", _node_location(value_node, display))])
                    for k, v in source.items():
                        if k not in out:
                            out[k] = v
                            merged_keys.add(k)
                continue
            if key_node.id != "scalar":
                raise SpecError([Problem("mapping keys must be scalars", _node_location(key_node, display))])
            if self.tracking and self.alias_depth == 0:
                if id(key_node) in self.seen:
                    self.aliases_seen += 1  # an alias used as a key
                self.seen.add(id(key_node))
            key = _scalar(key_node, display)
            if key is None or isinstance(key, (dict, list)):
                raise SpecError([Problem("mapping keys must be scalars", _node_location(key_node, display))])
            skey = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
            if skey in out and skey not in merged_keys:
                first = positions.lookup(path + (skey,))
                where = f" (first defined at line {first.line})" if first and first.path == display else ""
                raise SpecError([Problem(f"duplicate key {skey!r}{where}", _node_location(key_node, display))])
            child = path + (skey,)
            anchor = key_node if value_node.id != "scalar" else value_node
            positions.set(child, _node_location(anchor, display))
            merged_keys.discard(skey)
            out[skey] = self.build(value_node, child, positions, depth + 1)
        return out


def parse_yaml_text(text: str, display: str) -> tuple[Any, Positions]:
    """Parse one YAML document; syntax errors and duplicate keys become SpecErrors with positions.

    Composing nodes with the C parser and building values ourselves is ~10x faster than
    ruamel's round-trip loader, and gives every value its line and column.
    """
    positions = Positions(default=Location(display, 1, 1))
    nodes = _compose(text, display, single=True)
    node = nodes[0] if nodes else None
    if node is None:
        return None, positions
    return _Builder(display, text).build(node, (), positions), positions


def parse_yaml_stream(text: str, display: str) -> list[tuple[Any, Positions]]:
    """Each non-empty document of a `---`-separated stream, with the same bounds and positions as `parse_yaml_text`.

    Raw object files are streams; reading them here rather than with a second loader keeps
    the alias-bomb and nesting limits, the refused tags and the located errors for them too.
    """
    nodes = _compose(text, display, single=False)  # a list keeps every node alive: ids stay unique
    builder = _Builder(display, text)  # one builder: alias counts run through the stream, so refusals point at the right alias
    out: list[tuple[Any, Positions]] = []
    for node in nodes:
        if node is None:
            continue
        builder.expanded = 0  # the expansion bound is per document
        positions = Positions(default=_node_location(node, display))
        value = builder.build(node, (), positions)
        if value is not None:
            out.append((value, positions))
    return out


def _compose(text: str, display: str, single: bool) -> list[Any]:
    """The node of each document (of the only one if `single`), composed by libyaml, with YAML errors as
    located SpecErrors.

    PyYAML's C composer (the same libyaml) composes the common file without importing ruamel.yaml
    (~10 ms of a cold start); ruamel's composes whatever that one leaves to it (envspec.render.libyaml.
    compose_authored), and every error, so its messages stay the ones envspec gives.
    """
    deep = too_deep(text)
    if deep is not None:
        raise SpecError([Problem(f"nested more than {MAX_NESTING} levels deep", Location(display, *deep))])
    from envspec.render.libyaml import compose_authored

    fast = compose_authored(text)
    if fast is not None and not (single and len(fast) > 1):  # several documents: ruamel's message
        return fast
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        yaml = YAML(typ="safe", pure=False)
        return [yaml.compose(text)] if single else list(yaml.compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display, 1, 1)
        raise SpecError([Problem(_syntax_message(exc) + _flow_hint(text, exc), location)]) from None
    except ReaderError as exc:  # a character YAML does not allow (control characters, lone surrogates...)
        offset = exc.position if isinstance(exc.position, int) else 0
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        raise SpecError([Problem(f"YAML does not allow the character U+{char:04X} here", _text_location(text, offset, display))]) from None
    except YAMLError as exc:
        raise SpecError([Problem(f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", Location(display, 1, 1))]) from None


_LINE_START = re.compile(r"^[ \t?:-]*", re.MULTILINE)


def _block_depth_bound(text: str) -> int:
    """An upper bound on how deep block collections nest: each level needs one more character of
    indentation or one more `- ` / `? ` on its line. `- - - x` is 3 levels on one line; 30000 of them
    crash libyaml's composers (they recurse per level), so such text gets the exact check first."""
    return max(map(len, _LINE_START.findall(text)), default=0)


def _bracket_depth(text: str) -> int:
    """How deep brackets nest, ignoring quoting: a cheap upper-bound-ish guess before the exact check."""
    import re

    depth = deepest = 0
    for char in re.sub(r"[^\[\]{}]+", "", text):
        depth = depth + 1 if char in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def too_deep(text: str) -> tuple[int, int] | None:
    """(line, column), 1-based, of the first collection nested deeper than MAX_NESTING, else None.

    libyaml's composers (PyYAML's and ruamel's) recurse once per level and crash the process at
    ~20000 levels, so text that might nest that deep is read as events first (libyaml's parser does
    not recurse); the cheap bounds keep ordinary text from paying for it."""
    block = _block_depth_bound(text)
    if block <= MAX_NESTING and (
        text.count("[") + text.count("{") + block <= MAX_NESTING or _bracket_depth(text) + block <= MAX_NESTING
    ):
        return None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    try:
        for event in YAML(typ="safe", pure=False).parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    return event.start_mark.line + 1, event.start_mark.column + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        return None  # not YAML: the composer reports that, at its place
    return None


def _flow_hint(text: str, exc: Any) -> str:
    """`{name: x-${params.pr}}`: the braces of a reference end a flow mapping; say to quote it."""
    mark = exc.problem_mark or exc.context_mark
    if "found unexpected ':'" in str(exc.problem) and mark is not None:
        return "; inside {...} or [...] a value holding ':' (an image tag, a URL) must be quoted, e.g. {image: \"nginx:1.27\"}"
    if mark is None or "flow" not in f"{exc.context} {exc.problem}":
        return ""
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    if "${" not in line:
        return ""
    return "; a ${...} inside a flow mapping or list ({...} or [...]) must be quoted, e.g. {name: \"x-${params.pr}\"}"


def _syntax_message(exc: Any) -> str:
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    text = problem or context or type(exc).__name__
    if context and problem and context != problem:
        text = f"{problem} ({context})"
    return f"YAML syntax error: {text}"


def _text_location(text: str, offset: int, display: str) -> Location:
    before = text[:offset]
    return Location(display, before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def _byte_location(data: bytes, offset: int, display: str) -> Location:
    """Line and column (in characters) of a byte offset in a file that is UTF-8 up to there."""
    before = data[:offset]
    line = before.count(b"\n") + 1
    start = before.rfind(b"\n") + 1
    col = len(before[start:].decode("utf-8", errors="replace")) + 1
    return Location(display, line, col)


def read_text(path: Path, display: str) -> str:
    """A file's text; a missing, unreadable or non-UTF-8 file is a SpecError at the place it goes wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem("file not found", Location(display))]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(f"not UTF-8 text: {exc.reason} (byte 0x{exc.object[exc.start]:02x})", _byte_location(exc.object, exc.start, display))]) from None
    except IsADirectoryError:
        raise SpecError([Problem("is a directory, not a file", Location(display))]) from None
    except OSError as exc:
        raise SpecError([Problem(f"cannot read file: {exc.strerror or exc}", Location(display))]) from None


def load_document(path: Path, display: str) -> Document:
    """A spec file, parsed (once per text, see `shared_document`), as the caller's own copy to change."""
    doc, _ = shared_document(path, display)
    return Document(copy_data(doc.data), doc.positions.copy(), doc.path, doc.display)


# Parsed spec files by (path, display path, exact text): `render --all` of many environments that
# extend the same files parses each once per process. The text is the key, so an edited file is
# parsed anew. What is kept is shared: callers that change it take a copy (load_document does).
_PARSED: Bounded[tuple[str, str, str], Document] = Bounded(256)


def shared_document(path: Path, display: str) -> tuple[Document, str]:
    """A spec file parsed once per text and checked to be a mapping (shared, never to be changed),
    and the text it was parsed from."""
    text = read_text(path, display)
    key = (str(path), display, text)
    doc = _PARSED.get(key)
    if doc is None:
        data, positions = parse_yaml_text(text, display)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SpecError([Problem("an environment file must be a mapping at the top level", Location(display, 1, 1))])
        doc = Document(data, positions, path, display)
        _PARSED.remember(key, doc)
    return doc, text


def copy_data(value: Any) -> Any:
    """A deep copy of plain data (dicts, lists, immutable scalars), much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value
