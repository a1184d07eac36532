"""libyaml (through PyYAML's C parser and emitter) for machine-generated YAML, read and written as ruamel does.

ruamel.yaml reads authored spec files, where every value needs its line and
column (envspec.spec.loader). Template output and the dumped manifests need no
positions, and there ruamel's pure-Python resolver, constructor and representer
layers are most of a render's time. PyYAML drives the same libyaml C code with
thinner Python layers, so this module pairs its C parser and emitter with a
YAML 1.2 core resolver copied from ruamel's (`yes`, `on` and `0777`-as-octal
are YAML 1.1 ideas) and constructors/representers that build exactly what
ruamel's safe ones do.

The fast path only vouches for what it fully understands: strings, ints,
floats, booleans, null, mappings with unique scalar keys and sequences, in a
stream without directives. Anything else (a timestamp, a merge key, a tag of
its own, a duplicate key, a syntax error) makes `load_generated` return None
and `dump_generated` raise `NotPlain`, and the caller takes ruamel's path,
which stays the authority for both the result and the error message. A
property test (tests/test_libyaml.py) holds both readers and both writers to
the same bytes on arbitrary strings.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml._yaml import CEmitter, CParser
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode
from yaml.representer import RepresenterError, SafeRepresenter
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


class _Constructor(SafeConstructor):
    """ruamel's safe constructors for the plain types; every other tag is NotPlain."""

    yaml_constructors: dict[Any, Any] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise NotPlain
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _TAG + "merge":
                raise NotPlain
            key = self.construct_object(key_node, deep=deep)
            if key in mapping:
                raise NotPlain  # ruamel refuses duplicate keys, with its own message
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: Any) -> int:
        text = self.construct_scalar(node).replace("_", "")
        sign = -1 if text[:1] == "-" else 1
        text = text[1:] if text[:1] in "+-" else text
        if text == "0":
            return 0
        for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
            if text.startswith(prefix):
                return sign * int(text[2:], base)
        return sign * int(text)

    def construct_yaml_float(self, node: Any) -> float:
        text = self.construct_scalar(node).replace("_", "").lower()
        sign = -1 if text[:1] == "-" else 1
        text = text[1:] if text[:1] in "+-" else text
        if text == ".inf":
            return sign * float("inf")
        if text == ".nan":
            return float("nan")
        return sign * float(text)

    def construct_not_plain(self, node: Any) -> Any:
        raise NotPlain


for _name, _method in (
    ("null", SafeConstructor.construct_yaml_null),
    ("bool", SafeConstructor.construct_yaml_bool),
    ("int", _Constructor.construct_yaml_int),
    ("float", _Constructor.construct_yaml_float),
    ("str", SafeConstructor.construct_yaml_str),
    ("seq", SafeConstructor.construct_yaml_seq),
    ("map", SafeConstructor.construct_yaml_map),
):
    _Constructor.add_constructor(_TAG + _name, _method)
_Constructor.add_constructor(None, _Constructor.construct_not_plain)


class _Loader(CParser, _Constructor, Resolver12):  # type: ignore[misc,name-defined]
    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)  # type: ignore[attr-defined]
        _Constructor.__init__(self)
        Resolver12.__init__(self)


def load_generated(text: str) -> list[Any] | None:
    """Every non-null document of a YAML stream, as ruamel's safe loader would build them; None when only
    ruamel may say (see the module docstring)."""
    if "%" in text and re.search(r"^%", text, re.MULTILINE):
        return None  # a directive (%YAML 1.1 changes the resolver): ruamel's business
    loader = _Loader(text)
    try:
        documents = []
        while loader.check_data():
            document = loader.get_data()
            if document is not None:
                documents.append(document)
        return documents
    except (yaml.YAMLError, NotPlain, ValueError, TypeError, IndexError):
        return None
    finally:
        loader.dispose()


class Representer(SafeRepresenter):
    """Plain types only (anything else is NotPlain); floats as ruamel writes them in YAML 1.2."""

    yaml_representers: dict[Any, Any] = {}
    yaml_multi_representers: dict[Any, Any] = {}

    def represent_float(self, data: float) -> Any:
        if data != data:
            value = ".nan"
        elif data == float("inf"):
            value = ".inf"
        elif data == float("-inf"):
            value = "-.inf"
        else:
            value = repr(data).lower()
        return self.represent_scalar(_TAG + "float", value)

    def represent_not_plain(self, data: Any) -> Any:
        raise NotPlain(type(data).__name__)


for _type, _represent in (
    (type(None), SafeRepresenter.represent_none),
    (bool, SafeRepresenter.represent_bool),
    (int, SafeRepresenter.represent_int),
    (float, Representer.represent_float),
    (dict, SafeRepresenter.represent_dict),
    (list, SafeRepresenter.represent_list),
):
    Representer.add_representer(_type, _represent)
Representer.add_representer(None, Representer.represent_not_plain)


def dumper_class(represent_str: Any) -> type:
    """A C emitter with the 1.2 resolver, writing str through `represent_str(representer, text)`."""

    class StrRepresenter(Representer):
        yaml_representers = dict(Representer.yaml_representers)

    StrRepresenter.add_representer(str, represent_str)

    class Dumper(CEmitter, StrRepresenter, Resolver12):  # type: ignore[misc,name-defined]
        def __init__(self, stream: Any, **kwargs: Any) -> None:
            CEmitter.__init__(self, stream, **{k: kwargs[k] for k in _EMITTER_OPTIONS if k in kwargs})  # type: ignore[attr-defined]
            StrRepresenter.__init__(self, default_style=None, default_flow_style=False, sort_keys=False)
            Resolver12.__init__(self)

    return Dumper


_EMITTER_OPTIONS = ("canonical", "indent", "width", "allow_unicode", "line_break", "encoding", "explicit_start",
                    "explicit_end", "version", "tags")


def dump_generated(objects: list[Any], dumper: type) -> str:
    """One document per object (the first without `---`), as ruamel's C emitter writes them; NotPlain for a
    value that is not a plain type."""
    if not all(isinstance(obj, (dict, list)) for obj in objects):
        raise NotPlain("a document that is a scalar")  # its end marker (`...`) is ruamel's business
    try:
        text = yaml.dump_all(objects, Dumper=dumper, width=4096, allow_unicode=True)
    except RepresenterError as exc:
        raise NotPlain(str(exc)) from None
    # After a keep-chomped block (`|+`) in the last document, PyYAML's libyaml ends the stream with a
    # document end marker that ruamel's does not write. A line that is exactly `...` at the root can
    # only be that marker (block scalars are indented).
    return text[:-4] if text.endswith("\n...\n") else text


__all__ = ["ConstructorError", "NotPlain", "Resolver12", "dump_generated", "dumper_class", "load_generated"]
