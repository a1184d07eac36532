"""Rendering's fast paths answer exactly as the general paths do: the YAML-safe encoding's (exact str, dict, list;
strings with nothing to escape), against the encoding as it was before them, kept verbatim below; and the
sandbox's attribute lookup on plain dicts, against Jinja's ImmutableSandboxedEnvironment."""

from __future__ import annotations

import enum
import json
import math
import re
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from envspec.render.templates import BoundedSandbox, _finalize, make_environment
from envspec.render.yamlsafe import UnsafeValue, quote_string, to_yaml_flow

_MUST_ESCAPE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def reference_quote(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    return _MUST_ESCAPE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", encoded)


def reference_flow(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeValue(f"cannot write {value!r} to YAML")
        return repr(value)
    if isinstance(value, str):
        return reference_quote(value)
    if isinstance(value, dict):
        items = ", ".join(f"{reference_quote(str(k))}: {reference_flow(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(reference_flow(v) for v in value) + "]"
    raise UnsafeValue(f"cannot write a {type(value).__name__} to YAML")


class Colour(enum.StrEnum):
    RED = "red"
    ODD = 'o"d\nd'


class Level(enum.IntEnum):
    LOW = 1


class Shouty(str):
    """A str subclass that prints and formats itself otherwise: its characters are what must be encoded."""

    def __str__(self) -> str:
        return self.upper()

    def __format__(self, spec: str) -> str:
        return "formatted"


# Every character, lone surrogates included, with the ones the encodings treat specially made likely.
TEXT = st.text(st.one_of(st.characters(), st.sampled_from('"\\\n\t\x00\x1f\x7f\x85\x9f\u2028\u2029\ud800\udfff\ufeff\ufffe\uffff')))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), TEXT,
    TEXT.map(Shouty), st.sampled_from([Colour.RED, Colour.ODD, Level.LOW]),
)
KEYS = st.one_of(TEXT, st.integers(), st.booleans(), TEXT.map(Shouty))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(KEYS, inner, max_size=4),
        st.dictionaries(KEYS, inner, max_size=4).map(OrderedDict),
    ),
    max_leaves=12,
)


def outcome(encode: Any, value: Any) -> tuple[str, str]:
    try:
        return "ok", encode(value)
    except UnsafeValue as exc:
        return "unsafe", str(exc)


@settings(max_examples=600)
@given(TEXT)
def test_quote_string_is_the_json_and_unicode_escape_encoding(text: str) -> None:
    assert quote_string(text) == reference_quote(text)
    assert quote_string(Shouty(text)) == reference_quote(Shouty(text))


@settings(max_examples=600)
@given(VALUES)
def test_to_yaml_flow_is_the_general_encoding(value: Any) -> None:
    assert outcome(to_yaml_flow, value) == outcome(reference_flow, value)


@settings(max_examples=300)
@given(VALUES)
def test_finalize_writes_every_value_through_the_encoding(value: Any) -> None:
    result = outcome(_finalize, value)
    assert result == outcome(reference_flow, value)
    if result[0] == "ok":
        assert isinstance(_finalize(value), Markup)


def test_template_made_fragments_pass_as_they_are() -> None:
    fragment = Markup("- name: a\n")
    assert _finalize(fragment) is fragment


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", float("nan"), [float("inf")], {"a": object()}])
def test_values_with_no_yaml_form_are_refused(value: Any) -> None:
    with pytest.raises(UnsafeValue):
        to_yaml_flow(value)


# The sandbox's attribute lookup: the plain-dict shortcut answers as ImmutableSandboxedEnvironment does.
NAMES = st.one_of(st.sampled_from(sorted(dir(dict)) + ["name", "kind", "items", "get", "__class__", "mro"]),
                  st.text(max_size=8), st.integers(), st.none())
OBJECTS = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(["name", "items", "get", "keys", "__class__"]), st.text(max_size=8), st.integers()),
                    st.integers(), max_size=5),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3).map(OrderedDict),
    st.lists(st.integers(), max_size=3), st.text(max_size=5), st.integers(),
)


def lookup(getattr_: Any, environment: Any, obj: Any, name: Any) -> tuple[str, Any]:
    try:
        value = getattr_(environment, obj, name)
    except Exception as exc:  # noqa: BLE001 -- the exception type and text are what must match
        return "raises", (type(exc).__name__, str(exc))
    if isinstance(value, Undefined):
        return "undefined", (type(value).__name__, value._undefined_name, value._undefined_obj is obj, value._undefined_hint)
    return "value", value


@settings(max_examples=600)
@given(OBJECTS, NAMES)
def test_the_dict_lookup_shortcut_is_the_sandboxs_answer(obj: Any, name: Any) -> None:
    environment = make_environment(None)
    assert lookup(BoundedSandbox.getattr, environment, obj, name) == lookup(ImmutableSandboxedEnvironment.getattr, environment, obj, name)


@given(text=st.text(alphabet=st.sampled_from(list("ab<&>'\" \n\r\t")), max_size=30),
       width=st.integers(0, 12) | st.sampled_from(["\t", "  ", "<i>", "&"]),
       first=st.booleans(), blank=st.booleans(), markup=st.booleans())
def test_the_indent_filter_is_jinjas(text: str, width: int | str, first: bool, blank: bool, markup: bool) -> None:
    """envspec's `indent` (Markup worked out as plain text) gives Jinja's text and type, Markup or not."""
    from jinja2.filters import do_indent

    from envspec.render.templates import _indent

    value = Markup(text) if markup else text
    ours, jinjas = _indent(value, width, first, blank), do_indent(value, width, first, blank)
    assert ours == jinjas and type(ours) is type(jinjas)


def test_templates_use_envspecs_indent() -> None:
    from envspec.render.templates import _indent

    env = make_environment(None)
    assert env.filters["indent"] is _indent
    assert env.from_string("{% macro m() %}a: 1\nb: <&>\n{% endmacro %}x:\n  {{ m() | indent(2) }}").render() == "x:\n  a: 1\n  b: <&>\n"
