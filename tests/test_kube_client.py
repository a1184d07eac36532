"""Target resolution, cluster binding and the retry policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from envspec.errors import OperationError, SpecError
from envspec.kube.client import KubeTarget, check_binding, connect, load_target
from envspec.plan import ClusterBinding
from envspec.kube.retry import RetryPolicy, is_transient
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import fake_kube, kubeconfig, no_sleep_retry  # noqa: F401


def _two_context_kubeconfig(fake: FakeKube, tmp_path: Path) -> Path:
    """Contexts `fake` (current) and `prod`, both pointing at the fake server."""
    import yaml

    path = fake.write_kubeconfig(tmp_path / "kc", context="fake")
    data = yaml.safe_load(path.read_text())
    prod = dict(data["contexts"][0])
    prod = {"name": "prod", "context": dict(prod["context"])}
    data["contexts"].append(prod)
    path.write_text(yaml.safe_dump(data))
    return path


def test_target_names_context_and_server(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    target, api = load_target(kubeconfig, None)
    api.close()
    assert target == KubeTarget(context="fake", server=fake_kube.url, kubeconfig=str(kubeconfig),
                                context_file=str(kubeconfig))
    assert target.describe() == f"target: context fake at {fake_kube.url} (context from {kubeconfig})"


def test_context_mismatch_is_refused_with_the_fix(fake_kube: FakeKube, tmp_path: Path) -> None:  # noqa: F811
    path = _two_context_kubeconfig(fake_kube, tmp_path)
    with pytest.raises(SpecError) as info:
        connect(path, None, binding=ClusterBinding(context="prod"), environment="production")
    message = str(info.value)
    assert "bound to kube context 'prod'" in message and "current context is 'fake'" in message
    assert "pass --context prod" in message
    assert fake_kube.requests == []  # refused before any request

    target, kube = connect(path, "prod", binding=ClusterBinding(context="prod"), environment="production")
    kube.close()
    assert target.context == "prod"


def test_explicit_context_that_is_not_the_declared_one_is_refused(fake_kube: FakeKube, tmp_path: Path) -> None:  # noqa: F811
    path = _two_context_kubeconfig(fake_kube, tmp_path)
    with pytest.raises(SpecError, match="but --context is 'fake'"):
        connect(path, "fake", binding=ClusterBinding(context="prod"), environment="production")


def test_server_mismatch_is_refused_even_with_matching_context(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    binding = ClusterBinding(context="fake", server="https://prod.k8s.example.com")
    with pytest.raises(SpecError, match="bound to API server https://prod.k8s.example.com"):
        connect(kubeconfig, None, binding=binding, environment="production")
    check_binding(ClusterBinding(server=fake_kube.url + "/"), KubeTarget("fake", fake_kube.url, None), environment="x")


def test_unknown_context_and_missing_kubeconfig_are_user_errors(kubeconfig: Path, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(SpecError, match="context 'nope' is not in kubeconfig"):
        load_target(kubeconfig, "nope")
    with pytest.raises(SpecError, match="does not exist"):
        load_target(tmp_path / "missing", None)


def test_unreachable_server_is_one_clear_operation_error(tmp_path: Path) -> None:
    with FakeKube() as fake:
        path = fake.write_kubeconfig(tmp_path / "kc")
    _, kube = connect(path, None, retry=no_sleep_retry())  # the server is gone now
    with pytest.raises(OperationError, match="cannot reach the Kubernetes API at http://127.0.0.1"):
        kube.get("v1", "ConfigMap", "x", "default")
    kube.close()


def test_unknown_kind_says_which_api_is_missing(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    _, kube = connect(kubeconfig, None)
    with pytest.raises(OperationError, match=r"does not serve Widget \(example.com/v1\)"):
        kube.resource("example.com/v1", "Widget")
    kube.close()


class _Err(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or {}


def test_retry_policy_backoff_jitter_and_retry_after() -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, base_delay=1.0, sleep=slept.append, random=lambda: 0.5)
    calls = iter([_Err(503), _Err(429, {"Retry-After": "3"}), "ok"])

    def flaky() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert policy.call(flaky) == "ok"
    assert slept == [0.5, 3.0]  # 1.0 * 2**0 * 0.5, then Retry-After wins over 2.0 * 0.5
    assert policy.retried == 2


def test_retry_gives_up_after_attempts_and_never_retries_client_errors() -> None:
    policy = RetryPolicy(attempts=3, sleep=lambda s: None)
    count = [0]

    def always(status: int) -> None:
        count[0] += 1
        raise _Err(status)

    with pytest.raises(_Err):
        policy.call(lambda: always(500))
    assert count[0] == 3
    count[0] = 0
    with pytest.raises(_Err):
        policy.call(lambda: always(409))
    assert count[0] == 1
    assert is_transient(ConnectionResetError()) and not is_transient(ValueError())


def test_api_refusals_and_exhausted_retries_are_one_line_operation_errors(
    fake_kube: FakeKube, kubeconfig: Path  # noqa: F811
) -> None:
    from envspec.kube.client import KubeApiError

    _, kube = connect(kubeconfig, None, retry=no_sleep_retry())
    kube.resource("v1", "Secret")  # discovery first, so the faults below hit the requests under test
    fake_kube.add_fault(method="GET", path_regex=r"/namespaces/default/secrets/x$", status=403, times=1,
                        body={"kind": "Status", "code": 403, "reason": "Forbidden",
                              "message": 'secrets "x" is forbidden: User "ci" cannot get resource "secrets"'})
    with pytest.raises(KubeApiError) as info:
        kube.get("v1", "Secret", "x", "default")
    assert str(info.value) == ('get Secret/default/x: HTTP 403: secrets "x" is forbidden: '
                               'User "ci" cannot get resource "secrets"')
    assert info.value.status == 403 and info.value.exit_code == 3

    fake_kube.add_fault(method="GET", path_regex=r"/namespaces/default/configmaps$", status=503, times=3)
    with pytest.raises(OperationError, match=r"^list ConfigMap/default: the API server at http://127.0.0.1:\d+ "
                                             r"did not answer after 3 attempts"):
        kube.list("v1", "ConfigMap", namespace="default")
    fake_kube.add_fault(method="DELETE", path_regex=r"/namespaces/default/configmaps/y$", status=401, times=1)
    with pytest.raises(OperationError, match=r"^delete ConfigMap/default/y: HTTP 401"):
        kube.delete("v1", "ConfigMap", "y", "default")
    assert kube.get("v1", "Secret", "missing", "default") is None  # 404 stays an answer, not an error
    assert kube.delete("v1", "ConfigMap", "missing", "default") is False
    kube.close()


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    from envspec.retry import parse_retry_after

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    assert parse_retry_after("garbage") is None and parse_retry_after(None) is None
    policy = RetryPolicy(attempts=2, base_delay=1.0, max_retry_after=5.0, random=lambda: 0.0)
    assert policy.delay_for(0, _Err(429, {"Retry-After": "600"})) == 5.0  # a server can't stall a deploy for long
