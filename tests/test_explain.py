"""`envspec explain`: spec file:line:col, the chain of files, references and the template line of each field."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from envspec.cli import main


def _explain(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["explain", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_field_names_its_spec_key_references_and_template(repo_root) -> None:
    code, out, err = _explain("preview-pr", "--pr", "107", "Deployment/api", "spec.template.spec.containers[0].image")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Deployment/preview-pr-107/api in preview-pr"
    assert lines[1] == 'spec.template.spec.containers[0].image: "ghcr.io/aphiria/aphiria.com-api:pr-107"'
    assert "apps.api.image: environments/_defaults.yaml:" in out
    assert 'written   "${params.apiImage}"' in out
    assert "via ${params.apiImage} = \"ghcr.io/aphiria/aphiria.com-api:pr-107\"  environments/preview-pr.yaml:" in out
    assert "(params.apiImage.default)" in out
    assert "via ${params.pr} = 107  --pr 107" in out
    assert "template  envspec/templates/_container.j2:3" in out


def test_the_chain_of_files_and_set_flags(repo_root) -> None:
    code, out, err = _explain("production", "Deployment/web", "spec.replicas", "--set", "apps.web.replicas=3")
    assert code == 0, err
    assert "spec.replicas: 3" in out
    assert "apps.web.replicas: environments/production.yaml:" in out and "-> --set apps.web.replicas=3" in out
    assert "template  envspec/templates/app/app.yaml.j2:9" in out

    code, out, _ = _explain("preview-pr", "--pr", "107", "Deployment/api",
                            "spec.template.spec.containers.php.env.DB_PASSWORD.valueFrom.secretKeyRef.name")
    assert code == 0
    # _defaults.yaml names postgres-admin, preview-pr.yaml overrides it with app-db
    assert '"app-db"' in out
    chain = next(line for line in out.splitlines() if "secretEnv.DB_PASSWORD.secret" in line)
    assert "environments/_defaults.yaml:" in chain and "-> environments/preview-pr.yaml:" in chain


def test_a_used_environments_output_is_traced_to_its_file(repo_root) -> None:
    code, out, _ = _explain("preview-pr", "--pr", "107", "HTTPRoute/web", "spec.parentRefs[0].sectionName")
    assert code == 0
    assert "routes.web.gateway.listener: environments/preview-pr.yaml:" in out
    assert "via ${base.webListener} = \"https-pr\"  environments/preview-base.yaml:" in out


def test_the_whole_object_is_annotated_and_json_works(repo_root) -> None:
    code, out, err = _explain("preview-pr", "--pr", "107", "HTTPRoute/web", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["object"] == "HTTPRoute/preview-pr-107/web" and data["environment"] == "preview-pr"
    by_field = {f["field"]: f for f in data["fields"]}
    assert by_field["spec.hostnames[0]"]["value"] == "107.pr.aphiria.com"
    hostnames = by_field["spec.hostnames[0]"]
    assert hostnames["spec"]["path"] == "routes.web.hostnames[0]"
    assert hostnames["spec"]["chain"][-1]["file"] == "environments/preview-pr.yaml"
    assert hostnames["spec"]["chain"][-1]["line"] > 0 and hostnames["spec"]["chain"][-1]["col"] > 0
    assert hostnames["spec"]["references"][0]["reference"] == "${outputs.webHost}"
    assert hostnames["spec"]["references"][0]["references"][0]["source"] == "--pr 107"
    assert hostnames["template"] == {"file": "envspec/templates/route/httproute.yaml.j2", "line": 11}
    assert by_field["metadata.labels.envspec.dev/instance"]["note"].startswith("added by envspec")
    assert by_field["kind"]["template"]["line"] == 2
    # -o is kubectl's spelling of --format
    code, out2, _ = _explain("preview-pr", "--pr", "107", "HTTPRoute/web", "-o", "json")
    assert code == 0 and json.loads(out2) == data


def test_kinds_as_kubectl_reads_them(repo_root) -> None:
    for target in ("deploy/web", "deployments/web", "deployment/web", "Deployment/preview-pr-107/web"):
        code, out, err = _explain("preview-pr", "--pr", "107", target, "spec.replicas")
        assert code == 0, (target, err)
        assert out.startswith("Deployment/preview-pr-107/web in preview-pr\n")


def test_a_default_is_said_to_be_one(repo_root) -> None:
    code, out, _ = _explain("preview-pr", "--pr", "107", "Deployment/api", "spec.replicas")
    assert code == 0
    assert "apps.api.replicas (the model's default; no file sets it)" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["Deployment/ap"], "preview-pr renders no object 'Deployment/ap'; did you mean 'Deployment/api'?"),
        (["Deployment"], "expected KIND/NAME"),
        (["Deployment/api", "spec.replica"], "spec.replica: spec has no field 'replica'; did you mean 'replicas'?"),
    ],
)
def test_bad_targets_are_exit_2(repo_root, args: list[str], message: str) -> None:
    code, _, err = _explain("preview-pr", "--pr", "107", *args)
    assert code == 2
    assert message in err


def test_the_readme_shows_real_output(repo_root) -> None:
    """Every `$ envspec explain ...` in the README prints what the README says (line:col numbers aside,
    which move whenever an environment file is edited)."""
    import re
    import shlex

    text = (repo_root / "README.md").read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, re.S)
    runs = [chunk for block in blocks for chunk in block.split("\n\n") if chunk.startswith("$ envspec explain ")]
    assert len(runs) >= 3 and any("preview-pr --pr 107" in r for r in runs)

    def loose(s: str) -> str:
        return re.sub(r"\.(yaml|j2):\d+(:\d+)?", r".\1:N", s.strip())

    for chunk in runs:
        command, _, expected = chunk.partition("\n")
        args = shlex.split(command[2:])[1:]
        code, out, err = _explain(*args[1:])
        assert code == 0, err
        assert loose(out) == loose(expected), command


def test_any_field_path_or_target_is_an_answer_or_a_located_refusal() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from envspec.errors import SpecError
    from envspec.explain import field_path, find_object
    from envspec.pipeline import compile_environment
    from tests.conftest import REPO

    compiled = compile_environment("preview-pr", root=REPO, params=["pr=107"])
    obj = compiled.objects[0]

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=40), st.text(max_size=40))
    def check(path: str, target: str) -> None:
        for call in (lambda: field_path(path, obj), lambda: find_object(compiled, target)):
            try:
                call()
            except SpecError as exc:
                assert exc.problems and all(p.message for p in exc.problems)

    check()
