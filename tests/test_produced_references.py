"""A container may use a Secret or ConfigMap that a raw object or a component makes, not only a declared one."""

from __future__ import annotations

from pathlib import Path

import pytest

from envspec.errors import SpecError
from envspec.pipeline import compile_environment

APP = """cluster: {context: kind-test}
namespace: {name: demo}
apps:
  web:
    image: nginx:1.27
    containers:
      web:
        secretEnv:
          TOKEN: {secret: %s, key: token}
        configMaps: [%s]
"""
GREETING = """{% for i in range(2) %}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ name ~ "-" ~ i }}, namespace: {{ env.namespace }}}
data: {text: hi}
{% endfor %}
"""
EXTERNAL = """objects:
  - apiVersion: external-secrets.io/v1
    kind: ExternalSecret
    metadata: {name: api-token, namespace: demo}
    spec:
      secretStoreRef: {name: vault, kind: ClusterSecretStore}
      target: {name: %s}
      data: [{secretKey: token, remoteRef: {key: api/token}}]
"""


def project(tmp_path: Path, secret: str, config_map: str, extra: str = "", files: dict[str, str] | None = None) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "demo.yaml").write_text(APP % (secret, config_map) + extra, encoding="utf-8")
    for rel, text in {"components/greeting/component.yaml": "description: Greetings.\n",
                      "components/greeting/greeting.yaml.j2": GREETING, **(files or {})}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return tmp_path


def problems_of(root: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        compile_environment("demo", root=root)
    return [str(p) for p in info.value.problems]


def test_an_external_secrets_target_and_a_components_config_map_may_be_used(tmp_path: Path) -> None:
    root = project(tmp_path, "api-creds", "hello-1", EXTERNAL % "api-creds" + "components:\n  hello: {use: greeting}\n")
    kinds = [o["kind"] for o in compile_environment("demo", root=root).objects]
    assert "ExternalSecret" in kinds and "Deployment" in kinds


def test_an_external_secret_without_a_target_name_makes_a_secret_of_its_own_name(tmp_path: Path) -> None:
    root = project(tmp_path, "api-token", "settings", EXTERNAL.replace("      target: {name: %s}\n", "")
                   + "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {a: b}}\n")
    assert compile_environment("demo", root=root).objects


def test_a_plain_secret_in_an_object_file_may_be_used(tmp_path: Path) -> None:
    root = project(tmp_path, "made", "hello-0", "objectFiles: [manifests/secret.yaml]\ncomponents:\n  hello: {use: greeting}\n",
                   {"manifests/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: made, namespace: demo}\n"
                                             "stringData: {token: x}\n"})
    assert compile_environment("demo", root=root).objects


def test_it_is_still_an_error_at_the_line_naming_it_when_nothing_makes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other_namespace = "  - {apiVersion: v1, kind: Secret, metadata: {name: api-cred, namespace: elsewhere}, stringData: {token: x}}\n"
    root = project(tmp_path, "api-cred", "hello-2", EXTERNAL % "api-creds" + other_namespace + "components:\n  hello: {use: greeting}\n")
    monkeypatch.chdir(root)
    assert problems_of(root) == [
        "environments/demo.yaml:9:27: apps.web.containers.web.secretEnv.TOKEN.secret: "
        "Secret 'api-cred' is not declared in secrets; did you mean 'api-creds'?",
        "environments/demo.yaml:10:22: apps.web.containers.web.configMaps[0]: "
        "ConfigMap 'hello-2' is not declared in configMaps; did you mean 'hello-1'?",
    ]
