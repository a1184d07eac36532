"""`envspec gc`, the PR guard and the comment upsert, against fake GitHub and Kubernetes APIs over HTTP."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from envspec.errors import OperationError, SpecError
from envspec.github.api import GitHubClient, GitHubError, next_link, resolve_repo
from envspec.github.gc import PreviewInstance, decide, parse_closed_prs, parse_duration, run_gc
from envspec.github.gc_cluster import closed_lookup
from envspec.github.guard import check_pull_request
from envspec.spec.preview import PreviewSpec, instance_pattern
from envspec.github.post import upsert_comment
from tests.fakes.do_server import FakeDigitalOcean, fake_do  # noqa: F401  (fixture)
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401  (fixture)
from tests.fakes.kube_server import FakeKube, fake_kube  # noqa: F401  (fixture)

REPO = "aphiria/aphiria.com"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


PREVIEW = PreviewSpec("preview-pr", "pr", None, instance_pattern("preview-pr-${params.pr}", "pr"))  # type: ignore[arg-type]
PREVIEWS = {"preview-pr": PREVIEW}


def preview(pr: int, *, age: timedelta | None = timedelta(hours=1), environment: str = "preview-pr") -> PreviewInstance:
    return PreviewInstance(f"preview-pr-{pr}", environment, None if age is None else NOW - age)


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("36h", timedelta(hours=36)), ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2))],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "1h30m", "0d", "-1d", "3y", "d7"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(SpecError, match="not a duration like 90m, 36h, 7d or 2w"):
        parse_duration(text)


def test_parse_closed_prs_with_comments_and_blanks() -> None:
    assert parse_closed_prs("# closed this week\n107\n\n  12  # merged\n107\n") == {12, 107}


def test_parse_closed_prs_points_at_the_bad_line() -> None:
    with pytest.raises(SpecError, match=r"closed\.txt:2: expected a PR number, got 'pr-12'"):
        parse_closed_prs("107\npr-12\n", "closed.txt")


# --- deciding ------------------------------------------------------------------------------


def test_closed_open_ttl_and_non_preview() -> None:
    instances = [
        preview(1),  # closed
        preview(2),  # open, young
        preview(3, age=timedelta(days=9)),  # open but past the TTL
        PreviewInstance("production", "production", NOW - timedelta(days=400)),
        PreviewInstance("preview-pr-4", "preview-base", NOW - timedelta(days=400)),  # looks like a PR, is not one
        preview(5, age=None),  # open, age unknown
    ]
    verdicts = decide(instances, previews=PREVIEWS, is_closed={1}.__contains__, older_than=timedelta(days=7), now=NOW)
    by_name = {v.instance.instance: v for v in verdicts}
    assert set(by_name) == {"preview-pr-1", "preview-pr-2", "preview-pr-3", "preview-pr-5"}
    assert by_name["preview-pr-1"].reasons == ("PR #1 is closed",)
    assert not by_name["preview-pr-2"].expired and "PR #2 is open" in by_name["preview-pr-2"].note
    assert by_name["preview-pr-3"].reasons == ("older than 1w (age 9d0h, never stamped by an apply)",)
    assert not by_name["preview-pr-5"].expired and "age unknown" in by_name["preview-pr-5"].note


def test_ttl_counts_from_the_last_apply_not_the_creation() -> None:
    month = NOW - timedelta(days=30)
    busy = PreviewInstance("preview-pr-7", "preview-pr", created=month, last_applied=NOW - timedelta(hours=2))
    idle = PreviewInstance("preview-pr-8", "preview-pr", created=month, last_applied=NOW - timedelta(days=8))
    never = PreviewInstance("preview-pr-9", "preview-pr", created=None, last_applied=NOW - timedelta(days=8))
    verdicts = decide([busy, idle, never], previews=PREVIEWS, is_closed=None, older_than=timedelta(days=7), now=NOW)
    by_name = {v.instance.instance: v for v in verdicts}
    assert not by_name["preview-pr-7"].expired and by_name["preview-pr-7"].note == "kept: within its TTL"
    assert by_name["preview-pr-8"].reasons == ("not applied for over 1w (last applied 8d0h ago)",)
    assert by_name["preview-pr-9"].expired  # the stamp is enough; the creation time is only a fallback


def test_instance_without_a_pr_number_is_kept() -> None:
    odd = PreviewInstance("preview-pr-manual", "preview-pr", NOW - timedelta(days=30))
    (verdict,) = decide([odd], previews=PREVIEWS, is_closed=lambda n: True, older_than=timedelta(days=1), now=NOW)
    assert not verdict.expired and "cannot tell which PR" in verdict.note


def test_lookup_failure_is_an_error_not_a_destroy() -> None:
    def broken(number: int) -> bool:
        raise GitHubError("GitHub API GET /repos/x/pulls/2 failed: 502 Bad Gateway", status=502)

    (verdict,) = decide([preview(2)], previews=PREVIEWS, is_closed=broken, older_than=None, now=NOW)
    assert not verdict.expired and "502 Bad Gateway" in verdict.error


def test_run_gc_dry_run_destroys_nothing() -> None:
    lines: list[str] = []
    called: list[str] = []
    verdicts = decide([preview(1), preview(2)], previews=PREVIEWS, is_closed={1}.__contains__, older_than=None, now=NOW)
    outcome = run_gc(verdicts, dry_run=True, destroy=lambda i: called.append(i.instance), echo=lines.append)
    assert called == [] and outcome.ok and outcome.destroyed == []
    assert lines == [
        "2 preview instance(s) found, 1 past their end (dry run)",
        "  preview-pr-1: would destroy (PR #1 is closed)",
        "  preview-pr-2: kept: PR #2 is open",
    ]


def test_run_gc_reports_each_failure_and_goes_on() -> None:
    def destroy(item: PreviewInstance) -> None:
        if item.pr == 1:
            raise OperationError("database aphiria_pr_1 still exists after the drop Job")

    lines: list[str] = []
    verdicts = decide([preview(1), preview(3)], previews=PREVIEWS, is_closed=lambda n: True, older_than=None, now=NOW)
    outcome = run_gc(verdicts, dry_run=False, destroy=destroy, echo=lines.append)
    assert outcome.failed == ["preview-pr-1"] and outcome.destroyed == ["preview-pr-3"] and not outcome.ok
    assert "  preview-pr-1: FAILED database aphiria_pr_1 still exists after the drop Job" in lines


# --- GitHub --------------------------------------------------------------------------------


def test_pagination_follows_link_headers(fake_github: FakeGitHub) -> None:
    for n in range(1, 251):
        fake_github.add_pull(REPO, n, state="closed" if n % 2 else "open")
    client = GitHubClient.from_env()
    assert client.closed_pull_numbers(REPO) == {n for n in range(1, 251) if n % 2}
    assert fake_github.count("/pulls") == 2  # 125 closed PRs, 100 per page
    assert all(r.authorization == "Bearer test-token" for r in fake_github.requests)


def test_next_link() -> None:
    header = '<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last"'
    assert next_link(header) == "https://api.github.com/x?page=2"
    assert next_link('<https://api.github.com/x?page=1>; rel="prev"') is None and next_link(None) is None


def test_errors_carry_status_and_message_but_not_the_token(fake_github: FakeGitHub) -> None:
    client = GitHubClient(base_url=fake_github.url, token="wrong-token-value")
    with pytest.raises(GitHubError) as info:
        client.pull_request(REPO, 1)
    assert info.value.status == 401 and "401 Bad credentials" in str(info.value)
    assert "wrong-token-value" not in str(info.value) and "wrong-token-value" not in repr(client)
    with pytest.raises(GitHubError, match=r"GET /repos/aphiria/aphiria.com/pulls/999 failed: 404 Not Found"):
        GitHubClient.from_env().pull_request(REPO, 999)


def test_unreachable_api_is_an_operation_error() -> None:
    client = GitHubClient(base_url="http://127.0.0.1:9", token="t", timeout=2)
    with pytest.raises(GitHubError, match="cannot reach http://127.0.0.1:9") as info:
        client.pull_request(REPO, 1)
    assert info.value.exit_code == 3  # EXIT_OPERATION


def test_resolve_repo() -> None:
    assert resolve_repo(None, {"GITHUB_REPOSITORY": REPO}) == REPO
    assert resolve_repo("a/b", {"GITHUB_REPOSITORY": REPO}) == "a/b"
    with pytest.raises(SpecError, match="pass --repo owner/name"):
        resolve_repo(None, {})
    with pytest.raises(SpecError, match="owner/name"):
        resolve_repo("not a repo", {})


def test_closed_lookup_from_stdin_file_and_github(fake_github: FakeGitHub) -> None:
    assert closed_lookup(io.StringIO("3\n"), None)(3) is True  # type: ignore[misc]
    fake_github.add_pull(REPO, 7, state="closed", merged=True)
    fake_github.add_pull(REPO, 8, state="open")
    lookup = closed_lookup(None, None)
    assert lookup is not None and lookup(7) is True and lookup(8) is False


def test_closed_lookup_without_token_or_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert closed_lookup(None, None) is None


# --- pr-check ------------------------------------------------------------------------------

SHA = "a" * 40


def test_pr_check_passes_for_open_pr_at_head(fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, 107, head_sha=SHA)
    assert check_pull_request(GitHubClient.from_env(), REPO, 107, SHA).head_sha == SHA
    assert check_pull_request(GitHubClient.from_env(), REPO, 107, SHA[:7]).number == 107


def test_pr_check_refuses_closed_pr(fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, 107, state="closed", head_sha=SHA)
    with pytest.raises(SpecError, match=r"^PR #107 is closed; refusing to deploy$") as info:
        check_pull_request(GitHubClient.from_env(), REPO, 107, SHA)
    assert info.value.exit_code == 2


def test_pr_check_refuses_moved_head(fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, 107, head_sha="b" * 40)
    with pytest.raises(SpecError, match=f"PR #107 head moved from {SHA} to {'b' * 40}"):
        check_pull_request(GitHubClient.from_env(), REPO, 107, SHA)


def test_pr_check_rejects_a_malformed_sha(fake_github: FakeGitHub) -> None:
    with pytest.raises(SpecError, match="--head-sha must be 7 to 40 hex digits"):
        check_pull_request(GitHubClient.from_env(), REPO, 107, "main")
    assert fake_github.requests == []  # refused before asking GitHub


# --- the one comment -----------------------------------------------------------------------


def test_upsert_creates_once_then_updates(fake_github: FakeGitHub) -> None:
    marker = "<!-- envspec:preview-pr-107 -->"
    client = GitHubClient.from_env()
    fake_github.add_comment(REPO, 107, "LGTM")
    for n in range(40):  # push the envspec comment onto the second page
        fake_github.add_comment(REPO, 107, f"chatter {n}")
    client.per_page = 30
    assert upsert_comment(client, REPO, 107, f"{marker}\nplan", marker)[0] == "created"
    assert upsert_comment(client, REPO, 107, f"{marker}\ndeployed", marker)[0] == "updated"
    assert upsert_comment(client, REPO, 107, f"{marker}\ndestroyed", marker)[0] == "updated"
    bodies = fake_github.comments_on(REPO, 107)
    assert [b for b in bodies if b.startswith(marker)] == [f"{marker}\ndestroyed"]
    assert fake_github.count("/comments", method="POST") == 1


def test_upsert_refuses_a_body_without_its_marker(fake_github: FakeGitHub) -> None:
    with pytest.raises(ValueError, match="must start with its marker"):
        upsert_comment(GitHubClient.from_env(), REPO, 1, "no marker", "<!-- envspec:preview-pr-1 -->")


# --- against the fake Kubernetes API -------------------------------------------------------

from envspec.github.gc_cluster import destroyer, find_previews  # noqa: E402
from envspec.plan import ClusterBinding, DeployPlan  # noqa: E402
from tests.fakes.kube_server import FAKE_NOW  # noqa: E402

CLUSTER_NOW = datetime.fromisoformat(FAKE_NOW.replace("Z", "+00:00")) + timedelta(hours=1)


def _plan(environment: str, instance: str) -> DeployPlan:
    labels = {
        "app.kubernetes.io/managed-by": "envspec",
        "envspec.dev/environment": environment,
        "envspec.dev/instance": instance,
    }
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": instance, "labels": dict(labels)}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": instance, "labels": dict(labels)},
            "data": {"URL": f"https://{instance}.example"},
        },
    ]
    return DeployPlan(
        environment=environment,
        instance=instance,
        objects=objects,
        cluster=ClusterBinding(context="fake"),
        labels=labels,
        owned_namespaces=[instance],
        applyset_namespace=instance,
    )


def _cluster(fake: FakeKube, tmp_path: Path):  # type: ignore[no-untyped-def]
    from envspec.kube.apply import ApplyOptions, apply_plan
    from envspec.kube.client import connect
    from envspec.kube.wait import WaitSettings

    _, kube = connect(fake.write_kubeconfig(tmp_path / "kubeconfig"), None, binding=ClusterBinding(context="fake"))
    fast = WaitSettings(timeout=5, interval=0.01)
    for environment, instance in [
        ("preview-pr", "preview-pr-1"),  # PR closed
        ("preview-pr", "preview-pr-2"),  # PR open
        ("preview-pr", "preview-pr-3"),  # PR open, but old
        ("production", "production"),
        ("preview-base", "preview-base"),
    ]:
        apply_plan(kube, _plan(environment, instance), ApplyOptions(wait=fast, check_helm=False, environ={}))
    parent = fake.get("v1", "Secret", "applyset-preview-pr-3", "preview-pr-3")
    assert parent is not None
    parent["metadata"]["annotations"]["envspec.dev/last-applied"] = IDLE_SINCE  # nobody applied it for a month
    fake.put(parent)
    return kube


IDLE_SINCE = (CLUSTER_NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gc(kube, *, dry_run: bool, is_closed, older_than=None):  # type: ignore[no-untyped-def]
    lines: list[str] = []
    plans = {n: _plan("preview-pr", f"preview-pr-{n}") for n in (1, 2, 3)}
    verdicts = decide(find_previews(kube, PREVIEW), previews=PREVIEWS, is_closed=is_closed, older_than=older_than, now=CLUSTER_NOW)
    destroy = destroyer(kube, plans.__getitem__, timeout=5, interval=0.01, grace_seconds=0.05, report=lines.append)
    return run_gc(verdicts, dry_run=dry_run, destroy=destroy, echo=lines.append), lines


def test_find_previews_sees_only_preview_pr_instances(fake_kube: FakeKube, tmp_path: Path) -> None:
    with _cluster(fake_kube, tmp_path) as kube:
        found = find_previews(kube, PREVIEW)
    assert [p.instance for p in found] == ["preview-pr-1", "preview-pr-2", "preview-pr-3"]
    assert found[2].last_applied == (CLUSTER_NOW - timedelta(days=30)).replace(microsecond=0)
    assert found[0].created == CLUSTER_NOW - timedelta(hours=1)
    # every apply stamps the parent: the stamp of a fresh apply is within a minute of now
    stamp = found[0].last_applied
    assert stamp is not None and abs(datetime.now(timezone.utc) - stamp) < timedelta(minutes=1)


def test_apply_stamps_the_parent_and_refreshes_a_stale_stamp_only(fake_kube: FakeKube, tmp_path: Path) -> None:
    from envspec.kube.apply import ApplyOptions, apply_plan
    from envspec.kube.wait import WaitSettings

    def parent() -> dict:
        got = fake_kube.get("v1", "Secret", "applyset-preview-pr-2", "preview-pr-2")
        assert got is not None
        return got

    options = ApplyOptions(wait=WaitSettings(timeout=5, interval=0.01), check_helm=False, environ={})
    with _cluster(fake_kube, tmp_path) as kube:
        fresh = parent()["metadata"]["annotations"]["envspec.dev/last-applied"]
        fake_kube.reset_requests()
        apply_plan(kube, _plan("preview-pr", "preview-pr-2"), options)
        assert fake_kube.count("PATCH") == 0  # a no-op re-apply writes nothing, not even the stamp
        stale = parent()
        stale["metadata"]["annotations"]["envspec.dev/last-applied"] = IDLE_SINCE
        fake_kube.put(stale)
        apply_plan(kube, _plan("preview-pr", "preview-pr-2"), options)
        assert fake_kube.count("PATCH", "/secrets/applyset-preview-pr-2") == 1
    again = parent()["metadata"]["annotations"]["envspec.dev/last-applied"]
    assert again >= fresh and again != IDLE_SINCE


def test_ttl_falls_back_to_the_creation_time_without_a_stamp(fake_kube: FakeKube, tmp_path: Path) -> None:
    with _cluster(fake_kube, tmp_path) as kube:
        # A parent written before envspec stamped last-applied: only its creation time tells its age.
        legacy = fake_kube.get("v1", "Secret", "applyset-preview-pr-2", "preview-pr-2")
        del legacy["metadata"]["annotations"]["envspec.dev/last-applied"]
        legacy["metadata"]["creationTimestamp"] = IDLE_SINCE
        fake_kube.put(legacy)
        _, lines = _gc(kube, dry_run=True, is_closed=None, older_than=timedelta(days=7))
    assert any(line.startswith("  preview-pr-2: would destroy (older than 1w (age 30d0h") for line in lines)
    assert any(line.startswith("  preview-pr-3: would destroy (not applied for over 1w") for line in lines)
    assert "  preview-pr-1: kept: within its TTL" in lines


def test_gc_dry_run_changes_nothing(fake_kube: FakeKube, tmp_path: Path) -> None:
    with _cluster(fake_kube, tmp_path) as kube:
        fake_kube.reset_requests()
        outcome, lines = _gc(kube, dry_run=True, is_closed={1}.__contains__, older_than=timedelta(days=7))
    assert outcome.ok and outcome.destroyed == []
    assert "  preview-pr-1: would destroy (PR #1 is closed)" in lines
    assert any(line.startswith("  preview-pr-3: would destroy (not applied for over 1w") for line in lines)
    assert "  preview-pr-2: kept: PR #2 is open" in lines
    assert [r.method for r in fake_kube.requests if r.method != "GET"] == []
    assert fake_kube.get("v1", "Namespace", "preview-pr-1") is not None


def test_gc_destroys_closed_and_expired_and_spares_the_rest(fake_kube: FakeKube, tmp_path: Path) -> None:
    with _cluster(fake_kube, tmp_path) as kube:
        outcome, lines = _gc(kube, dry_run=False, is_closed={1}.__contains__, older_than=timedelta(days=7))
        assert outcome.ok and outcome.destroyed == ["preview-pr-1", "preview-pr-3"]
        assert [p.instance for p in find_previews(kube, PREVIEW)] == ["preview-pr-2"]
    for gone in ("preview-pr-1", "preview-pr-3"):
        assert fake_kube.get("v1", "Namespace", gone) is None
        assert fake_kube.get("v1", "Secret", f"applyset-{gone}", gone) is None
    for kept in ("preview-pr-2", "production", "preview-base"):
        assert fake_kube.get("v1", "ConfigMap", "web-config", kept) is not None
    assert "  preview-pr-1: destroyed" in lines


def test_gc_with_github_as_the_source(fake_kube: FakeKube, fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.add_pull(REPO, 1, state="closed", merged=True)
    fake_github.add_pull(REPO, 2, state="open")
    fake_github.add_pull(REPO, 3, state="closed")
    with _cluster(fake_kube, tmp_path) as kube:
        outcome, _ = _gc(kube, dry_run=False, is_closed=closed_lookup(None, None))
    assert outcome.destroyed == ["preview-pr-1", "preview-pr-3"]
    assert fake_kube.get("v1", "Namespace", "preview-pr-2") is not None


def test_gc_fails_when_a_destroy_fails(fake_kube: FakeKube, tmp_path: Path) -> None:
    with _cluster(fake_kube, tmp_path) as kube:
        fake_kube.add_fault(method="DELETE", path_regex=r"/namespaces/preview-pr-1/configmaps/", status=403, times=10)
        outcome, lines = _gc(kube, dry_run=False, is_closed={1, 2}.__contains__)
    assert outcome.failed == ["preview-pr-1"] and outcome.destroyed == ["preview-pr-2"] and not outcome.ok
    assert any(line.startswith("  preview-pr-1: FAILED") for line in lines)


# --- the commands --------------------------------------------------------------------------

from click.testing import CliRunner  # noqa: E402


def test_pr_check_command_exit_codes(fake_github: FakeGitHub) -> None:
    from envspec.cli import main

    fake_github.add_pull(REPO, 107, head_sha=SHA)
    fake_github.add_pull(REPO, 108, state="closed", head_sha=SHA)
    ok = CliRunner().invoke(main, ["pr-check", "--pr", "107", "--head-sha", SHA])
    assert ok.exit_code == 0 and f"PR #107 is open at {SHA}" in ok.output
    closed = CliRunner().invoke(main, ["pr-check", "--pr", "108", "--head-sha", SHA])
    assert closed.exit_code == 2 and "PR #108 is closed; refusing to deploy" in closed.output
    moved = CliRunner().invoke(main, ["pr-check", "--pr", "107", "--head-sha", "c" * 40])
    assert moved.exit_code == 2 and "head moved from" in moved.output
    fake_github.add_fault(status=503, message="Service Unavailable")
    down = CliRunner().invoke(main, ["pr-check", "--pr", "107", "--head-sha", SHA])
    assert down.exit_code == 3 and "503 Service Unavailable" in down.output and "Traceback" not in down.output


def test_gc_command_needs_a_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from envspec.cli import main

    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["gc", "--dry-run"])
    assert result.exit_code == 2 and "gc has nothing to decide by" in result.output
    result = CliRunner().invoke(main, ["gc", "--older-than", "3 days"])
    assert result.exit_code == 2 and "not a duration like 90m, 36h, 7d or 2w" in result.output
    result = CliRunner().invoke(main, ["gc", "--closed-prs", "-"], input="12\nnope\n")
    assert result.exit_code == 2 and "<stdin>:2: expected a PR number, got 'nope'" in result.output


# --- `envspec gc` with the repository's preview-pr, against the fake cluster ---------------

from tests.test_kube_helpers import preview_pr_args, seed_shared_infrastructure  # noqa: E402

PREVIEW_CONTEXT = "do-nyc3-aphiria-com-preview-cluster"  # what environments/preview-pr.yaml is bound to


def _deploy_previews(fake: FakeKube, kubeconfig: Path, prs: tuple[int, ...]) -> None:
    from envspec.cli import main

    seed_shared_infrastructure(fake)
    env = {"POSTGRES_USER": "aphiria", "POSTGRES_PASSWORD": "pw-for-gc-test", "GHCR_TOKEN": "ghcr-for-gc-test"}
    for pr in prs:
        result = CliRunner().invoke(
            main, ["apply", "preview-pr", *preview_pr_args(pr, bind_to_fake=False), "--kubeconfig", str(kubeconfig),
                   "--timeout", "5"], env=env)
        assert result.exit_code == 0, result.output


def _bound_digitalocean(fake_do: FakeDigitalOcean, fake_kube: FakeKube) -> None:  # noqa: F811
    """preview-pr is bound to the DigitalOcean cluster: the fake account holds it, at the fake API server."""
    fake_do.add_cluster("aphiria-com-preview-cluster")
    fake_do.kubeconfig_server = fake_kube.url


def test_gc_command_with_the_project_dry_run_then_destroy(
    fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path, repo_root: Path  # noqa: F811
) -> None:
    from envspec.cli import main

    _bound_digitalocean(fake_do, fake_kube)
    kubeconfig = fake_kube.write_kubeconfig(tmp_path / "kubeconfig", context=PREVIEW_CONTEXT)
    _deploy_previews(fake_kube, kubeconfig, (1, 2))
    closed = tmp_path / "closed.txt"
    closed.write_text("# closed since the last run\n1\n99\n")
    args = ["gc", "--closed-prs", str(closed), "--kubeconfig", str(kubeconfig), "--timeout", "5"]

    fake_kube.reset_requests()
    dry = CliRunner().invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"target: context {PREVIEW_CONTEXT} at {fake_kube.url}" in dry.stderr  # stdout stays the report
    assert dry.stdout.splitlines() == [
        "2 preview instance(s) found, 1 past their end (dry run)",
        "  preview-pr-1: would destroy (PR #1 is closed)",
        "  preview-pr-2: kept: PR #2 is open",
    ]
    assert [r.method for r in fake_kube.requests if r.method != "GET"] == []

    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "  preview-pr-1: destroyed" in done.stdout
    assert "    dropped database aphiria_pr_1 (verified absent from pg_database)" in done.stdout
    assert fake_kube.get("v1", "Namespace", "preview-pr-1") is None
    assert fake_kube.list("v1", "Secret", label_selector="envspec.dev/instance=preview-pr-1") == []
    drops = [r.path for r in fake_kube.requests if r.method == "PATCH" and "/jobs/envspec-drop-" in r.path]
    assert len(drops) == 1 and "/namespaces/default/jobs/envspec-drop-aphiria-pr-1-" in drops[0]
    assert fake_kube.get("apps/v1", "Deployment", "web", "preview-pr-2") is not None
    assert fake_kube.get("v1", "Secret", "postgres-admin", "default") is not None  # shared, never gc'd

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "1 preview instance(s) found, 0 past their end" in again.stdout


def test_gc_command_refuses_a_cluster_preview_pr_is_not_bound_to(fake_kube: FakeKube, tmp_path: Path,  # noqa: F811
                                                                 repo_root: Path) -> None:
    from envspec.cli import main

    kubeconfig = fake_kube.write_kubeconfig(tmp_path / "kubeconfig", context="kind-elsewhere")
    result = CliRunner().invoke(main, ["gc", "--closed-prs", "-", "--kubeconfig", str(kubeconfig)], input="1\n")
    assert result.exit_code == 2
    assert f"bound to kube context '{PREVIEW_CONTEXT}'" in result.output
    assert fake_kube.requests == []


def test_gc_command_with_a_kubeconfig_from_digitalocean(
    fake_kube: FakeKube, fake_do: FakeDigitalOcean, tmp_path: Path, repo_root: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from envspec.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _bound_digitalocean(fake_do, fake_kube)
    _deploy_previews(fake_kube, fake_kube.write_kubeconfig(tmp_path / "kubeconfig", context=PREVIEW_CONTEXT), (3,))
    result = CliRunner().invoke(main, ["gc", "--closed-prs", "-", "--kubeconfig-from-do", "--dry-run"], input="3\n")
    assert result.exit_code == 0, result.output
    assert f"target: context {PREVIEW_CONTEXT} at {fake_kube.url}" in result.stderr
    assert "  preview-pr-3: would destroy (PR #3 is closed)" in result.stdout
    assert fake_do.token not in result.output
