"""What the resolve stages keep between environments of one process (issue 14), and that it is never stale.

Parsed spec files and compositions of parent chains are kept by their files' exact text, environments
that others `use` by the text of every file they were resolved from; strings are split into references
once per text, quantities parsed once per value. Each test edits or mutates what a stage returns and
checks the next result is what a fresh process would compute.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envspec.errors import Problems, SpecError
from envspec.render import normalize as normalize_module
from envspec.spec import interpolate, loader, merge
from envspec.spec import resolve as resolve_module
from envspec.spec.interpolate import Interpolator, RefError, mapping_scope, substitute
from envspec.spec.loader import Positions
from envspec.spec.merge import compose, load_composed, ref_paths
from envspec.spec.project import Project
from envspec.spec.resolve import Resolver

BASE = """\
cluster: {context: kind-base}
namespace: {name: base}
outputs:
  host: db.${namespace.name}.svc.cluster.local
"""
PARENT = """\
cluster: {context: kind-preview}
uses: {base: base}
params:
  pr: {type: integer}
instance: preview-${params.pr}
namespace: {name: "preview-${params.pr}"}
configMaps:
  app:
    HOST: ${base.host}
    NAME: ${instance}
    PR: ${params.pr}
outputs:
  url: https://${params.pr}.example.com
"""


def _project(tmp_path: Path, **files: str) -> Project:
    env = tmp_path / "environments"
    env.mkdir(exist_ok=True)
    for name, text in files.items():
        (env / f"{name}.yaml").write_text(text)
    return Project(tmp_path)


def _child(pr: int) -> str:
    return f"extends: _parent\nparams: {{pr: {{type: integer, default: {pr}}}}}\n"


def _fresh() -> None:
    """What a new process starts with."""
    loader._PARSED.clear()
    merge._COMPOSED.clear()
    resolve_module._USED.clear()
    interpolate._PARSED.clear()


def test_children_share_their_parents_composition_and_get_their_own_data(tmp_path: Path) -> None:
    project = _project(tmp_path, base=BASE, _parent=PARENT, a=_child(1), b=_child(2))
    first = compose(project, project.environment_path("a"))
    second = compose(project, project.environment_path("b"))
    assert first.data["configMaps"] is second.data["configMaps"]  # shared, never changed
    assert first.data["params"]["pr"]["default"] == 1 and second.data["params"]["pr"]["default"] == 2

    data, positions, chain = load_composed(project, project.environment_path("a"))
    data["configMaps"]["app"]["HOST"] = "changed"  # the caller's own copy
    positions.set(("configMaps",), positions.default)
    assert chain == [tmp_path / "environments" / "_parent.yaml", tmp_path / "environments" / "a.yaml"]
    again = compose(project, project.environment_path("b"))
    assert again.data["configMaps"]["app"]["HOST"] == "${base.host}"
    assert again.positions.lookup(("configMaps",)).line == 7


def test_an_edited_parent_is_composed_anew(tmp_path: Path) -> None:
    project = _project(tmp_path, base=BASE, _parent=PARENT, a=_child(1))
    assert Resolver(project).resolve("a").spec.configMaps["app"]["NAME"] == "preview-1"
    (tmp_path / "environments" / "_parent.yaml").write_text(PARENT.replace("instance: preview-", "instance: pr-"))
    assert Resolver(project).resolve("a").spec.configMaps["app"]["NAME"] == "pr-1"


def test_a_used_environment_is_resolved_once_and_anew_when_its_file_changes(tmp_path: Path) -> None:
    project = _project(tmp_path, base=BASE, _parent=PARENT, a=_child(1), b=_child(2))
    resolver = Resolver(project)
    a, b = resolver.resolve("a"), resolver.resolve("b")
    assert a.used["base"] is b.used["base"]
    assert Resolver(project).resolve("a").used["base"] is a.used["base"]  # a later run: files unchanged
    assert b.spec.configMaps["app"]["HOST"] == "db.base.svc.cluster.local"

    (tmp_path / "environments" / "base.yaml").write_text(BASE.replace("{name: base}", "{name: shared}"))
    again = Resolver(project).resolve("b")
    assert again.used["base"] is not a.used["base"]
    assert again.spec.configMaps["app"]["HOST"] == "db.shared.svc.cluster.local"


def test_a_used_environment_with_errors_is_never_kept(tmp_path: Path) -> None:
    project = _project(tmp_path, base=BASE.replace("db.${namespace.name}", "db.${nope}"), _parent=PARENT, a=_child(1))
    for _ in range(2):
        with pytest.raises(SpecError) as exc:
            Resolver(project).resolve("a")
        assert any("unknown reference ${nope}" in p.message for p in exc.value.problems)
    (tmp_path / "environments" / "base.yaml").write_text(BASE)
    assert Resolver(project).resolve("a").spec.configMaps["app"]["HOST"] == "db.base.svc.cluster.local"


def test_kept_results_name_files_as_the_current_directory_shows_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, base=BASE + "bogus: 1\n", _parent=PARENT, a=_child(1))
    places = []
    for where in (tmp_path, tmp_path / "environments"):
        monkeypatch.chdir(where)
        with pytest.raises(SpecError) as exc:
            Resolver(project).resolve("a")
        places.append(str(next(p.location for p in exc.value.problems if "bogus" in p.message)))
    assert places == [os.path.join("environments", "base.yaml") + ":5:8", "base.yaml:5:8"]

    (tmp_path / "environments" / "base.yaml").write_text(BASE)
    resolved = {}
    for where in (tmp_path, tmp_path / "environments"):
        monkeypatch.chdir(where)
        resolved[where] = Resolver(project).resolve("a").used["base"]
    assert str(resolved[tmp_path / "environments"].positions.lookup(("outputs",))).startswith("base.yaml:")


def test_mutating_a_result_changes_nothing_a_later_environment_gets(tmp_path: Path) -> None:
    parent = PARENT + "helm:\n  stack: {repository: 'https://charts.example.com', chart: stack, version: 1.0.0, namespace: mon, values: {a: {b: [1]}}}\n"
    project = _project(tmp_path, base=BASE, _parent=parent, a=_child(1), b=_child(2))
    first = Resolver(project).resolve("a")
    first.spec.helm["stack"].values["a"]["b"].append(2)  # values are free-form: the model holds plain data
    first.spec.configMaps["app"]["HOST"] = "changed"
    first.positions.by_path.clear()
    second = Resolver(project).resolve("b")
    assert second.spec.helm["stack"].values == {"a": {"b": [1]}}
    assert second.spec.configMaps["app"]["HOST"] == "db.base.svc.cluster.local"
    assert second.positions.lookup(("configMaps", "app", "HOST")).line == 9
    _fresh()
    assert Resolver(project).resolve("b").spec == second.spec


def test_errors_and_their_places_are_those_of_a_fresh_process(tmp_path: Path) -> None:
    broken = PARENT + "description: ${params.nope}\nlabels: {team: '${instance'}\n"
    project = _project(tmp_path, base=BASE, _parent=broken, a=_child(1), b=_child(2))

    def problems(name: str) -> list[str]:
        with pytest.raises(SpecError) as exc:
            Resolver(project).resolve(name)
        return [f"{p.location}: {p.path}: {p.message}" for p in exc.value.problems]

    _fresh()
    cold = problems("a")
    assert problems("b") == [line.replace("a.yaml", "b.yaml") for line in cold]
    assert problems("a") == cold
    assert any("unknown reference ${params.nope}" in line and "_parent.yaml:14" in line for line in cold)


# ------------------------------------------------------------------ the precomputed references


SPECS = st.recursive(
    st.sampled_from(["x", "${a}", "${b.c}", "pre-${a}-post", "$${a}", "${a", "${ }", "${b}", "${d.0}", "${e}", 1, True, None]),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), children, max_size=4)
    ),
    max_leaves=12,
)


def _interpolated(data: dict[str, Any], refs: list | None) -> tuple[Any, list[str]]:
    problems = Problems()
    positions = Positions()
    scopes = {"params": mapping_scope("params", {"pr": 7})}
    out = Interpolator(data, positions, problems, scopes, refs).run()
    return out, [f"{p.path}: {p.message}" for p in problems.items]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), SPECS, max_size=5))
def test_visiting_only_the_strings_with_references_resolves_as_walking_everything(data: dict[str, Any]) -> None:
    import copy

    assert _interpolated(copy.deepcopy(data), ref_paths(data)) == _interpolated(copy.deepcopy(data), None)


def test_a_literal_in_a_referenced_list_stays_literal() -> None:
    """`$${a}` is the text `${a}`: a copy of its list made by a reference is not read as a reference again
    (it recursed without end, a traceback, before)."""
    data = {"a": ["$${a}", "x-$${b}"], "b": "${a}", "c": {"d": "${a}"}}
    out, problems = _interpolated(data, None)
    assert problems == []
    assert out == {"a": ["${a}", "x-${b}"], "b": ["${a}", "x-${b}"], "c": {"d": ["${a}", "x-${b}"]}}


def _substitute_by_regex(text: str, lookup: Any) -> Any:
    """The straightforward version (one regex pass per call) the parsed-once version must agree with."""
    if "${" not in text:
        return text
    interpolate._check_terminated(text)
    match = interpolate.REF_RE.fullmatch(text)
    if match and match.group(0) != "$${":
        return lookup(interpolate._check_name(match.group(1)))

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        value = lookup(interpolate._check_name(m.group(1)))
        if isinstance(value, (dict, list)):
            raise RefError(f"${{{m.group(1)}}} is a {'mapping' if isinstance(value, dict) else 'list'}; only a whole string can reference it")
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return interpolate.REF_RE.sub(replace, text)


def _outcome(function: Any, text: str) -> tuple[str, Any]:
    values = {"a": 1, "b": "two", "c": None, "d": True, "m": {"k": 1}, "l": [1]}

    def lookup(name: str) -> Any:
        if name not in values:
            raise RefError(f"unknown {name}")
        return values[name]

    try:
        return "ok", function(text, lookup)
    except RefError as exc:
        return "error", str(exc)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["$", "{", "}", "${", "$${", "a", "b", "m", "l", "x", ".", " ", "-", "c", "d"]), max_size=12).map("".join))
def test_strings_split_once_substitute_as_the_regex_does(text: str) -> None:
    for _ in range(2):  # parsed, then from what is kept
        assert _outcome(substitute, text) == _outcome(_substitute_by_regex, text)


# ------------------------------------------------------------------ normalize and rules


def _canonical_by_lists(value: Any, path: tuple[str, ...] = ()) -> Any:
    """The straightforward ordering (key lists built for every mapping) the faster one must agree with."""
    if isinstance(value, dict):
        last = path[-1] if path else ""
        sort = last in {"labels", "annotations", "matchLabels", "selector", "data", "stringData", "hard", "nodeSelector"}
        preferred = normalize_module.META_KEYS if last == "metadata" else (
            normalize_module.CONTAINER_KEYS if last in {"containers", "initContainers"} else ["name"])
        keys = [k for k in preferred if k in value]
        rest = [k for k in value if k not in keys]
        if sort:
            rest.sort()
        return {k: _canonical_by_lists(value[k], path + (str(k),)) for k in keys + rest}
    if isinstance(value, list):
        return [_canonical_by_lists(v, path) for v in value]
    return value


KEYS = st.sampled_from(["name", "image", "metadata", "labels", "containers", "namespace", "annotations", "z", "a", "args", "data"])
OBJECTS = st.recursive(st.one_of(st.integers(0, 3), st.text(max_size=2)),
                       lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=5)),
                       max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, OBJECTS, max_size=6))
def test_canonical_key_order_is_the_straightforward_one(obj: dict[str, Any]) -> None:
    expected = normalize_module._order_keys(_canonical_by_lists(obj), normalize_module.TOP_KEYS)
    got = normalize_module._canonical_object(obj)
    assert repr(got) == repr(expected)  # same keys in the same order, all the way down


def test_quantities_are_parsed_once_and_malformed_ones_still_fail() -> None:
    from envspec.checks import rules
    from envspec.quantity import QuantityError, parse

    for value in ("250m", "1.5Gi", 2, 0.5, "1e3"):
        assert rules._quantity_nanos(value) == int(parse(value) * rules.NANOS)
        assert rules._quantity_nanos(value) is rules._quantity_nanos(value)  # the kept one
        assert (type(value), value) in rules._QUANTITIES
    for _ in range(2):
        with pytest.raises(QuantityError):
            rules._quantity_nanos("12 apples")
    assert (str, "12 apples") not in rules._QUANTITIES


def test_pattern_verdicts_are_kept_and_a_budget_that_ran_out_is_not() -> None:
    from envspec.spec import params

    for _ in range(2):
        assert params.fullmatch_bounded("[a-z]+", "abc") is True
        assert params.fullmatch_bounded("[a-z]+", "ab1") is False
        assert params.fullmatch_bounded("(a+)+", "a" * 40 + "!", seconds=0.05) is None
    assert ("(a+)+", "a" * 40 + "!") not in params._MATCHED
