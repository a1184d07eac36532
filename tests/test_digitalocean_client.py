"""The one door to DigitalOcean: token handling, retries, errors, pagination — over real HTTP to the fake."""

from __future__ import annotations

import logging
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
import requests

from envspec.cloud.digitalocean import DO_RETRY, DigitalOceanAPIError, DigitalOceanClient, RetryPolicy, retry_after_seconds
from envspec.errors import EXIT_OPERATION, EXIT_USER_ERROR, SpecError
from tests.fakes.do_server import TOKEN, FakeDigitalOcean, fake_do  # noqa: F401  (fixture)


def client(sleeps: list[float], **policy: float) -> DigitalOceanClient:
    """DigitalOcean's retry settings with the jitter pinned to its maximum, so backoff is exact."""
    settings = {**DO_RETRY, **policy}
    return DigitalOceanClient.from_env(
        policy=RetryPolicy(**settings, random=lambda: 1.0), sleep=sleeps.append  # type: ignore[arg-type]
    )


def test_missing_token_is_a_clear_user_error(fake_do: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGITALOCEAN_TOKEN")
    with pytest.raises(SpecError) as info:
        DigitalOceanClient.from_env()
    assert info.value.exit_code == EXIT_USER_ERROR
    assert "DIGITALOCEAN_TOKEN is not set" in str(info.value)
    assert fake_do.log == []


def test_bad_token_gives_401_with_digitalocean_message_and_no_token(
    fake_do: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_do.add_domain("aphiria.com")
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "dop_v1_wrongtoken")
    sleeps: list[float] = []
    with pytest.raises(DigitalOceanAPIError) as info:
        client(sleeps).list_records("aphiria.com")
    error = info.value
    assert error.status == 401 and error.exit_code == EXIT_OPERATION
    assert "HTTP 401: Unable to authenticate you" in str(error)
    assert "check that DIGITALOCEAN_TOKEN" in str(error)
    assert "dop_v1_wrongtoken" not in str(error) and "dop_v1_wrongtoken" not in repr(error)
    assert sleeps == []  # 401 is not retried
    assert len(fake_do.log) == 1


def test_token_never_appears_in_reprs_or_debug_logs(fake_do: FakeDigitalOcean, caplog: pytest.LogCaptureFixture) -> None:
    fake_do.add_domain("aphiria.com")
    fake_do.add_record("aphiria.com", "A", "www", "203.0.113.1")
    caplog.set_level(logging.DEBUG)
    do = client([])
    do.list_records("aphiria.com")
    assert TOKEN not in repr(do) and TOKEN not in repr(do._session) and TOKEN not in repr(do._token)
    assert TOKEN not in caplog.text


def test_429_is_retried_after_the_retry_after_wait(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_domain("aphiria.com")
    fake_do.add_record("aphiria.com", "A", "www", "203.0.113.1")
    fake_do.inject(429, path="/v2/domains/aphiria.com/records/?", headers={"Retry-After": "7"}, times=2)
    sleeps: list[float] = []
    records = client(sleeps).list_records("aphiria.com")
    assert [r.name for r in records] == ["www"]
    assert sleeps == [7.0, 7.0]
    assert len(fake_do.requests_to("GET", "/v2/domains/aphiria.com/records/?")) == 3


def test_429_on_post_is_retried_too(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_domain("aphiria.com")
    fake_do.inject(429, method="POST", headers={"Retry-After": "1"})
    sleeps: list[float] = []
    created = client(sleeps).create_record("aphiria.com", type="A", name="www", data="203.0.113.1", ttl=300)
    assert created.name == "www" and sleeps == [1.0]
    assert [r["name"] for r in fake_do.records("aphiria.com")] == ["www"]


def test_500_is_retried_with_backoff_then_fails_with_a_clear_message(fake_do: FakeDigitalOcean) -> None:
    fake_do.inject(500, path="/v2/kubernetes/clusters", times=10)
    sleeps: list[float] = []
    with pytest.raises(DigitalOceanAPIError) as info:
        client(sleeps, attempts=4, base_delay=0.5, max_delay=1.5).list_clusters()
    assert info.value.status == 500
    assert str(info.value) == (
        "DigitalOcean API: GET /v2/kubernetes/clusters failed with HTTP 500: Unexpected server-side error"
        " (after 4 attempts)"
    )
    assert sleeps == [0.5, 1.0, 1.5]  # doubled, capped at max_delay
    assert len(fake_do.log) == 4


def test_a_transient_500_recovers(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_cluster("c1")
    fake_do.inject(500, path="/v2/kubernetes/clusters")
    sleeps: list[float] = []
    assert [c["name"] for c in client(sleeps).list_clusters()] == ["c1"]
    assert sleeps == [1.0]


def test_500_on_post_is_not_retried_because_it_may_have_been_processed(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_domain("aphiria.com")
    fake_do.inject(500, method="POST")
    sleeps: list[float] = []
    with pytest.raises(DigitalOceanAPIError) as info:
        client(sleeps).create_record("aphiria.com", type="A", name="www", data="203.0.113.1", ttl=300)
    assert info.value.status == 500 and sleeps == []
    assert len(fake_do.requests_to("POST", ".*")) == 1


def test_error_bodies_without_a_message_still_say_what_failed(fake_do: FakeDigitalOcean) -> None:
    # python-digitalocean would raise IndexError on this body (it indexes [id, message][1]).
    from envspec.cloud.digitalocean import DnsRecord

    fake_do.add_domain("aphiria.com")
    record = fake_do.add_record("aphiria.com", "A", "www", "203.0.113.1")
    fake_do.inject(422, method="PUT", body={"unexpected": True})
    do = client([], attempts=2)
    with pytest.raises(DigitalOceanAPIError) as info:
        do.update_record("aphiria.com", DnsRecord(record["id"], "A", "www", "203.0.113.1", 1800), data="203.0.113.2",
                         ttl=300)
    assert info.value.status == 422
    assert "HTTP 422: Unprocessable Entity (the body was not a DigitalOcean error message)" in str(info.value)

    fake_do.inject(502, body="<html>bad gateway</html>", times=5)
    with pytest.raises(DigitalOceanAPIError) as info:
        do.list_records("aphiria.com")
    assert info.value.status == 502
    assert "HTTP 502: Bad Gateway (the body was not a DigitalOcean error message) (after 2 attempts)" in str(info.value)


def test_a_missing_record_is_a_404_with_status_not_a_bare_not_found(fake_do: FakeDigitalOcean) -> None:
    from envspec.cloud.digitalocean import DnsRecord

    fake_do.add_domain("aphiria.com")
    with pytest.raises(DigitalOceanAPIError) as info:
        client([]).update_record("aphiria.com", DnsRecord(99, "A", "www", "203.0.113.1", 300), data="203.0.113.2", ttl=300)
    assert info.value.status == 404
    assert "PUT /v2/domains/aphiria.com/records/99 failed with HTTP 404" in str(info.value)


def test_python_digitalocean_quirks_are_wrapped(fake_do: FakeDigitalOcean) -> None:
    """Should any python-digitalocean error escape our session, `_call` still names the call and a status."""
    import digitalocean

    do = client([])

    def raise_index() -> None:
        [][1]

    def raise_not_found() -> None:
        raise digitalocean.NotFoundError()

    def raise_data_read() -> None:
        raise digitalocean.DataReadError(f"rejected token {TOKEN}")

    with pytest.raises(DigitalOceanAPIError, match="list records: failed with an unreadable error body"):
        do._call("list records", raise_index)
    with pytest.raises(DigitalOceanAPIError) as info:
        do._call("get domain", raise_not_found)
    assert info.value.status == 404 and "get domain: not found (HTTP 404)" in str(info.value)
    with pytest.raises(DigitalOceanAPIError) as info:
        do._call("load", raise_data_read)
    assert TOKEN not in str(info.value) and "<redacted>" in str(info.value)


def test_records_are_read_across_pages(fake_do: FakeDigitalOcean) -> None:
    fake_do.max_per_page = 2
    fake_do.add_domain("aphiria.com")
    for i in range(5):
        fake_do.add_record("aphiria.com", "A", f"h{i}", f"203.0.113.{i + 1}")
    records = client([]).list_records("aphiria.com")
    assert [r.name for r in records] == ["h0", "h1", "h2", "h3", "h4"]
    pages = [e.query.get("page", ["1"])[0] for e in fake_do.requests_to("GET", "/v2/domains/aphiria.com/records/?")]
    assert pages == ["1", "2", "3"]


def test_clusters_are_read_across_pages(fake_do: FakeDigitalOcean) -> None:
    fake_do.max_per_page = 1
    for name in ("a", "b", "c"):
        fake_do.add_cluster(name)
    do = client([])
    assert sorted(c["name"] for c in do.list_clusters()) == ["a", "b", "c"]
    assert do.find_cluster("b")["name"] == "b"  # type: ignore[index]
    assert do.find_cluster("zzz") is None


def test_retry_after_accepts_an_http_date() -> None:
    response = requests.Response()
    response.status_code = 429
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    response.headers["Retry-After"] = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert retry_after_seconds(response, now=lambda: now.timestamp()) == pytest.approx(12.0)
    response.headers["Retry-After"] = "nonsense"
    assert retry_after_seconds(response) is None


def test_an_overlong_retry_after_is_capped(fake_do: FakeDigitalOcean) -> None:
    fake_do.inject(429, headers={"Retry-After": "86400"})
    sleeps: list[float] = []
    client(sleeps, max_retry_after=20).list_clusters()
    assert sleeps == [20.0]


def test_unreachable_api_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeDigitalOcean()  # never started: bind, then close, so the port refuses connections
    end_point = server.end_point
    server.stop()
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", end_point)
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", TOKEN)
    sleeps: list[float] = []
    with pytest.raises(DigitalOceanAPIError) as info:
        client(sleeps, attempts=3).list_clusters()
    assert "no answer (ConnectionError) after 3 attempt(s)" in str(info.value)
    assert len(sleeps) == 2


def test_python_digitalocean_records_ignore_the_domain_end_point(
    fake_do: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pins the quirk the client works around: only DIGITALOCEAN_END_POINT reaches returned Records."""
    import digitalocean

    fake_do.add_domain("aphiria.com")
    fake_do.add_record("aphiria.com", "A", "www", "203.0.113.1")
    monkeypatch.delenv("DIGITALOCEAN_END_POINT")
    domain = digitalocean.Domain(name="aphiria.com", token=TOKEN, end_point=fake_do.end_point)
    [record] = domain.get_records()
    assert record.end_point == "https://api.digitalocean.com/v2/"
    # ...so the client passes its end point to every object it builds itself:
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", fake_do.end_point)
    do = client([])
    [ours] = do.list_records("aphiria.com")
    monkeypatch.delenv("DIGITALOCEAN_END_POINT")
    do.update_record("aphiria.com", ours, data="203.0.113.2", ttl=300)
    assert fake_do.records("aphiria.com")[0]["data"] == "203.0.113.2"


def test_the_policy_is_the_shared_one_with_jitter_by_default(fake_do: FakeDigitalOcean) -> None:
    """One retry implementation for Kubernetes and DigitalOcean: envspec.retry.RetryPolicy."""
    import envspec.retry

    assert RetryPolicy is envspec.retry.RetryPolicy
    fake_do.inject(500, path="/v2/kubernetes/clusters", times=2)
    sleeps: list[float] = []
    policy = RetryPolicy(**DO_RETRY, random=lambda: 0.25)
    DigitalOceanClient.from_env(policy=policy, sleep=sleeps.append).list_clusters()
    assert sleeps == [0.25, 0.5]  # full jitter: uniform share of 1.0 * 2**attempt


def test_ratelimit_reset_is_the_fallback_hint(fake_do: FakeDigitalOcean) -> None:
    import time

    fake_do.inject(429, headers={"Ratelimit-Reset": str(int(time.time()) + 30)})
    sleeps: list[float] = []
    client(sleeps).list_clusters()
    assert len(sleeps) == 1 and 28.0 <= sleeps[0] <= 31.0
