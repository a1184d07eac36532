"""libyaml's fast path (envspec/render/libyaml.py) must read and write exactly what ruamel's safe path does."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from envspec.render import libyaml, output
from envspec.render.libyaml import NotPlain, dump_generated, load_generated
from envspec.render.yamlsafe import to_yaml_flow

# Strings that tempt a resolver, a quoting rule or the emitter's line handling.
TRICKY = [
    "", " ", "yes", "No", "on", "OFF", "y", "~", "null", "Null", "true", "False", "0777", "0o17", "0x1F", "0b101",
    "1e3", "1E+3", ".5", "-.inf", ".NaN", "1_000", "1:20", "1:20.5", "2024-01-01", "2024-1-1 10:00:00", "=", "<<",
    "- a", "a: b", "a #b", "#x", "&anchor", "*alias", "!tag", "%YAML", "@x", "`x", "'q'", '"q"', "{a}", "[a]",
    "a\nb", "a\nb\n", "a\n\nb\n\n", " lead", "trail ", "tab\there", "\tlead", "line \nbreak", "crlf\r\n",
    "é ü 中文", "\u2028", "\u0085", "\ufeff", "\x00", "\x1b[0m", "ok\x7f", "---", "...", "--- x", "?", "? x",
    "x" * 5000, "long " * 1000, "a,b", "key:", "http://x:80/y", "-1", "+1", "- ", "|", ">", "\\", "\\n",
]

texts = st.one_of(st.sampled_from(TRICKY), st.text(), st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])))
scalars = st.one_of(texts, st.integers(), st.booleans(), st.none(),
                    st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1e17, 1.5e-7, 3.0, float("inf")]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                      max_leaves=12)
documents = st.lists(st.dictionaries(texts, values, min_size=1, max_size=5), min_size=1, max_size=3)


def ruamel_dump(objects: list[Any]) -> str:
    buffer = io.StringIO()
    output._yaml().dump_all(objects, buffer)
    text = buffer.getvalue()
    return text[4:] if text.startswith("---\n") else text


def ruamel_load(text: str) -> list[Any]:
    return [d for d in YAML(typ="safe", pure=False).load_all(text) if d is not None]


def same(a: Any, b: Any) -> bool:
    """Equal, with types (True is not 1) and -0.0 apart from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
@example([{text: text} for text in TRICKY[:60]])
def test_libyaml_writes_the_bytes_ruamel_writes(objects: list[dict[str, Any]]) -> None:
    assert dump_generated(objects, output._str_style) == ruamel_dump(objects)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_what_envspec_writes_libyaml_reads_back_as_ruamel_does(objects: list[dict[str, Any]]) -> None:
    text = output.dump_yaml(objects)
    fast = load_generated(text)
    assert fast is not None, "envspec's own output is plain YAML: the fast path must read it"
    assert same(fast, ruamel_load(text))
    assert same(fast, objects)


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, min_size=1, max_size=4))
def test_any_plain_scalar_reads_as_ruamel_reads_it(items: list[str]) -> None:
    """Template literal text is not quoted: each resolver must type every plain scalar alike (or defer).

    One difference is allowed: PyYAML's libyaml is newer than ruamel's copy and reads some flow
    collections that ruamel refuses (`[http://x:80/y]`, `[?]`); whatever both read, they read alike.
    """
    from ruamel.yaml.error import YAMLError

    for item in items:
        for text in (f"k: {item}\n", f"- {item}\n", f"{item}\n", item, f"a: [{item}]\n", f"{{x: {item}}}\n"):
            fast = load_generated(text)
            if fast is None:
                continue
            try:
                expected = ruamel_load(text)
            except YAMLError as exc:
                assert "[" in text or "{" in text, (text, exc)
                continue
            assert same(fast, expected), text


@settings(max_examples=300, deadline=None)
@given(values)
def test_template_values_read_as_ruamel_reads_them(value: Any) -> None:
    """What `{{ ... }}` writes (to_yaml_flow), in a block mapping as templates put it."""
    from envspec.render.yamlsafe import UnsafeValue

    try:
        flow = to_yaml_flow(value)
    except UnsafeValue:
        return  # infinity has no YAML form a template may write
    text = f"apiVersion: v1\nkind: ConfigMap\ndata:\n  key: {flow}\n"
    fast = load_generated(text)
    if fast is None:  # e.g. a flow mapping key longer than YAML allows (1024 characters): ruamel refuses it too
        from ruamel.yaml.error import YAMLError

        with pytest.raises(YAMLError):
            ruamel_load(text)
        return
    assert same(fast, ruamel_load(text))


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",  # duplicate keys: ruamel's error message
    "a: 2024-01-01\n",  # a timestamp
    "<<: {a: 1}\nb: 2\n",  # a merge key
    "%YAML 1.1\n---\na: yes\n",  # a directive changes the resolver
    "a: !custom x\n",
    "a: [\n",  # a syntax error: ruamel locates it
    "? [a]\n: b\n",
    "a: *x\n",  # an alias without its anchor
    "- &x [1]\n- *x\n",
])
def test_what_only_ruamel_may_read_is_left_to_it(text: str) -> None:
    assert load_generated(text) is None


def test_a_value_that_is_not_plain_is_written_by_ruamel() -> None:
    import datetime

    with pytest.raises(NotPlain):
        dump_generated([{"a": datetime.date(2024, 1, 1)}], output._str_style)
    assert output.dump_yaml([{"a": datetime.date(2024, 1, 1)}]) == ruamel_dump([{"a": datetime.date(2024, 1, 1)}])
    assert output.dump_one("x") == "x\n...\n"


def test_an_object_written_twice_and_anchors_are_left_to_ruamel() -> None:
    shared = {"app": "web"}
    objects = [{"a": shared, "b": shared}]
    with pytest.raises(NotPlain):
        dump_generated(objects, output._str_style)
    assert output.dump_yaml(objects) == ruamel_dump(objects) and "&id001" in output.dump_yaml(objects)
    assert load_generated("a: &x {k: 1}\nb: *x\n") is None
    assert load_generated('a: "&x *y"\n') == [{"a": "&x *y"}]


# The direct writer (libyaml._write_stream) against libyaml's emitter (libyaml._emit), on the strings that
# decide a style: resolver look-alikes, indicators, spaces at the ends, line breaks, characters libyaml
# escapes, long keys and values, and the characters around the ranges the writer takes.
EDGE_CHARS = "\x00\x07\t\n\r \"#'*,-.:>?[]{|}~\\\x7f\x80\x85\x9f\xa0\xff\u2027\u2028\u2029\u202a\ud7ff\ue000\ufeff\ufffd\ufffe\U0001f600"
edge_texts = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.sampled_from(EDGE_CHARS + "ab1_"), max_size=8),
    st.lists(st.sampled_from(TRICKY + ["a", " ", "\n", ": ", " #", "-", "'"]), max_size=4).map("".join),
    st.integers(min_value=120, max_value=1100).map(lambda n: "k" * n),
    st.integers(min_value=990, max_value=1010).map(lambda n: "w " * (n // 2) + "w" * (n % 2)),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])),
)
edge_scalars = st.one_of(edge_texts, st.integers(), st.booleans(), st.none(), st.floats(),
                         st.sampled_from([0.0, -0.0, 1e17, 1e16, 1.5e-7, 3.0, 5e-324, float("inf"), float("-inf")]))
edge_values = st.recursive(
    edge_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.one_of(edge_texts, st.integers(), st.booleans()), inner, max_size=4),
    max_leaves=20,
)
# Strings the direct writer takes (or nearly: a break, a tab or a long run sends one back to libyaml).
writable_texts = st.one_of(
    st.text(alphabet=st.sampled_from(" ab1_.-:#?'\"|>!&*%@`,[]{}~=<\n\xa0\u00e9\u4e2d\ufffd"), max_size=10),
    st.sampled_from(TRICKY),
)
writable_values = st.recursive(
    st.one_of(writable_texts, st.integers(), st.booleans(), st.none(), st.floats()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(writable_texts, inner, max_size=4),
    max_leaves=25,
)
writable_documents = st.lists(st.one_of(st.dictionaries(writable_texts, writable_values, min_size=1, max_size=6),
                                        st.lists(writable_values, min_size=1, max_size=4)), min_size=1, max_size=3)
edge_documents = st.lists(st.one_of(st.dictionaries(edge_texts, edge_values, max_size=5), st.lists(edge_values, max_size=4)),
                          min_size=1, max_size=3)


def emitted(objects: list[Any]) -> str | None:
    try:
        return libyaml._emit(objects, output._str_style)
    except NotPlain:
        return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_documents)
@example([{text: text} for text in TRICKY[:60]])
@example([{"a": [[1, 2], {"b": "c\nd", "e": []}], "f": {}, "g": "x\n\ny\n", "h": ["|", "- x", "'q'", "a\nb"]}, [{"k": {}}]])
def test_the_direct_writer_writes_the_bytes_libyamls_emitter_writes(objects: list[Any]) -> None:
    check_direct_writer(objects)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writable_documents)
def test_the_direct_writer_writes_what_it_takes_as_libyaml_does(objects: list[Any]) -> None:
    check_direct_writer(objects)


def check_direct_writer(objects: list[Any]) -> None:
    try:
        direct = libyaml._write_stream(objects, output._str_style)
    except libyaml._Slow:
        return
    assert direct == emitted(objects)
    assert direct == ruamel_dump(objects)


def test_the_direct_writer_takes_the_common_case() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "labels": {"app": "web", "tier": "1"}},
           "data": {"script": "set -e\necho hi\n", "empty": "", "on": "yes", "port": 8080, "ratio": 0.5, "off": None,
                    "hosts": ["*.example.com", "a: b", " lead", "it's"], "nested": [[], {}, [1, {"a": True}]]}}
    direct = libyaml._write_stream([obj, obj | {"kind": "Secret"}], output._str_style)
    assert direct == emitted([obj, obj | {"kind": "Secret"}])
    assert "script: |\n    set -e\n    echo hi\n" in direct and "- '*.example.com'\n" in direct and '"on": "yes"' in direct


@pytest.mark.parametrize("value", ["tab\there", "x\u0085", "\U0001f600", "a\nb\n\n", "\nlead", "k" * 1001, {"k" * 129: 1}, {1: "a"}, {True: "a"}])
def test_the_direct_writer_leaves_the_rest_to_libyaml(value: Any) -> None:
    obj = {"v": value}
    with pytest.raises(libyaml._Slow):
        libyaml._write_stream([obj], output._str_style)
    assert output.dump_yaml([obj]) == ruamel_dump([obj])


# Authored files: PyYAML's C composer (compose_authored) must give the loader the nodes ruamel's gives:
# the same tags, values, styles and positions, or leave the text to ruamel.
def node_tree(node: Any, memo: dict[int, Any] | None = None) -> Any:
    memo = {} if memo is None else memo
    if id(node) in memo:
        return ("alias", memo[id(node)])
    memo[id(node)] = len(memo)
    where = (node.id, str(node.tag), node.start_mark.line, node.start_mark.column)
    if node.id == "scalar":
        return where + (node.value, node.style or "")
    if node.id == "mapping":
        return where + (node.flow_style, [(node_tree(k, memo), node_tree(v, memo)) for k, v in node.value])
    return where + (node.flow_style, [node_tree(item, memo) for item in node.value])


def ruamel_compose(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=False).compose_all(text))


FRAGMENTS = ["a", "b: c", "- x", "  ", "\n", ": ", "[", "]", "{", "}", ", ", "?", "&x ", "*x", "!t ", "!!str ", "#c",
             '"q"', "'s'", "|\n  l\n", ">\n  f\n", "---\n", "...\n", "%YAML 1.2\n", "<<: ", "\t", "é", "1", "0x1F", "yes"]
yaml_texts = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS + TRICKY[:40]), max_size=12).map("".join),
    st.builds(lambda k, v, flow: f"{k}: {{x: {v}}}\n" if flow else f"{k}:\n  - {v}\n  - [{v}, {k}]\n", texts, texts, st.booleans()),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_texts)
@example("params:\n  pr: {type: integer, minimum: 1, example: 107}\n  values: [preview, 'x']\nimage: ghcr.io/a:pr-1\n")
@example("a: [b:c]\n")
@example("a: [?]\n")
@example("a: &x {k: 1}\nb: *x\nc: !!str 1\n")
def test_libyaml_composes_authored_files_as_ruamel_does(text: str) -> None:
    from ruamel.yaml.error import YAMLError

    fast = libyaml.compose_authored(text)
    if fast is None:
        return
    try:
        expected = ruamel_compose(text)
    except YAMLError as exc:
        raise AssertionError(f"libyaml composed what ruamel refuses: {text!r} ({exc})") from None
    assert [node_tree(n) for n in fast] == [node_tree(n) for n in expected], text


@pytest.mark.parametrize("text", ["a: [b:c]\n", "a: {b: c?}\n", "a: [?]\n", "a: !custom x\n", "%YAML 1.2\n---\na: 1\n", "a: [\n",
                                  "a: &x 1\nb: &x 2\n", "a: \x07\n"])
def test_what_only_ruamel_may_compose_is_left_to_it(text: str) -> None:
    assert libyaml.compose_authored(text) is None
