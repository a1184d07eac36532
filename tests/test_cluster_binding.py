"""Cluster binding by what identifies a cluster, and kubeconfig lists merged as kubectl merges them (issue 9).

A context name identifies nothing: doctl names every context
`do-<region>-<cluster name>`, so another account's cluster with the same name
has a context of the same name. These tests hand envspec exactly such a
kubeconfig and check that the bundled environments refuse it with exit 2
before a single request reaches the (fake) cluster; and that they accept the
cluster the DigitalOcean account really holds.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from envspec.cli import main
from envspec.errors import SpecError
from envspec.kube.binding import enforce_binding
from envspec.kube.client import ca_fingerprint, check_binding, load_target
from envspec.kube.helm import HelmTarget, _target_flags
from envspec.plan import ClusterBinding
from tests.fakes.do_server import FakeDigitalOcean, fake_do  # noqa: F401  (fixture)
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    fake_kube,
    kubeconfig,
    preview_pr_args,
    seed_shared_infrastructure,
)

pytestmark = pytest.mark.usefixtures("repo_root")

PREVIEW_CONTEXT = "do-nyc3-aphiria-com-preview-cluster"
PRODUCTION_CONTEXT = "do-nyc3-aphiria-com-cluster"
ENV = {"POSTGRES_USER": "aphiria", "POSTGRES_PASSWORD": "pw-binding-test", "GHCR_TOKEN": "ghcr-binding-test"}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Any bytes between PEM markers: the fingerprint is the sha256 of exactly these (DER) bytes.
DER = b"0\x82\x01\x0a-a-test-certificate-" + bytes(range(40))
PEM = "-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(DER).decode() + "-----END CERTIFICATE-----\n"
FINGERPRINT = "sha256:" + hashlib.sha256(DER).hexdigest()


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, env={**ENV, **(env or {})})


def kube_writes(fake: FakeKube) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method in WRITES]


def preview_pr(command: str, kubeconfig: Path, *extra: str) -> Result:  # noqa: F811
    """preview-pr as committed (bound to its DigitalOcean cluster), pinned images, the given kubeconfig."""
    return run([command, "preview-pr", *preview_pr_args(107, bind_to_fake=False), "--kubeconfig", str(kubeconfig),
                "--timeout", "5", *extra])


# --- the bundled environments bind to their DigitalOcean cluster --------------------------------


@pytest.mark.parametrize("command", ["apply", "diff", "destroy"])
def test_a_same_named_context_of_another_cluster_is_refused_with_no_request(
    command: str, fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path  # noqa: F811
) -> None:
    """Another account's `aphiria-com-preview-cluster`: same context name, another API server."""
    cluster = fake_do.add_cluster("aphiria-com-preview-cluster")  # ours, at its own endpoint
    impostor = fake_kube.write_kubeconfig(tmp_path / "kc", context=PREVIEW_CONTEXT)
    result = preview_pr(command, impostor)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0].startswith(f"target: context {PREVIEW_CONTEXT} at {fake_kube.url}")
    assert (f"environment preview-pr is bound to DigitalOcean cluster aphiria-com-preview-cluster "
            f"(id {cluster['id']}, API server {cluster['endpoint']}), but context '{PREVIEW_CONTEXT}' points at "
            f"{fake_kube.url}; refusing") in result.stderr
    assert "Traceback" not in result.output
    assert fake_kube.requests == []  # not one request, so certainly no write
    assert fake_do.writes() == []


def test_production_refuses_a_same_named_context_too(
    fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path  # noqa: F811
) -> None:
    fake_do.add_cluster("aphiria-com-cluster")
    impostor = fake_kube.write_kubeconfig(tmp_path / "kc", context=PRODUCTION_CONTEXT)
    result = run(["apply", "production", "--kubeconfig", str(impostor), "--yes", "--skip-dns"],
                 env={"DIGITALOCEAN_TOKEN": fake_do.token})
    assert result.exit_code == 2, result.output
    assert "bound to DigitalOcean cluster aphiria-com-cluster" in result.stderr and "refusing" in result.stderr
    assert fake_kube.requests == []


def test_without_a_digitalocean_token_the_target_cannot_be_verified(
    fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)
    result = preview_pr("apply", fake_kube.write_kubeconfig(tmp_path / "kc", context=PREVIEW_CONTEXT))
    assert result.exit_code == 2, result.output
    assert "environment preview-pr is bound to DigitalOcean cluster aphiria-com-preview-cluster; " \
           f"to check that {fake_kube.url} is that cluster, DIGITALOCEAN_TOKEN is not set" in result.stderr
    assert fake_kube.requests == []


def test_an_account_without_the_cluster_is_refused(
    fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path  # noqa: F811
) -> None:
    fake_do.add_cluster("someone-elses-cluster")
    result = preview_pr("diff", fake_kube.write_kubeconfig(tmp_path / "kc", context=PREVIEW_CONTEXT))
    assert result.exit_code == 2, result.output
    assert "has no cluster of that name; refusing" in result.stderr
    assert fake_kube.requests == []


def test_a_context_mismatch_is_refused_before_asking_digitalocean(
    fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path  # noqa: F811
) -> None:
    result = preview_pr("apply", fake_kube.write_kubeconfig(tmp_path / "kc", context="kind-test"))
    assert result.exit_code == 2 and f"bound to kube context '{PREVIEW_CONTEXT}'" in result.stderr
    assert fake_do.log == [] and fake_kube.requests == []


def test_the_cluster_the_account_holds_is_accepted_and_named(
    fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path  # noqa: F811
) -> None:
    cluster = fake_do.add_cluster("aphiria-com-preview-cluster")
    fake_do.kubeconfig_server = fake_kube.url  # the account's cluster is served at this endpoint
    seed_shared_infrastructure(fake_kube)
    kc = fake_kube.write_kubeconfig(tmp_path / "kc", context=PREVIEW_CONTEXT)
    result = preview_pr("apply", kc)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"target: context {PREVIEW_CONTEXT} at {fake_kube.url} (context from {kc})"
    assert lines[1] == (f"cluster: DigitalOcean cluster aphiria-com-preview-cluster (id {cluster['id']}), "
                        f"API server {fake_kube.url}")
    assert fake_do.writes() == []  # the check only reads


def test_a_digitalocean_binding_needs_a_declared_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text(
        "cluster:\n  context: x\n  digitalocean: true\nnamespace: {name: demo}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["render", "bad"])
    assert result.exit_code == 2
    assert "environments/bad.yaml:3:17: cluster.digitalocean: binding to the DigitalOcean cluster needs " \
           "digitalocean.cluster" in result.stderr


def test_a_malformed_ca_fingerprint_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text(
        "cluster:\n  caFingerprint: AB:CD\nnamespace: {name: demo}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["render", "bad"])
    assert result.exit_code == 2
    assert result.stderr.startswith("environments/bad.yaml:2:18: cluster.caFingerprint:"), result.stderr


# --- CA fingerprint --------------------------------------------------------------------------------


def _with_ca(fake: FakeKube, path: Path, *, data: str | None = None, file: str | None = None) -> Path:
    fake.write_kubeconfig(path)
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    if data is not None:
        cluster["certificate-authority-data"] = base64.b64encode(data.encode()).decode()
    if file is not None:
        cluster["certificate-authority"] = file
    path.write_text(yaml.safe_dump(config))
    return path


def test_ca_fingerprint_is_sha256_of_the_der_certificate() -> None:
    assert ca_fingerprint(PEM) == FINGERPRINT


def test_ca_fingerprint_binding_from_data_and_from_a_relative_file(fake_kube: FakeKube, tmp_path: Path) -> None:  # noqa: F811
    from_data = _with_ca(fake_kube, tmp_path / "a" / "kc", data=PEM)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ca.crt").write_text(PEM)
    from_file = _with_ca(fake_kube, tmp_path / "b" / "kc", file="ca.crt")
    for path in (from_data, from_file):
        target, api = load_target(path, None)
        api.close()
        assert target.ca_fingerprint == FINGERPRINT
        check_binding(ClusterBinding(ca_fingerprint=FINGERPRINT), target, environment="production")

    other = "sha256:" + "0" * 64
    target, api = load_target(from_data, None)
    api.close()
    with pytest.raises(SpecError) as info:
        check_binding(ClusterBinding(ca_fingerprint=other), target, environment="production")
    assert f"bound to the cluster whose CA certificate has fingerprint {other}" in str(info.value)
    assert f"its cluster's CA certificate has fingerprint {FINGERPRINT}; refusing" in str(info.value)


def test_ca_fingerprint_binding_refuses_a_context_without_a_ca(
    fake_kube: FakeKube, kubeconfig: Path, tmp_path: Path  # noqa: F811
) -> None:
    env = tmp_path / "environments"
    env.mkdir()
    (env / "bound.yaml").write_text(f"cluster:\n  caFingerprint: {FINGERPRINT}\nnamespace: {{name: demo, create: false}}\n"
                                    "configMaps:\n  c: {a: b}\n")
    result = run(["diff", "bound", "--root", str(tmp_path), "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 2, result.output
    assert "its cluster entry has no readable certificate-authority-data or certificate-authority file; refusing" in result.stderr
    assert fake_kube.requests == []
    with_ca = _with_ca(fake_kube, tmp_path / "kc-ca", data=PEM)
    accepted = run(["diff", "bound", "--root", str(tmp_path), "--kubeconfig", str(with_ca)])
    assert accepted.exit_code == 1, accepted.output  # reached the cluster: one ConfigMap to create


# --- KUBECONFIG=a:b --------------------------------------------------------------------------------


def _split_kubeconfig(fake: FakeKube, tmp_path: Path) -> tuple[Path, Path]:
    """a: the cluster, the user and context `first` (current); b: context `fake` using a's cluster and user."""
    a = fake.write_kubeconfig(tmp_path / "a", context="first")
    b = tmp_path / "b"
    b.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "contexts": [{"name": "fake", "context": {"cluster": "fake-cluster", "user": "fake-user"}},
                     {"name": "first", "context": {"cluster": "nowhere", "user": "nobody"}}],
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://nowhere.invalid"}}],
        "users": [{"name": "nobody", "user": {"token": "x"}}],
    }))
    return a, b


def test_kubeconfig_list_is_merged_and_names_the_file_of_the_context(
    fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    a, b = _split_kubeconfig(fake_kube, tmp_path)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(a), str(tmp_path / "missing"), str(b)]))
    # The context only b defines, with the cluster and user only a defines: the files are merged.
    target, api = load_target(None, "fake")
    api.close()
    assert target.server == fake_kube.url and target.context_file == str(b)
    assert target.describe() == f"target: context fake at {fake_kube.url} (context from {b})"
    # current-context: the first file that sets it (kubectl's rule); `first` from a wins over b's.
    target, api = load_target(None, None)
    api.close()
    assert target.context == "first" and target.context_file == str(a) and target.server == fake_kube.url


def test_kubeconfig_list_through_the_command_line(
    fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    a, b = _split_kubeconfig(fake_kube, tmp_path)
    seed_shared_infrastructure(fake_kube)
    result = run(["diff", "preview-pr", *preview_pr_args(107), "--context", "fake"],
                 env={"KUBECONFIG": os.pathsep.join([str(a), str(b)])})
    assert result.exit_code == 1, result.output  # reached the cluster: everything to create
    assert result.stderr.splitlines()[0] == f"target: context fake at {fake_kube.url} (context from {b})"


def test_kubeconfig_list_of_missing_files_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "x"), str(tmp_path / "y")]))
    with pytest.raises(SpecError, match="none of the kubeconfig files in KUBECONFIG exists"):
        load_target(None, None)


def test_helm_gets_a_kubeconfig_list_through_its_environment_not_the_flag() -> None:
    assert _target_flags(HelmTarget(kubeconfig=f"a{os.pathsep}b", context="fake")) == ["--kube-context", "fake"]
    assert _target_flags(HelmTarget(kubeconfig="/k", context="c")) == ["--kubeconfig", "/k", "--kube-context", "c"]


def test_enforce_binding_without_digitalocean_needs_no_token(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    target, api = load_target(kubeconfig, None)
    api.close()
    assert enforce_binding(ClusterBinding(context="fake", server=fake_kube.url), target, environment="x") == []


def test_kubeconfig_flag_takes_one_file_and_bad_yaml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="takes one file .* set KUBECONFIG=a:b instead"):
        load_target(f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}", None)
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_target(broken, None)
    assert str(info.value).startswith(f"{broken}:2:1: not valid YAML: ") and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n", "kc: not a kubeconfig: expected a mapping with clusters, contexts and users"),
    ("", "kc: the kubeconfig file is empty"),
    ("contexts: 5\n", "kc: contexts: must be a list"),
    ("contexts: [{context: {}}]\n", "kc: contexts[0]: each entry needs a name"),
    ("contexts: [{name: x, context: 3}]\n", "kc: contexts[0].context: must be a mapping"),
    ("clusters: [{name: c, cluster: {server: 5}}]\n", "kc: clusters[0].cluster.server: must be a URL"),
    ("current-context: [a]\n", "kc: current-context: must be a context name"),
    ("clusters: [unclosed\n", "kc:2:1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ("current-context: x\n", "the current context 'x' is not defined in kubeconfig"),
])
def test_a_malformed_kubeconfig_is_a_located_user_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "kc").write_text(text)
    result = run(["diff", "production", "--kubeconfig", str(tmp_path / "kc")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(("environment", "params", "do_cluster"), [
    ("preview-base", [], "aphiria-com-preview-cluster"),
    ("preview-pr", ["pr=7"], "aphiria-com-preview-cluster"),  # declared by preview-base, read through `uses`
    ("production", [], "aphiria-com-cluster"),
])
def test_bundled_environments_bind_by_more_than_a_context_name(
    environment: str, params: list[str], do_cluster: str
) -> None:
    from envspec.pipeline import compile_environment

    binding = compile_environment(environment, params=params).plan.cluster
    assert binding.server or binding.ca_fingerprint or binding.digitalocean
    assert binding.digitalocean and binding.digitalocean_cluster == do_cluster


def test_digitalocean_not_answering_is_exit_3_and_nothing_reaches_the_cluster(
    fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path  # noqa: F811
) -> None:
    fake_do.add_cluster("aphiria-com-preview-cluster")
    fake_do.inject(401, path="/v2/kubernetes/clusters")
    result = preview_pr("apply", fake_kube.write_kubeconfig(tmp_path / "kc", context=PREVIEW_CONTEXT))
    assert result.exit_code == 3, result.output
    assert "HTTP 401" in result.stderr and fake_do.token not in result.output
    assert fake_kube.requests == []


def test_an_unreadable_ca_proves_nothing(fake_kube: FakeKube, tmp_path: Path) -> None:  # noqa: F811
    for path in (_with_ca(fake_kube, tmp_path / "a", data="not a certificate"),
                 _with_ca(fake_kube, tmp_path / "b", file="missing-ca.crt")):
        target, api = load_target(path, None)
        api.close()
        assert target.ca_fingerprint is None
        with pytest.raises(SpecError, match="no readable certificate-authority-data"):
            check_binding(ClusterBinding(ca_fingerprint=FINGERPRINT), target, environment="x")
