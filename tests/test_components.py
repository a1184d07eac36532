"""Project components: defined in components/<name>/ without Python, instantiated from any environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.cli import main
from envspec.errors import SpecError
from envspec.pipeline import compile_environment

MANIFEST = """description: A greeting ConfigMap.
params:
  text: {type: string, pattern: "[A-Za-z ]+", description: What to say}
  copies: {type: integer, minimum: 1, maximum: 3, default: 1}
examples:
  hi: {text: hi}
"""
TEMPLATE = """{% for i in range(params.copies) %}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ name ~ "-" ~ i }}
  namespace: {{ env.namespace }}
data:
  text: {{ params.text }}
{% endfor %}
"""
ENV = """cluster: {context: kind-test}
namespace: {name: demo}
components:
%s
"""


def project(tmp_path: Path, instances: str, manifest: str = MANIFEST, template: str = TEMPLATE) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "demo.yaml").write_text(ENV % instances, encoding="utf-8")
    folder = tmp_path / "components" / "greeting"
    folder.mkdir(parents=True)
    (folder / "component.yaml").write_text(manifest, encoding="utf-8")
    (folder / "greeting.yaml.j2").write_text(template, encoding="utf-8")
    return tmp_path


def problems_of(root: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        compile_environment("demo", root=root)
    return [str(p) for p in info.value.problems]


def test_an_instance_renders_with_typed_params_and_defaults(tmp_path: Path) -> None:
    root = project(tmp_path, "  hello: {use: greeting, with: {text: hello there, copies: 2}}\n  bye: {use: greeting, with: {text: bye}}")
    compiled = compile_environment("demo", root=root)
    names = [o["metadata"]["name"] for o in compiled.objects if o["kind"] == "ConfigMap"]
    assert names == ["bye-0", "hello-0", "hello-1"]
    assert all(o["metadata"]["labels"]["envspec.dev/environment"] == "demo" for o in compiled.objects)
    index = names.index("hello-1") + 1  # after the Namespace
    assert compiled.origins[index] == ("components", "hello")


def test_an_instance_may_render_into_another_namespace(tmp_path: Path) -> None:
    root = project(tmp_path, "  hello: {use: greeting, namespace: monitoring, with: {text: hi}}")
    (config,) = [o for o in compile_environment("demo", root=root).objects if o["kind"] == "ConfigMap"]
    assert config["metadata"]["namespace"] == "monitoring"


def test_instance_errors_point_at_the_instance_and_the_declaration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, "  a: {use: greeting, with: {txt: x}}\n  b: {use: greeting, with: {text: x, copies: 9}}\n  c: {use: greting}")
    monkeypatch.chdir(root)
    assert problems_of(root) == [
        "environments/demo.yaml:4:34: components.a.with.txt: component greeting has no parameter 'txt'; did you mean 'text'?",
        "environments/demo.yaml:4:3: components.a: missing required parameter 'text' of component greeting "
        "(declared at components/greeting/component.yaml:3:3)",
        "environments/demo.yaml:5:46: components.b.with.copies: must be <= 3 (got 9) (declared at components/greeting/component.yaml:4:3)",
        "environments/demo.yaml:6:12: components.c.use: unknown component 'greting'; did you mean 'greeting'?",
    ]


def test_template_errors_point_at_the_components_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, "  a: {use: greeting, with: {text: x}}", template=TEMPLATE.replace("params.text", "params.nope"))
    monkeypatch.chdir(root)
    (problem,) = problems_of(root)
    assert problem.startswith("components/greeting/greeting.yaml.j2:9:")
    assert "template error: undefined value" in problem


def test_a_bad_component_manifest_is_located_in_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, "  a: {use: greeting, with: {text: x}}", manifest=MANIFEST.replace("type: integer", "type: number"))
    monkeypatch.chdir(root)
    (problem,) = problems_of(root)
    assert problem.startswith("components/greeting/component.yaml:4:")
    assert "params.copies.type: must be one of" in problem


def test_a_component_example_must_fit_its_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, "  a: {use: greeting, with: {text: x}}", manifest=MANIFEST.replace("hi: {text: hi}", "hi: {text: '1'}"))
    monkeypatch.chdir(root)
    assert problems_of(root) == [
        "components/greeting/component.yaml:6:14: examples.hi.text: must match [A-Za-z ]+ (got '1') "
        "(declared at components/greeting/component.yaml:3:3)"
    ]


def test_schema_includes_project_components(tmp_path: Path) -> None:
    root = project(tmp_path, "  a: {use: greeting, with: {text: x}}")
    result = CliRunner().invoke(main, ["schema", "--root", str(root)])
    assert result.exit_code == 0, result.output
    from envspec.schema import environment_schema

    # The model's schema types each component instance by its component...
    schema = environment_schema(root)
    greeting = schema["$defs"]["component.greeting"]
    assert greeting["properties"]["use"] == {"const": "greeting"}
    assert greeting["properties"]["with"]["required"] == ["text"]
    assert greeting["properties"]["with"]["properties"]["copies"] == {"type": "integer", "minimum": 1, "maximum": 3, "default": 1}
    assert schema["properties"]["components"]["additionalProperties"] == {"oneOf": [{"$ref": "#/$defs/component.greeting"}]}
    # ...and the file written is its authoring form (envspec.authoring_schema): nothing required, ${...} accepted.
    written = json.loads((root / "schemas" / "environment.schema.json").read_text())
    authored = written["$defs"]["component.greeting"]
    assert authored["properties"]["use"]["anyOf"][:2] == [{"const": "greeting"}, {"$ref": "#/$defs/Reference"}]
    assert "required" not in authored["properties"]["with"]["anyOf"][0]
    instances = written["properties"]["components"]["anyOf"][0]["additionalProperties"]["anyOf"][0]
    assert instances == {"anyOf": [{"$ref": "#/$defs/component.greeting"}]}


def test_render_cli_exit_code_for_a_bad_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, "  a: {use: greeting}")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["render", "demo"])
    assert result.exit_code == 2
    assert "missing required parameter 'text' of component greeting" in result.output


def test_each_builtin_component_is_one_folder_with_its_templates() -> None:
    from envspec import kinds
    from envspec.components.registry import BUILTIN

    package = Path(__file__).resolve().parent.parent / "envspec"
    assert len({c.name for c in BUILTIN}) == len(BUILTIN)
    for component in BUILTIN:
        assert (package / "components" / component.name / "__init__.py").is_file()
        assert all(kind in kinds.BY_KIND for kind in component.kinds), component.name
    for folder in (package / "templates").iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            assert (package / "components" / folder.name / "__init__.py").is_file(), folder.name
    assert {"app", "job", "cronjob", "route", "gateway", "issuer", "certificate", "secret", "config", "claim",
            "database", "serviceaccount", "namespace"} <= {c.name for c in BUILTIN}


def test_a_project_overrides_a_builtin_template_by_its_component_path(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "demo.yaml").write_text("cluster: {context: kind-test}\nnamespace: {name: demo}\n")
    (tmp_path / "templates" / "namespace").mkdir(parents=True)
    (tmp_path / "templates" / "namespace" / "namespace.yaml.j2").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ item.name }}\n  annotations: {owner: platform}\n"
    )
    (namespace,) = compile_environment("demo", root=tmp_path).objects
    assert namespace["metadata"]["annotations"] == {"owner": "platform"}


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FREE = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30).filter(lambda v: "${" not in v) | st.sampled_from(
    ["yes", "null", "0777", "a: b", "# c", "{{ x }}", "- a", "\n", "a\nb: c", "'", '"', "---", "*x", "&x", "!tag"]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=FREE)
def test_no_component_parameter_value_changes_the_manifest_structure(tmp_path_factory, value: str) -> None:  # type: ignore[no-untyped-def]
    from envspec.render.output import dump_yaml, load_all

    root = tmp_path_factory.mktemp("p")
    manifest = "params:\n  text: {type: string}\n"
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: {{ env.namespace }}\ndata:\n  text: {{ params.text }}\n"
    root = project(root, "  a: {use: greeting, with: {text: placeholder}}", manifest=manifest, template=template)
    env = root / "environments" / "demo.yaml"
    from envspec.render.yamlsafe import to_yaml_flow

    env.write_text(env.read_text().replace("placeholder", to_yaml_flow(value)), encoding="utf-8")
    objects = compile_environment("demo", root=root).objects
    (config,) = [o for o in load_all(dump_yaml(objects)) if o["kind"] == "ConfigMap"]
    assert config["data"] == {"text": value}
    assert set(config) == {"apiVersion", "kind", "metadata", "data"}


def test_the_dns01_provider_is_a_table_entry_not_a_fixed_vendor(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "demo.yaml").write_text(
        "cluster: {context: kind-test}\nnamespace: {name: demo}\nsecrets:\n  cf: {fromEnv: {token: CF_TOKEN}}\n"
        "issuers:\n  le:\n    acme:\n      server: https://acme.example.test/directory\n      email: ops@example.test\n"
        "      dns01: {provider: cloudflare, tokenSecret: cf, tokenKey: token}\n"
    )
    issuer = next(o for o in compile_environment("demo", root=tmp_path).objects if o["kind"] == "ClusterIssuer")
    assert issuer["spec"]["acme"]["solvers"] == [{"dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "cf", "key": "token"}}}}]


def test_the_database_create_job_is_named_by_the_spec(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "demo.yaml").write_text(
        "cluster: {context: kind-test}\nnamespace: {name: demo}\n"
        "database: {name: shop, host: pg.data.svc.cluster.local, adminSecret: pg-admin, job: init-db}\n"
        "jobs:\n  migrate: {image: 'busybox:1.36', after: [init-db]}\n"
    )
    jobs = [o["metadata"]["name"] for o in compile_environment("demo", root=tmp_path).objects if o["kind"] == "Job"]
    assert jobs == ["init-db", "migrate"]


def test_a_component_object_without_a_namespace_lands_in_the_environments(tmp_path: Path) -> None:
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\ndata:\n  text: {{ params.text }}\n"
    root = project(tmp_path, "  a: {use: greeting, with: {text: hi}}", template=template)
    (config,) = [o for o in compile_environment("demo", root=root).objects if o["kind"] == "ConfigMap"]
    assert config["metadata"]["namespace"] == "demo"


def test_a_rule_on_a_component_object_names_the_instance_and_the_component(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ params.text }}\nspec: {ports: [{port: 80}]}\n"
    root = project(tmp_path, "  bad: {use: greeting, with: {text: Not A Label}}", template=template)
    monkeypatch.chdir(root)
    problems = problems_of(root)
    assert any(
        p.startswith("environments/demo.yaml:4:3: components.bad: Service name 'Not A Label' is not a valid DNS-1123 label")
        and p.endswith("(rendered by component greeting, components/greeting/) [name-limits]")
        for p in problems
    ), problems


def test_a_component_edited_between_renders_in_one_process_renders_anew(tmp_path: Path) -> None:
    """Components are loaded once per process for as long as their files stay the same."""
    root = project(tmp_path, "  hello: {use: greeting, with: {text: hello}}")
    first = compile_environment("demo", root=root)
    assert [o["data"]["text"] for o in first.objects if o["kind"] == "ConfigMap"] == ["hello"]
    folder = root / "components" / "greeting"
    (folder / "component.yaml").write_text(MANIFEST.replace("default: 1", "default: 2"), encoding="utf-8")
    names = [o["metadata"]["name"] for o in compile_environment("demo", root=root).objects if o["kind"] == "ConfigMap"]
    assert names == ["hello-0", "hello-1"]
    (folder / "extra.yaml.j2").write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ name }}\n  namespace: {{ env.namespace }}\n", encoding="utf-8"
    )
    kinds = [o["kind"] for o in compile_environment("demo", root=root).objects]
    assert "ServiceAccount" in kinds


def test_a_broken_component_is_reported_on_every_render(tmp_path: Path) -> None:
    root = project(tmp_path, "  hello: {use: greeting, with: {text: hello}}", manifest=MANIFEST + "colour: blue\n")
    first = problems_of(root)
    assert any("unknown key 'colour'" in p for p in first)
    assert problems_of(root) == first
