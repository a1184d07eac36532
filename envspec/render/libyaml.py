"""libyaml (through PyYAML's C parser and emitter) for machine-generated YAML, read and written as ruamel does.

ruamel.yaml is the authority on authored spec files, where every value needs its
line and column and every error its message (envspec.spec.loader). Template output
and the dumped manifests need no positions, and there ruamel's pure-Python resolver, constructor and representer
layers are most of a render's time. PyYAML drives the same libyaml C code, so
this module pairs its C composer and serializer with a YAML 1.2 core resolver
copied from ruamel's (`yes`, `on` and `0777`-as-octal are YAML 1.1 ideas), and
turns nodes into values (and values into nodes) directly, as ruamel's safe
constructor and representer do: ~3x faster each way.

Writing goes further: the common case (block mappings and sequences of short printable strings,
numbers, booleans and nulls) is written directly as the text libyaml's emitter would write, each
distinct string's text worked out once (`_Writer`), ~6x faster than building nodes for the emitter;
anything else still takes the emitter. Authored spec files are composed here too (`compose_authored`),
so loading them needs no ruamel.yaml import unless ruamel must give the message.

The fast path only vouches for what it fully understands: strings, ints,
floats, booleans, null, mappings with unique scalar keys and sequences, in a
stream without directives, anchors or aliases. Anything else (a timestamp, a
merge key, a tag of its own, a duplicate key, a syntax error, an object
written twice) makes `load_generated` return None and `dump_generated` raise
`NotPlain`, and the caller takes ruamel's path, which stays the authority for
both the result and the error message. Property tests (tests/test_libyaml.py)
hold both readers and both writers to the same values and bytes on arbitrary
strings; the one known difference is that PyYAML's newer libyaml reads a few
flow collections ruamel's copy refuses (`[http://x:80/y]`).
"""

from __future__ import annotations

import functools
import io
import re
from typing import Any, Callable

import yaml
from yaml._yaml import CEmitter, CParser
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

_TAG = "tag:yaml.org,2002:"


class Resolver12(BaseResolver):
    """The implicit tags of ruamel.yaml's YAML 1.2 resolver, in its order (first match wins)."""


Resolver12.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("float", r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
    ("int", r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", "-+0123456789"),
    ("merge", r"^(?:<<)$", "<"),
    ("null", r"^(?: ~|null|Null|NULL| )$", ["~", "n", "N", ""]),
    ("timestamp", r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", "0123456789"),
    ("value", r"^(?:=)$", "="),
    ("yaml", r"^(?:!|&|\*)$", "!&*"),
):
    Resolver12.add_implicit_resolver(_TAG + _tag, re.compile(_pattern, re.X), list(_first))


class NotPlain(Exception):
    """Something only ruamel's path may read or write (it gives the result or the error message)."""


_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"


class _Resolving(Resolver12):
    """The resolver, asked once per distinct plain scalar: the C parser and emitter ask for every scalar
    and every node."""

    _known: dict[str, str] = {}  # plain scalar -> tag

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # No path resolvers: what BaseResolver.resolve would answer without the calls. A quoted or
        # tagged (`!`) scalar is a string; a plain one's tag depends on its text alone.
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0]:
            return _STR
        tag = self._known.get(value)
        if tag is None:
            if len(self._known) > 100_000:
                self._known.clear()
            tag = self._known[value] = super().resolve(kind, value, implicit)
        return tag

    # Without path resolvers these have nothing to track; the composer and serializer call them per node.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


def _int(text: str) -> int:
    """ruamel's YAML 1.2 int: 0b/0x/0o prefixes, and a leading 0 is still decimal."""
    text = text.replace("_", "")
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in "+-" else text
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if text.startswith(prefix):
            return sign * int(text[2:], base)
    return sign * int(text)


def _float(text: str) -> float:
    text = text.replace("_", "").lower()
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in "+-" else text
    if text == ".inf":
        return sign * float("inf")
    if text == ".nan":
        return float("nan")
    return sign * float(text)


def _value(node: Any, seen: set[int] | None) -> Any:
    """The Python value of a composed node, as ruamel's safe constructor builds it (else NotPlain)."""
    if seen is not None:  # the text may hold anchors: an aliased node is ruamel's business
        if id(node) in seen:
            raise NotPlain("an alias")
        seen.add(id(node))
    cls, tag = node.__class__, node.tag
    if cls is ScalarNode:
        if tag == _STR:
            return node.value
        if tag == _INT:
            return _int(node.value)
        if tag == _FLOAT:
            return _float(node.value)
        if tag == _BOOL and node.value.lower() in ("true", "false"):
            return node.value.lower() == "true"
        if tag == _NULL:
            return None
        raise NotPlain(tag)
    if cls is MappingNode and tag == _MAP:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode or key_node.tag == _MERGE:
                raise NotPlain("a merge key or a collection as a key")
            key = key_node.value if key_node.tag == _STR and seen is None else _value(key_node, seen)
            if key in out:
                raise NotPlain("a duplicate key")  # ruamel refuses it, with its own message
            if value_node.__class__ is ScalarNode and value_node.tag == _STR and seen is None:
                out[key] = value_node.value  # the common case, without a call
            else:
                out[key] = _value(value_node, seen)
        return out
    if cls is SequenceNode and tag == _SEQ:
        if seen is not None:
            return [_value(item, seen) for item in node.value]
        return [item.value if item.__class__ is ScalarNode and item.tag == _STR else _value(item, None) for item in node.value]
    raise NotPlain(tag)


class _Composer(CParser, _Resolving):  # type: ignore[misc]
    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        _Resolving.__init__(self)


def load_generated(text: str) -> list[Any] | None:
    """Every non-null document of a YAML stream, as ruamel's safe loader would build them; None when only
    ruamel may say (see the module docstring)."""
    if "%" in text and re.search(r"^%", text, re.MULTILINE):
        return None  # a directive (%YAML 1.1 changes the resolver): ruamel's business
    composer = _Composer(text)
    may_alias = "&" in text  # an alias without an anchor before it is a composer error
    try:
        documents = []
        while composer.check_node():
            value = _value(composer.get_node(), set() if may_alias else None)
            if value is not None:
                documents.append(value)
        return documents
    except (yaml.YAMLError, NotPlain, ValueError, TypeError, IndexError, RecursionError):
        return None
    finally:
        composer.dispose()


# Tags a composed node of an authored file may carry here; any other is the loader's refusal, which
# ruamel's path gives (so the node it points at is the one ruamel composes).
_RESOLVED_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp"))


def compose_authored(text: str) -> list[Any] | None:
    """The node (with marks) of every document of an authored YAML file, as ruamel's C composer builds it:
    the same libyaml composition and the same YAML 1.2 tags, without importing ruamel.yaml.

    None when only ruamel may say: a syntax or character error (its messages, located, are envspec's),
    a directive, a duplicate anchor, a tag of its own, or a flow collection holding a plain scalar that
    is empty or holds ':' or '?': PyYAML's newer libyaml reads `[a:b]` and `[?]`, ruamel's copy refuses
    them (tests/test_libyaml.py holds the two composers to the same nodes)."""
    if "%" in text and re.search(r"^%", text, re.MULTILINE):
        return None
    composer = _Composer(text)
    try:
        nodes = []
        while composer.check_node():
            nodes.append(composer.get_node())
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        return None
    finally:
        composer.dispose()
    if ("!" in text or "[" in text or "{" in text) and not all(_ruamel_composes_alike(n, False, set()) for n in nodes):
        return None
    return nodes


def _ruamel_composes_alike(node: Any, in_flow: bool, visited: set[int]) -> bool:
    """No tag of its own, and no plain scalar in a flow collection that ruamel's older libyaml refuses."""
    if id(node) in visited:  # an alias: its node was checked where it is anchored (and bombs stay cheap)
        return True
    visited.add(id(node))
    if node.tag not in _RESOLVED_TAGS:
        return False
    cls = node.__class__
    if cls is ScalarNode:
        return not (in_flow and node.style == "" and (not node.value or ":" in node.value or "?" in node.value))
    in_flow = in_flow or node.flow_style is True
    if cls is MappingNode:
        return all(_ruamel_composes_alike(k, in_flow, visited) and _ruamel_composes_alike(v, in_flow, visited) for k, v in node.value)
    return all(_ruamel_composes_alike(item, in_flow, visited) for item in node.value)


def _float_text(data: float) -> str:
    """As ruamel writes a float in YAML 1.2 (no `.0` pushed into `1e+17`, unlike PyYAML's YAML 1.1)."""
    if data != data:
        return ".nan"
    if data == float("inf"):
        return ".inf"
    if data == float("-inf"):
        return "-.inf"
    return repr(data).lower()


def _node(value: Any, str_style: Callable[[str], str | None], seen: set[int]) -> Any:
    """The node ruamel's safe representer makes of a plain value (else NotPlain)."""
    cls = value.__class__
    if cls is str:
        return ScalarNode(_STR, value, style=str_style(value))
    if cls is dict or cls is list:
        if id(value) in seen:
            raise NotPlain("an object written twice (an alias)")
        seen.add(id(value))
        if cls is dict:
            pairs = []
            for k, v in value.items():  # strings inline: most keys and values are
                key = ScalarNode(_STR, k, style=str_style(k)) if k.__class__ is str else _node(k, str_style, seen)
                pairs.append((key, ScalarNode(_STR, v, style=str_style(v)) if v.__class__ is str else _node(v, str_style, seen)))
            return MappingNode(_MAP, pairs, flow_style=False)
        return SequenceNode(_SEQ, [_node(v, str_style, seen) for v in value], flow_style=False)
    if cls is bool:
        return ScalarNode(_BOOL, "true" if value else "false")
    if cls is int:
        return ScalarNode(_INT, str(value))
    if cls is float:
        return ScalarNode(_FLOAT, _float_text(value))
    if value is None:
        return ScalarNode(_NULL, "null")
    raise NotPlain(cls.__name__)


class _Slow(Exception):
    """Something the direct writer leaves to libyaml's emitter (which writes it, or raises NotPlain)."""


# What the direct writer writes as libyaml would: printable characters of the Basic Multilingual Plane
# that libyaml neither escapes nor treats as a line break or a byte order mark (no tab, no NEL, no
# U+2028/U+2029, no U+FEFF, no surrogates). Longer strings could reach libyaml's line width (4096) and be
# folded there, so they are left to it, as are keys longer than a simple key may be (128 bytes).
_WRITABLE_RANGES = "\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"


@functools.cache
def _writable(line_breaks: bool) -> re.Pattern[str]:
    """Compiled on first need: a character class this wide costs milliseconds to compile, and most
    output is ASCII (see `_is_writable`)."""
    return re.compile(("[\n" if line_breaks else "[") + _WRITABLE_RANGES + "]*")


def _is_writable(text: str, line_breaks: bool = False) -> bool:
    if text.isascii():  # printable ASCII is exactly 0x20-0x7e
        return (text.replace("\n", "") if line_breaks else text).isprintable()
    return _writable(line_breaks).fullmatch(text) is not None


_MAX_LENGTH = 1000
_MAX_KEY_BYTES = 128
_MAX_DEPTH = 50  # indentation stays far below the line width
# libyaml's scalar analysis: a plain scalar may not start with an indicator, hold ": " or " #",
# start with "- ", "? " or ": ", or start like a document marker.
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_Literal = tuple[str, list[str]]


def _plain_allowed(text: str) -> bool:
    """Whether libyaml writes `text` plain in block context (given the resolver reads it back as a string)."""
    first = text[0]
    if first in _FIRST_INDICATORS or text[-1] == " " or first == " ":
        return False
    if first in "-?:" and (len(text) == 1 or text[1] == " "):
        return False
    if text.startswith(("---", "...")):
        return False
    return ": " not in text and not text.endswith(":") and " #" not in text


def _string_text(text: str, style: str | None) -> str | _Literal:
    """How libyaml writes the string `text` in the style asked for (inline, or a literal block's header
    and lines); _Slow when the direct writer cannot vouch for it."""
    if style == "|":
        # One trailing line break (`|`) or none (`|-`); a leading break or several trailing ones need
        # hints (`|2`, `|+`) the direct writer leaves to libyaml.
        if not _is_writable(text, line_breaks=True) or text[0] == "\n" or text.endswith("\n\n"):
            raise _Slow("a literal block with hints")
        if text[-1] == "\n":
            return "|", text[:-1].split("\n")
        return "|-", text.split("\n")
    if len(text) > _MAX_LENGTH or not _is_writable(text):
        raise _Slow("a string libyaml may escape or fold")
    if style == '"':
        if '"' in text or "\\" in text:
            raise _Slow("a string with escapes")
        return f'"{text}"'
    if style is not None or not text:
        raise _Slow(f"the style {style!r}")
    if _plain_allowed(text) and _RESOLVER.resolve(ScalarNode, text, (True, False)) == _STR:
        return text
    return "'" + text.replace("'", "''") + "'"  # libyaml's choice when plain is not allowed


class _Writer:
    """Block YAML written directly, byte for byte as libyaml's emitter writes it (width 4096, indent 2,
    unicode allowed, sequences in mappings not indented), for the values it vouches for; else _Slow.

    Each distinct string's text is worked out once and kept (keys and label values repeat in every
    object), so writing is mostly joining cached pieces."""

    def __init__(self, str_style: Callable[[str], str | None]) -> None:
        self.str_style = str_style
        self.values = _VALUE_TEXTS.setdefault(str_style, {})
        self.keys = _KEY_TEXTS.setdefault(str_style, {})
        self.seen: set[int] = set()
        self.out: list[str] = []

    def value_text(self, value: Any) -> str | _Literal:
        cls = value.__class__
        if cls is str:
            text = self.values.get(value)
            if text is None:
                if len(self.values) > 100_000:
                    self.values.clear()
                text = self.values[value] = _string_text(value, self.str_style(value))
            return text
        if cls is bool:
            return "true" if value else "false"
        if cls is int:
            return str(value)
        if cls is float:
            text = _float_text(value)
            if _RESOLVER.resolve(ScalarNode, text, (True, False)) != _FLOAT:
                raise _Slow("a float libyaml tags")
            return text
        if value is None:
            return "null"
        raise _Slow(cls.__name__)

    def key_text(self, key: Any) -> str:
        text = self.keys.get(key) if key.__class__ is str else None
        if text is None:
            if key.__class__ is not str or len(key.encode("utf-8")) > _MAX_KEY_BYTES:
                raise _Slow("a key that is not a short string")
            text = _string_text(key, self.str_style(key))
            if text.__class__ is not str:
                raise _Slow("a multi-line key")
            if len(self.keys) > 100_000:
                self.keys.clear()
            self.keys[key] = text
        return text

    def enter(self, value: Any, depth: int) -> None:
        if id(value) in self.seen:
            raise _Slow("an object written twice")  # libyaml's path refuses it (NotPlain)
        self.seen.add(id(value))
        if depth > _MAX_DEPTH:
            raise _Slow("deep nesting")

    def mapping(self, mapping: dict[Any, Any], indent: int, first_pad: str, depth: int) -> None:
        """The pairs of a non-empty mapping, the first after `first_pad` (its line's start is already written)."""
        self.enter(mapping, depth)
        out = self.out
        pad = " " * indent
        line_pad = first_pad
        for key, value in mapping.items():
            key_text = self.key_text(key)
            cls = value.__class__
            if (cls is dict or cls is list) and value:
                out.append(f"{line_pad}{key_text}:\n")
                if cls is dict:
                    self.mapping(value, indent + 2, pad + "  ", depth + 1)
                else:
                    self.sequence(value, indent, pad, depth + 1)  # not indented inside a mapping
            elif cls is dict or cls is list:
                self.enter(value, depth + 1)
                out.append(f"{line_pad}{key_text}: {'{}' if cls is dict else '[]'}\n")
            else:
                text = self.value_text(value)
                if text.__class__ is str:
                    out.append(f"{line_pad}{key_text}: {text}\n")
                else:
                    self.literal(f"{line_pad}{key_text}: ", text, indent + 2)  # type: ignore[arg-type]
            line_pad = pad

    def sequence(self, sequence: list[Any], indent: int, first_pad: str, depth: int) -> None:
        """The items of a non-empty sequence, the first after `first_pad`."""
        self.enter(sequence, depth)
        out = self.out
        pad = " " * indent
        line_pad = first_pad
        for item in sequence:
            cls = item.__class__
            if (cls is dict or cls is list) and item:
                out.append(f"{line_pad}- ")
                if cls is dict:
                    self.mapping(item, indent + 2, "", depth + 1)
                else:
                    self.sequence(item, indent + 2, "", depth + 1)
            elif cls is dict or cls is list:
                self.enter(item, depth + 1)
                out.append(f"{line_pad}- {'{}' if cls is dict else '[]'}\n")
            else:
                text = self.value_text(item)
                if text.__class__ is str:
                    out.append(f"{line_pad}- {text}\n")
                else:
                    self.literal(f"{line_pad}- ", text, indent + 2)  # type: ignore[arg-type]
            line_pad = pad

    def literal(self, before: str, block: _Literal, indent: int) -> None:
        header, lines = block
        pad = " " * indent
        self.out.append(before + header + "\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in lines))


_RESOLVER = _Resolving()
_VALUE_TEXTS: dict[Callable[[str], str | None], dict[str, str | _Literal]] = {}
_KEY_TEXTS: dict[Callable[[str], str | None], dict[str, str]] = {}


def _write_stream(objects: list[Any], str_style: Callable[[str], str | None]) -> str:
    """The stream libyaml's emitter would write for these documents, written directly; _Slow if the
    direct writer cannot vouch for some value (then nothing of it is used)."""
    writer = _Writer(str_style)
    for index, obj in enumerate(objects):
        if index:
            writer.out.append("---\n")
        writer.seen.clear()  # anchors are per document: an object may recur in another one
        cls = obj.__class__
        if not obj or (cls is not dict and cls is not list):
            raise _Slow("an empty or unusual document")  # `{}` after `---` is written on its line
        if cls is dict:
            writer.mapping(obj, 0, "", 0)
        else:
            writer.sequence(obj, 0, "", 0)
    return "".join(writer.out)


class _Emitter(CEmitter, _Resolving):  # type: ignore[misc]
    def __init__(self, stream: Any) -> None:
        CEmitter.__init__(self, stream, width=4096, allow_unicode=True)
        _Resolving.__init__(self)


def dump_generated(objects: list[Any], str_style: Callable[[str], str | None]) -> str:
    """One document per object (the first without `---`), as ruamel's C emitter writes them, each string in
    the style `str_style` picks for it (None: plain where the emitter can); NotPlain for a value that is
    not a plain type, a document that is a scalar, or an object written twice.

    The common case (block mappings and sequences of short printable strings, numbers, booleans and
    nulls) is written directly (`_write_stream`); anything else goes through libyaml's emitter."""
    if not all(isinstance(obj, (dict, list)) for obj in objects):
        raise NotPlain("a document that is a scalar")  # its end marker (`...`) is ruamel's business
    try:
        return _write_stream(objects, str_style)
    except _Slow:
        return _emit(objects, str_style)


def _emit(objects: list[Any], str_style: Callable[[str], str | None]) -> str:
    """The documents through libyaml's emitter: the node graph ruamel's safe representer would build."""
    nodes = [_node(obj, str_style, set()) for obj in objects]
    stream = io.StringIO()
    emitter = _Emitter(stream)
    try:
        emitter.open()
        for node in nodes:
            emitter.serialize(node)
        emitter.close()
    except yaml.YAMLError as exc:
        raise NotPlain(str(exc)) from None
    finally:
        emitter.dispose()
    text = stream.getvalue()
    # After a keep-chomped block (`|+`) in the last document, PyYAML's libyaml ends the stream with a
    # document end marker that ruamel's does not write. A line that is exactly `...` at the root can
    # only be that marker (block scalars are indented).
    return text[:-4] if text.endswith("\n...\n") else text


__all__ = ["NotPlain", "Resolver12", "compose_authored", "dump_generated", "load_generated"]
