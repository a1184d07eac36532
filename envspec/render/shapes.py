"""Template output parsed once per shape, not once per render.

`render --all` of many instances renders the same templates over and over, and
their outputs differ only in the values the `{{ ... }}` expressions wrote (a
name, an image, a host): parsing each output again was a third of the time an
environment took. Every such value reaches the text through Jinja's finalize as
one self-contained flow node (yamlsafe.to_yaml_flow: a double-quoted string, a
number, a boolean, null or a flow collection, on one line), and finalize records
it here (`recording`). The output with each recorded value replaced by a numbered
marker is the output's *shape*; a shape met a second time is parsed, once per
process, and every later output of that shape is built from it by putting the
values back in (the first output of a shape is just parsed: a single render
gains nothing from its shapes).

That gives what parsing the output would give because a flow node means the same
wherever a plain scalar could stand, and the markers are only taken where one
does: a shape is used only when every marker in it parsed as a whole plain
scalar of its own with no tag (not inside a quoted, block or longer scalar) and
no other text holds the marker characters. Anything else (an alias, a tab, a
directive, a marker the parse split or swallowed into another scalar, a value
too long for a key, too deeply nested, or of a kind a key cannot be, a duplicate
key) sends the
output to `load_generated`, as before, which stays the authority for the result
and for every error. tests/test_shapes.py holds both paths to the same values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from envspec.memo import Bounded
from envspec.render.libyaml import _MAP, _MERGE, _SEQ, NotPlain, _Composer, _value, load_generated
from envspec.render.yamlsafe import read_back
from envspec.spec.loader import MAX_NESTING

MARK, END = "\ue000", "\ue001"  # private-use characters: no value holds them raw in a shape (checked)
MAX_KEY = 1000  # libyaml refuses an implicit key over 1024 characters; a longer value as a key parses the text

# What finalize wrote during the current render, in order: (flow node text, the value it wrote). None
# outside `recording()`: other renders (explain, tests) record nothing.
recorded: list[tuple[str, Any]] | None = None
_NOT_PARSED = object()
_DIRECTIVE = re.compile(r"^%", re.MULTILINE)


@contextmanager
def recording() -> Iterator[list[tuple[str, Any]]]:
    """Record finalize's output for one render (renders run one at a time in a process)."""
    global recorded
    values: list[tuple[str, Any]] = []
    previous, recorded = recorded, values
    try:
        yield values
    finally:
        recorded = previous


class _Slot:
    """Where the index-th recorded value goes; `depth` is how many collections enclose it; `key_room`,
    for a mapping's key, how long its value may be before libyaml refuses the key (None: not a key)."""

    __slots__ = ("index", "depth", "key_room")

    def __init__(self, index: int, depth: int) -> None:
        self.index, self.depth, self.key_room = index, depth, None


class _Pairs(list):  # type: ignore[type-arg]
    """A mapping with a marker among its keys: (key or _Slot, value) pairs, keys checked when filled."""


class _Unusable(Exception):
    """The shape does not stand for its outputs: parse each output instead."""


_UNUSABLE = object()
_ONCE = object()  # a shape seen once so far
_ATOMS = frozenset((str, int, float, bool, type(None)))
_SHAPES: Bounded[str, Any] = Bounded(512)  # shape text -> (documents, slots), _ONCE or _UNUSABLE


def _slot_index(text: str) -> int | None:
    if text[:1] == MARK and text[-1:] == END and text[1:-1].isdigit() and text[1:-1].isascii():
        return int(text[1:-1])
    return None


def _shape(node: Any, depth: int, slots: list[_Slot]) -> Any:
    """A composed node as a value, with a _Slot wherever a marker stands as a whole plain scalar."""
    cls, tag = node.__class__, node.tag
    if cls is ScalarNode:
        text = node.value
        if MARK in text or END in text:  # a whole untagged plain scalar: _markers_stand_alone saw to it
            index = _slot_index(text)
            if index is None:
                raise _Unusable("a marker inside another scalar")
            slot = _Slot(index, depth)
            slots.append(slot)
            return slot
        return _value(node, None)
    if cls is MappingNode and tag == _MAP:
        pairs: list[tuple[Any, Any]] = []
        keyed = False
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode or key_node.tag == _MERGE:
                raise _Unusable("a merge key or a collection as a key")
            key = _shape(key_node, depth + 1, slots)
            if key.__class__ is _Slot:
                keyed, key.key_room = True, 0
            pairs.append((key, _shape(value_node, depth + 1, slots)))
        if keyed:
            return _Pairs(pairs)
        out = dict(pairs)
        if len(out) != len(pairs):
            raise _Unusable("a duplicate key")
        return out
    if cls is SequenceNode and tag == _SEQ:
        return [_shape(item, depth + 1, slots) for item in node.value]
    raise _Unusable(tag)


def _markers_stand_alone(text: str) -> bool:
    """Every marker is a whole plain scalar with no tag of its own (`!!str`, `!`: the value would read
    otherwise in the text), and nothing is an alias (the text's own parse leaves those to ruamel)."""
    parser = CParser(text)
    try:
        while parser.check_event():
            event = parser.get_event()
            if event.__class__ is AliasEvent:
                return False
            if event.__class__ is ScalarEvent and (MARK in event.value or END in event.value):
                if event.tag is not None or event.style or _slot_index(event.value) is None:
                    return False
    except yaml.YAMLError:
        return False
    finally:
        parser.dispose()
    return True


def _parse_shape(text: str) -> Any:
    """(documents, slots) of a shape, or _UNUSABLE."""
    if "\t" in text or _DIRECTIVE.search(text) or not _markers_stand_alone(text):
        # A directive (%YAML 1.1) changes how everything reads. A tab reads otherwise after a plain scalar
        # (a marker) than after a quoted or flow value: on a blank line after one, libyaml refuses it.
        return _UNUSABLE
    composer = _Composer(text)
    try:
        documents, slots = [], []  # type: ignore[var-annotated]
        while composer.check_node():
            documents.append(_shape(composer.get_node(), 0, slots))
    except (_Unusable, yaml.YAMLError, NotPlain, ValueError, TypeError, IndexError, RecursionError):
        return _UNUSABLE
    finally:
        composer.dispose()
    if len({slot.index for slot in slots}) != len(slots):
        return _UNUSABLE  # a marker a comment swallowed is fine (its value is not in the text's parse either)
    for slot in slots:
        if slot.key_room is not None:  # libyaml counts a key's 1024 characters up to its `:`, blanks included
            end = text.index(f"{MARK}{slot.index}{END}") + len(f"{MARK}{slot.index}{END}")
            gap = len(text) - end - len(text[end:].lstrip(" \t"))
            slot.key_room = max(0, MAX_KEY - gap)
    return documents, slots


def _standalone(text: str, start: int, end: int) -> bool:
    """The span is a token of its own: what a flow node between separators looks like."""
    return (start == 0 or text[start - 1] in " \t\n[{,") and (end == len(text) or text[end] in " \t\n,]}:")


def _skeleton(text: str, values: list[tuple[str, Any]]) -> tuple[str, list[tuple[str, Any]]]:
    """The text with each recorded value that stands as a token of its own replaced by a numbered marker
    (found in order: values finalize wrote but the text does not hold are skipped), and those values."""
    parts: list[str] = []
    found: list[tuple[str, Any]] = []
    pos = 0
    for item in values:
        value_text = item[0]
        if "\n" in value_text:  # never from to_yaml_flow; a line break would change what follows it
            continue
        at = text.find(value_text, pos)
        while at >= 0 and not _standalone(text, at, at + len(value_text)):
            at = text.find(value_text, at + 1)
        if at < 0:
            continue
        parts.append(text[pos:at])
        parts.append(f"{MARK}{len(found)}{END}")
        found.append(item)
        pos = at + len(value_text)
    parts.append(text[pos:])
    return "".join(parts), found


def _parsed(value_text: str, value: Any) -> Any:
    """The value a recorded flow node stands for (a new one each time: the objects are the caller's to
    keep); _NOT_PARSED when only the whole text's parse may say."""
    if type(value) is str and len(value_text) == len(value) + 2:
        return value  # quote_string escaped nothing: the text is the string between quotes
    try:
        return read_back(value)
    except TypeError:  # a float, a subclass, a lone surrogate: parse the value's own text (rare)
        documents = load_generated(value_text)
        return _NOT_PARSED if documents is None else (documents[0] if documents else None)


def _fill(node: Any, values: list[Any]) -> Any:
    cls = node.__class__
    if cls is dict:
        return {k: v if v.__class__ in _ATOMS else _fill(v, values) for k, v in node.items()}
    if cls is list:
        return [v if v.__class__ in _ATOMS else _fill(v, values) for v in node]
    if cls is _Slot:
        return values[node.index]
    if cls is not _Pairs:
        return node  # a document that is a scalar (or null): shared, as atoms are
    out: dict[Any, Any] = {}
    for key, value in node:  # _Pairs
        if key.__class__ is _Slot:
            key = values[key.index]
            if key.__class__ not in _ATOMS:
                raise _Unusable("a collection as a key")
        if key in out:
            raise _Unusable("a duplicate key")
        out[key] = value if value.__class__ in _ATOMS else _fill(value, values)
    return out


def _nesting(value_text: str, value: Any) -> int:
    """An upper bound on how deeply a value nests (its brackets; a string does not nest)."""
    return 0 if value.__class__ in _ATOMS else value_text.count("[") + value_text.count("{")


def load(text: str, values: list[tuple[str, Any]]) -> list[Any] | None:
    """What load_generated(text) gives, from the text's shape when one stands for it (see the module docstring)."""
    if not values or MARK in text or END in text:
        return load_generated(text)
    shape_text, found = _skeleton(text, values)
    if not found:
        return load_generated(text)
    shape = _SHAPES.get(shape_text)
    if shape is None:  # a shape met once is not worth parsing (twice the work for one render)
        _SHAPES.remember(shape_text, _ONCE)
        return load_generated(text)
    if shape is _ONCE:
        shape = _SHAPES.remember(shape_text, _parse_shape(shape_text))
    if shape is _UNUSABLE:
        return load_generated(text)
    documents, slots = shape
    parsed = [_parsed(value_text, value) for value_text, value in found]
    for slot in slots:
        value_text, value = found[slot.index][0], parsed[slot.index]
        if value is _NOT_PARSED or slot.depth + _nesting(value_text, value) > MAX_NESTING:
            return load_generated(text)
        if slot.key_room is not None and len(value_text) > slot.key_room:
            return load_generated(text)
    try:
        filled = [_fill(document, parsed) for document in documents]
    except _Unusable:
        return load_generated(text)
    return [document for document in filled if document is not None]
