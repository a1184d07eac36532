"""libyaml (through PyYAML's C parser and emitter) for machine-generated YAML, read and written as ruamel does.

ruamel.yaml reads authored spec files, where every value needs its line and
column (envspec.spec.loader). Template output and the dumped manifests need no
positions, and there ruamel's pure-Python resolver, constructor and representer
layers are most of a render's time. PyYAML drives the same libyaml C code, so
this module pairs its C composer and serializer with a YAML 1.2 core resolver
copied from ruamel's (`yes`, `on` and `0777`-as-octal are YAML 1.1 ideas), and
turns nodes into values (and values into nodes) directly, as ruamel's safe
constructor and representer do: ~3x faster each way.

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
    """The resolver, asked once per distinct plain scalar: the C parser and emitter ask for every scalar."""

    _known: dict[tuple[str, bool], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # No path resolvers: what BaseResolver.resolve would answer without the calls.
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0]:
            return _STR
        key = (value, implicit[1])
        tag = self._known.get(key)
        if tag is None:
            if len(self._known) > 100_000:
                self._known.clear()
            tag = self._known[key] = super().resolve(kind, value, implicit)
        return tag


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
        return [_value(item, seen) for item in node.value]
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
    may_alias = "&" in text or "*" in text
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


class _Emitter(CEmitter, _Resolving):  # type: ignore[misc]
    def __init__(self, stream: Any) -> None:
        CEmitter.__init__(self, stream, width=4096, allow_unicode=True)
        _Resolving.__init__(self)


def dump_generated(objects: list[Any], str_style: Callable[[str], str | None]) -> str:
    """One document per object (the first without `---`), as ruamel's C emitter writes them, each string in
    the style `str_style` picks for it (None: plain where the emitter can); NotPlain for a value that is
    not a plain type, a document that is a scalar, or an object written twice."""
    if not all(isinstance(obj, (dict, list)) for obj in objects):
        raise NotPlain("a document that is a scalar")  # its end marker (`...`) is ruamel's business
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


__all__ = ["NotPlain", "Resolver12", "dump_generated", "load_generated"]
