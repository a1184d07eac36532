"""Property tests: no string can change a manifest's structure or types (no injection).

Any string placed in any free-form string field of the example spec renders to
output that parses back -- with a YAML 1.2 reader (ruamel) and a YAML 1.1 reader
(PyYAML, as kubectl-era tooling reads) -- to the same objects and keys, with
the value itself unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml as pyyaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from envspec.pipeline import compile_resolved
from envspec.render.output import dump_yaml, needs_quotes
from envspec.render.yamlsafe import to_yaml_flow
from envspec.spec.models import Environment
from envspec.spec.project import Project
from envspec.spec.resolve import ResolvedSpec, Resolver

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
PROJECT = Project(EXAMPLE)
BASE = Resolver(PROJECT).resolve("hello")

# Any text a YAML file can carry: everything but lone surrogates (not encodable in UTF-8).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
TRICKY = st.sampled_from(
    ["yes", "no", "on", "off", "~", "null", "0777", "1e3", "0x1F", ".5", "1:30", "2024-01-01", "- a", "a: b", "# c",
     "{{ x }}", "{% if %}", "[1]", "{a: 1}", "\n", "a\nb: c", "'", '"', "\\", "&x", "*x", "!tag", "---", "...", "=", "<<",
     " lead", "trail ", "\t", "\u2028", "\x85", "\ufeff", ""]
)
VALUES = st.one_of(TRICKY, TEXT)


def paths(node: Any, prefix: tuple = ()) -> set[tuple]:
    out = {prefix}
    if isinstance(node, dict):
        for key, value in node.items():
            out |= paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out |= paths(value, prefix + (index,))
    return out


def shape(objects: list[dict[str, Any]]) -> list[set[tuple]]:
    return [paths(obj) for obj in objects]


def render(mutate: Callable[[dict[str, Any]], None]) -> str:
    data = BASE.spec.model_dump(mode="python", exclude_none=False)
    mutate(data)
    spec = Environment.model_validate(data)
    resolved = ResolvedSpec(BASE.name, spec, BASE.positions, BASE.source, BASE.params, BASE.used)
    return dump_yaml(compile_resolved(PROJECT, resolved).objects)


def parse_both(text: str) -> tuple[list[dict], list[dict]]:
    modern = [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]
    legacy = [d for d in pyyaml.safe_load_all(text) if d is not None]
    return modern, legacy


BASELINE = shape(parse_both(render(lambda d: None))[0])


def find(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def check_value(text: str, kind: str, name: str, get: Callable[[dict], Any], value: str) -> None:
    for objects in parse_both(text):
        assert shape(objects) == BASELINE
        assert get(find(objects, kind, name)) == value


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(VALUES)
def test_configmap_value(value: str) -> None:
    def mutate(d: dict) -> None:
        d["configMaps"]["hello-config"]["GREETING"] = value

    check_value(render(mutate), "ConfigMap", "hello-config", lambda o: o["data"]["GREETING"], value)


@SETTINGS
@given(VALUES)
def test_container_env_value(value: str) -> None:
    def mutate(d: dict) -> None:
        d["apps"]["hello"]["containers"]["web"]["env"] = {"PAYLOAD": value}

    def get(obj: dict) -> Any:
        env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
        return {e["name"]: e["value"] for e in env}["PAYLOAD"]

    text = render(mutate)
    for objects in parse_both(text):
        assert get(find(objects, "Deployment", "hello")) == value
        assert len(objects) == len(BASELINE)


@SETTINGS
@given(VALUES)
def test_job_command_argument(value: str) -> None:
    def mutate(d: dict) -> None:
        d["jobs"]["welcome"]["command"] = ["sh", "-c", value]

    get = lambda o: o["spec"]["template"]["spec"]["containers"][0]["command"][2]  # noqa: E731
    check_value(render(mutate), "Job", "welcome", get, value)


@SETTINGS
@given(VALUES)
def test_configmap_key(key: str) -> None:
    def mutate(d: dict) -> None:
        d["configMaps"]["hello-config"][key] = "value"

    for objects in parse_both(render(mutate)):
        assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
            (o["kind"], o["metadata"]["name"]) for o in parse_both(render(lambda d: None))[0]
        ]
        data = find(objects, "ConfigMap", "hello-config")["data"]
        assert data[key] == "value"
        assert set(data) == {"GREETING", "PUBLIC_URL", "FEATURE_FLAG", "FILE_MODE", key}


@given(VALUES)
def test_flow_encoding_round_trips(value: str) -> None:
    for reader in (lambda t: YAML(typ="safe", pure=True).load(t), pyyaml.safe_load):
        assert reader(f"key: {to_yaml_flow(value)}\n") == {"key": value}
        assert reader(f"- {to_yaml_flow([value, {value: value}])}\n") == [[value, {value: value}]]


@pytest.mark.parametrize("text", ["yes", "on", "off", "y", "n", "0777", "1e3", "012", "0x1f", "1_000", "1:30", "~", "", "null", "2024-01-01", ".inf", "+1", "-.5"])
def test_ambiguous_scalars_are_quoted(text: str) -> None:
    assert needs_quotes(text)
    assert pyyaml.safe_load(dump_yaml([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"v": text}}]))["data"]["v"] == text


@pytest.mark.parametrize("text", ["hello", "4Gi", "100m", "nginx:1.27", "https://a.example.com"])
def test_plain_strings_stay_plain(text: str) -> None:
    assert not needs_quotes(text)
