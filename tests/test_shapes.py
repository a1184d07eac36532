"""Template output parsed once per shape (issue 14) gives exactly what parsing the output gives.

Each case renders a template through envspec's own Jinja environment twice or more with different
values: the first output of a shape parses the shape, the later ones are built from it. Every
result is compared with `load_generated` of the very text (None included: then the ruamel path and
its messages take over, as before).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envspec.render import shapes
from envspec.render.libyaml import load_generated
from envspec.render.templates import make_environment
from envspec.render.yamlsafe import read_back, to_yaml_flow


def render(folder: Path, source: str, **context: Any) -> tuple[str, list[Any] | None]:
    (folder / "t.yaml.j2").write_text(source)
    env = make_environment(str(folder))
    with shapes.recording() as values:
        text = env.get_template("t.yaml.j2").render(context)
    return text, shapes.load(text, values)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    shapes._SHAPES.clear()
    folder = tmp_path / "templates"
    folder.mkdir()
    return folder


DOC = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"


def test_a_second_output_of_a_shape_is_built_from_it(templates: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = DOC + "data:\n  port: {{ port }}\n  list: {{ items }}\n  {{ key }}: {{ value }}\n"
    first_text, first = render(templates, source, name="a", port=80, items=["x", 1], key="k", value={"a": [None, True]})
    assert first == load_generated(first_text)
    assert list(shapes._SHAPES.values()) == [shapes._ONCE]  # met once: the text was parsed, not the shape
    render(templates, source, name="b", port=1, items=[], key="k", value=None)  # the second one parses the shape
    assert len(shapes._SHAPES) == 1 and list(shapes._SHAPES.values())[0] not in (shapes._ONCE, shapes._UNUSABLE)
    calls: list[str] = []
    monkeypatch.setattr(shapes, "load_generated", lambda text: calls.append(text) or load_generated(text))
    text, second = render(templates, source, name="b-2", port=8080, items=[], key="other", value="v")
    assert calls == [] and len(shapes._SHAPES) == 1  # built from the shape, not parsed
    assert second == load_generated(text) == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b-2"},
                                               "data": {"port": 8080, "list": [], "other": "v"}}]


def test_the_built_objects_are_new_each_time(templates: Path) -> None:
    source = DOC + "data: {{ data }}\n"
    data = {"a": ["x"]}
    _, first = render(templates, source, name="a", data=data)
    _, second = render(templates, source, name="a", data=data)
    assert first == second and first is not None and second is not None
    first[0]["data"]["a"].append("changed")
    first[0]["metadata"]["name"] = "changed"
    assert second[0]["data"] == {"a": ["x"]} and second[0]["metadata"]["name"] == "a" and data == {"a": ["x"]}


# Templates where a value does not stand as a plain scalar of its own: the shape is refused, and the text's
# parse (or its error, None) is what comes back.
AWKWARD = {
    "quoted": DOC + 'data:\n  a: "{{ v }}"\n',
    "single-quoted": DOC + "data:\n  a: '{{ v }}'\n",
    "block scalar": DOC + "data:\n  a: |\n    {{ v }}\n",
    "folded plain": DOC + "data:\n  a: x\n    {{ v }}\n",
    "in a longer scalar": DOC + "data:\n  a: prefix-{{ v }}\n",
    "two in one scalar": DOC + "data:\n  a: {{ v }}{{ w }}\n",
    "explicit str tag": DOC + "data:\n  a: !!str {{ v }}\n",
    "non-specific tag": DOC + "data:\n  a: ! {{ v }}\n",
    "int tag": DOC + "data:\n  a: !!int {{ v }}\n",
    "anchor and alias": DOC + "data:\n  a: &x {{ v }}\n  b: *x\n",
    "in a comment": DOC + "data:\n  a: 1 # {{ v }}\n  b: {{ w }}\n",
    "duplicate keys": DOC + "data:\n  {{ v }}: 1\n  {{ w }}: 2\n",
    "key clashing a literal": DOC + "data:\n  a: 1\n  {{ v }}: 2\n",
    "collection key": DOC + "data:\n  ? {{ v }}\n  : 1\n",
    "flow json key": DOC + "data: { {{ v }}:{{ w }} }\n",
    "directive": "%YAML 1.1\n---\n" + DOC + "data:\n  a: {{ v }}\n",
    "merge key": DOC + "data:\n  <<: {{ v }}\n",
    "a document of its own": "{{ v }}\n---\n" + DOC,
    "flow sequence": DOC + "data:\n  a: [{{ v }}, {{ w }}, x]\n",
    "flow mapping": DOC + "data: {a: {{ v }}, {{ w }}: b }\n",
    # Found in review: documents of the shape that are no mapping, and a tab that reads otherwise after a marker.
    "a literal scalar document": DOC + "data: {{ v }}\n---\nplain\n---\n\"\"\n",
    "an empty document": DOC + "data: {{ v }}\n---\n# {{ w }}\n---\n",
    "tab on a blank line": DOC + "  labels: {{ v }}\n    \t\ndata: {{ w }}\n",
}

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(["a", "1", "yes", "null", "x: y", "<<", "#"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@pytest.mark.parametrize("case", sorted(AWKWARD))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(pairs=st.lists(st.tuples(VALUES, VALUES), min_size=3, max_size=4))
def test_every_output_reads_as_its_text_does(templates: Path, case: str, pairs: list[tuple[Any, Any]]) -> None:
    for v, w in pairs:  # the first is parsed, the second parses the shape, the others are built from it
        text, got = render(templates, AWKWARD[case], name="n", v=v, w=w)
        assert got == load_generated(text), text


def test_a_value_holding_the_marker_characters_parses_the_text(templates: Path) -> None:
    for value in ("a", f"{shapes.MARK}0{shapes.END}", "b"):
        text, got = render(templates, DOC + "data:\n  a: {{ v }}\n", name="n", v=value)
        assert got == load_generated(text) and got is not None and got[0]["data"]["a"] == value


@pytest.mark.parametrize("blanks", ["", " " * 40, "\t"])
def test_a_key_too_long_for_libyaml_is_its_error(templates: Path, blanks: str) -> None:
    """libyaml's 1024 characters run to the key's `:`, blanks before it included."""
    source = DOC + "data:\n  {{ v }}" + blanks + ": 1\n"
    render(templates, source, name="n", v="short")
    render(templates, source, name="n", v="short2")
    for size in (980, 990, 2000):
        text, got = render(templates, source, name="n", v="k" * size)
        assert got == load_generated(text)
    assert load_generated(text) is None  # the ruamel path then gives the message


def test_a_value_nested_deeper_than_the_bound_parses_the_text(templates: Path) -> None:
    source = DOC + "data:\n  a: {{ v }}\n"
    render(templates, source, name="n", v=[1])
    deep: Any = "x"
    for _ in range(120):
        deep = [deep]
    text, got = render(templates, source, name="n", v=deep)
    assert got == load_generated(text)


def test_a_lone_surrogate_is_left_to_the_text(templates: Path) -> None:
    source = DOC + "data:\n  a: {{ v }}\n  b: {{ w }}\n"
    render(templates, source, name="n", v="x", w=["y"])
    for v, w in (("\ud800", ["y"]), ("x", ["\udfff"]), ("x", {"\ud800": 1})):
        text, got = render(templates, source, name="n", v=v, w=w)
        assert got is None and load_generated(text) is None


@given(VALUES | st.text(alphabet=st.characters(exclude_categories=[], include_characters="\ud800\udfff"), max_size=6))
def test_read_back_is_what_the_flow_node_reads_as(value: Any) -> None:
    text = to_yaml_flow(value)
    parsed = load_generated(f"a: {text}\n")
    try:
        assert [{"a": read_back(value)}] == parsed
    except TypeError:  # only where the text's parse must decide: libyaml refuses it
        assert parsed is None


@given(st.dictionaries(st.integers(-3, 3) | st.booleans() | st.none() | st.sampled_from(["1", "True", "None", "x"]),
                       st.integers(), max_size=4))
def test_read_back_of_keys_that_write_alike(value: dict[Any, int]) -> None:
    """{1: .., "1": ..} writes the key "1" twice, which the parse refuses: read_back leaves it to the parse."""
    parsed = load_generated(f"a: {to_yaml_flow(value)}\n")
    try:
        assert [{"a": read_back(value)}] == parsed
    except TypeError:
        assert parsed is None


def test_other_types_are_not_read_back() -> None:
    for value in (("a",), {1: "x", None: [True]}, True):
        assert read_back(value) == load_generated(f"a: {to_yaml_flow(value)}")[0]["a"]  # type: ignore[index]
    for odd in (1.5, float("nan"), object(), type("S", (str,), {})("x")):
        with pytest.raises(TypeError):
            read_back(odd)


def test_every_environment_renders_as_it_did_without_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's environments and a few preview instances, twice in one process (the second pass
    meets every shape the first made): the files are those that parsing every output gives."""
    import shutil

    from envspec.pipeline import compile_all
    from envspec.render.output import render_files
    from envspec.spec.project import Project
    from tests.conftest import REPO

    root = tmp_path / "project"
    for folder in ("environments", "templates", "components"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder)
    for n in (1, 2, 3):
        (root / "environments" / f"pr-{n}.yaml").write_text(f"extends: preview-pr\nparams: {{pr: {{default: {n}}}}}\n")
    project = Project(root)

    def files() -> dict[str, Any]:
        compiled, _ = compile_all(project, finish=lambda result: render_files(result.objects), jobs=1)
        return compiled

    shapes._SHAPES.clear()
    first, second = files(), files()
    assert len(shapes._SHAPES) > 10
    monkeypatch.setattr(shapes, "load", lambda text, values: load_generated(text))
    assert first == second == files()
