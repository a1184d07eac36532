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


# ---------------------------------------------------------------- arbitrary input never crashes or hangs
#
# Whatever text a person feeds envspec -- as a whole spec file, as a --set value, as a ${...}
# reference, as a template -- the run ends in success (0) or in located problems (2): never a
# traceback, never an internal error, never a hang.

import re  # noqa: E402
import tempfile  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from envspec.cli import main  # noqa: E402

BAD_PROJECT = Path(tempfile.mkdtemp(prefix="envspec-props-"))
(BAD_PROJECT / "environments").mkdir()
(BAD_PROJECT / "templates").mkdir()
ENV_FILE = BAD_PROJECT / "environments" / "bad.yaml"
GOOD = "cluster: {context: kind-test}\nnamespace: {name: demo}\n"
SPEC_APP = GOOD + "params:\n  pr: {type: integer, minimum: 1, maximum: 99, default: 7}\napps:\n  web:\n    image: nginx:1.27\n    containers:\n      web: {port: 80}\n"
LOCATED = re.compile(r"^(environments/[^:]+|templates/[^:]+|--set [^\n]*?|--param [^\n]*?|--kube-version|--crds [^:]*):(\d+:\d+: )?")
# YAML-ish fragments, so generated text reaches past the parser into merge, params, references and the model.
SPEC_WORDS = st.sampled_from(
    ["cluster:", "namespace:", "apps:", "params:", "extends:", "uses:", "outputs:", "labels:", "templates:", "web:",
     "image:", "replicas:", "containers:", "name:", "context:", "type:", "integer", "default:", "${params.pr}",
     "${outputs.x}", "${", "}", "$${", "&a", "*a", "<<:", "!!str", "!!python/name:os.system", "- ", "[", "]", "{",
     "}", ",", ": ", "\n", "\n  ", "\n    ", "'", '"', "#", "---", "null", "true", "0", "-1", "1e9", "\t", "\ufeff"]
)
SPEC_TEXT = st.one_of(TEXT, st.lists(SPEC_WORDS, max_size=40).map("".join), st.lists(st.one_of(SPEC_WORDS, TEXT), max_size=20).map("".join))
FUZZ = settings(max_examples=int(__import__("os").environ.get("ENVSPEC_FUZZ_EXAMPLES", "120")), deadline=3000, suppress_health_check=[HealthCheck.too_slow])


def run_cli(args: list[str]) -> Any:
    import os

    cwd = os.getcwd()
    os.chdir(BAD_PROJECT)
    try:
        return CliRunner().invoke(main, args)
    finally:
        os.chdir(cwd)


def assert_handled(result: Any) -> None:
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines
        for line in lines:
            assert LOCATED.match(line), line


@FUZZ
@given(SPEC_TEXT)
def test_any_text_as_a_spec_file(text: str) -> None:
    ENV_FILE.write_text(text, encoding="utf-8")
    assert_handled(run_cli(["render", "bad"]))


@FUZZ
@given(SPEC_TEXT)
def test_any_text_appended_to_a_valid_spec(text: str) -> None:
    ENV_FILE.write_text(SPEC_APP + text, encoding="utf-8")
    assert_handled(run_cli(["render", "bad"]))


@FUZZ
@given(st.sampled_from(["apps.web.replicas", "apps.web.image", "apps.wbe.replicas", "namespace", "labels.team", "outputs.x",
                        "apps.web.containers.web.port", "params.pr.default", "apps", "x", "apps.web.containers.0"]),
       st.one_of(SPEC_TEXT, VALUES))
def test_any_set_value(path: str, value: str) -> None:
    ENV_FILE.write_text(SPEC_APP, encoding="utf-8")
    assert_handled(run_cli(["render", "bad", "--set", f"{path}={value}"]))


@FUZZ
@given(st.one_of(SPEC_TEXT, VALUES))
def test_any_set_path(path: str) -> None:
    ENV_FILE.write_text(SPEC_APP, encoding="utf-8")
    assert_handled(run_cli(["render", "bad", "--set", f"{path}=2"]))


@FUZZ
@given(st.one_of(TEXT, st.lists(st.sampled_from(["params", "pr", "outputs", ".", "x", "${", "}", "{", "$", "$${", "apps",
                                                 "web", "0", " ", "namespace", "name", "base"]), max_size=12).map("".join)))
def test_any_reference(reference: str) -> None:
    spec = SPEC_APP + "outputs:\n  x: plain\n  probe: " + to_yaml_flow("${" + reference + "}") + "\n  text: " + to_yaml_flow("a-" + reference) + "\n"
    ENV_FILE.write_text(spec, encoding="utf-8")
    assert_handled(run_cli(["render", "bad"]))


@FUZZ
@given(VALUES)
def test_any_param_value(value: str) -> None:
    ENV_FILE.write_text(SPEC_APP.replace("default: 7", "default: 7}\n  tag: {type: string, pattern: '[a-z]+', default: ab") , encoding="utf-8")
    assert_handled(run_cli(["render", "bad", "--param", f"pr={value}", "--param", f"tag={value}"]))


TEMPLATE_WORDS = st.sampled_from(
    ["{{ ", " }}", "{% ", " %}", "env", ".name", "spec", "1 / 0", "| upper", "| nope", "if", "endif", "for x in", "endfor",
     "include 'x.j2'", "'a'", "[", "]", "apiVersion: v1\n", "kind: ConfigMap\n", "metadata:\n", "  name: x\n", "---\n",
     ": ", "\n", "  ", "-", "#", "__class__", "range(10**9)", "'x' * 10**8", "loop"]
)


@FUZZ
@given(st.one_of(TEXT, st.lists(TEMPLATE_WORDS, max_size=30).map("".join)))
def test_any_template(text: str) -> None:
    ENV_FILE.write_text(GOOD + "templates: [t.yaml.j2]\n", encoding="utf-8")
    (BAD_PROJECT / "templates" / "t.yaml.j2").write_text(text, encoding="utf-8")
    assert_handled(run_cli(["render", "bad"]))
