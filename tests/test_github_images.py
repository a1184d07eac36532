"""Deleting a closed PR's images from ghcr.io, against the fake GitHub API over real HTTP."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, strategies as st

from envspec.cli import main
from envspec.github import deployments
from envspec.github.api import GitHubClient
from envspec.github.packages import Package, Protected, Version, decide, packages_and_prefix, pr_tag_pattern
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
WEB, API = "aphiria.com-web", "aphiria.com-api"
PRODUCTION_WEB_DIGEST = "sha256:3f1c8d2a9b7e6f5a4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918f7e6d5c"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [*args, "--root", str(ROOT)])


def test_the_pattern_is_exact_never_a_prefix() -> None:
    pattern = pr_tag_pattern("pr-", 1)
    assert pattern.match("pr-1") and pattern.match("pr-1-abc1234") and pattern.match("pr-1-" + "f" * 40)
    for other in ("pr-10", "pr-10-abc1234", "pr-1-abc123", "pr-1-" + "f" * 41, "pr-1-ABC1234", "xpr-1", "pr-1x", "pr-1-main"):
        assert not pattern.match(other), other


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=10**6), st.text(max_size=12))
def test_no_tag_of_another_pr_ever_matches(pr: int, other: int, suffix: str) -> None:
    if other != pr:
        assert not pr_tag_pattern("pr-", pr).match(f"pr-{other}{suffix}") or f"pr-{other}{suffix}".startswith(f"pr-{pr}-")


def test_packages_and_prefix_come_from_the_spec_images() -> None:
    packages, prefix = packages_and_prefix(
        ["ghcr.io/Acme/shop-web:pr-12", "ghcr.io/acme/shop-api:pr-12", "nginx:1.27-alpine", "postgres:16"], 12, "ghcr.io")
    assert packages == [Package("acme", "shop-api"), Package("acme", "shop-web")] and prefix == "pr-"


def test_a_version_with_a_foreign_tag_or_a_protected_digest_is_kept() -> None:
    package = Package("acme", "web")
    protected = Protected(registry="ghcr.io")
    protected.add_image(f"ghcr.io/acme/web@{'sha256:' + 'b' * 64}")
    versions = [Version(1, "sha256:" + "a" * 64, ("pr-4",)), Version(2, "sha256:" + "b" * 64, ("pr-4-abcdef0",)),
                Version(3, "sha256:" + "c" * 64, ("pr-4-1234567", "main")), Version(4, "sha256:" + "d" * 64, ("pr-40",))]
    verdicts = {v.version.id: v for v in decide(package, versions, prefix="pr-", pr=4, protected=protected)}
    assert set(verdicts) == {1, 2, 3}  # pr-40 is not PR 4's business
    assert verdicts[1].delete and not verdicts[2].delete and not verdicts[3].delete
    assert "protected" in verdicts[2].reason and "also tagged main" in verdicts[3].reason


def fill(fake: FakeGitHub) -> dict[str, int]:
    """Over 250 versions of each package (three pages of 100), PR 1's near the end of the list."""
    ids: dict[str, int] = {}
    for package in (WEB, API):
        ids[f"{package}:pr-1"] = fake.add_package_version("aphiria", package, ["pr-1"])
        ids[f"{package}:pr-1-sha"] = fake.add_package_version("aphiria", package, ["pr-1-0123abc"])
        ids[f"{package}:pr-1+master"] = fake.add_package_version("aphiria", package, ["pr-1-89abcde", "master"])
        for n in range(2, 260):
            fake.add_package_version("aphiria", package, [f"pr-{n}", f"pr-{n}-{n:07x}"])
    ids["promoted"] = fake.add_package_version("aphiria", WEB, ["pr-1-fedcba9"], digest="sha256:" + "e" * 64)
    ids["production"] = fake.add_package_version("aphiria", WEB, ["pr-1-7777777"], digest=PRODUCTION_WEB_DIGEST)
    return ids


def remaining_tags(fake: FakeGitHub, package: str) -> set[str]:
    return {tag for tags in fake.tags_of("aphiria", package) for tag in tags}


def test_closing_pr_1_deletes_exactly_its_images_on_every_page(fake_github: FakeGitHub) -> None:
    ids = fill(fake_github)
    # production ran a digest first built for PR 1 (promoted as it is): its deployment recorded it.
    client = GitHubClient.from_env()
    deployments.start(client, "aphiria/aphiria.com", environment="production", sha="c" * 40,
                      images=[f"ghcr.io/aphiria/aphiria.com-web@{'sha256:' + 'e' * 64}"])

    setup = len(fake_github.requests)
    result = run("delete-images", "preview-pr", "--registry", "ghcr.io", "--pr", "1", "--protect-env", "production",
                 "--protect-deployments", "production")
    assert result.exit_code == 0, result.output

    deleted = {int(r.path.rsplit("/", 1)[1]) for r in fake_github.requests if r.method == "DELETE"}
    assert deleted == {ids[f"{p}:pr-1"] for p in (WEB, API)} | {ids[f"{p}:pr-1-sha"] for p in (WEB, API)}
    for package in (WEB, API):
        tags = remaining_tags(fake_github, package)
        assert {"pr-10", "pr-10-000000a", "pr-100", "pr-259"} <= tags  # never a prefix match
        assert {"pr-1-89abcde", "master"} <= tags  # also tagged master: kept
        assert "pr-1" not in tags and "pr-1-0123abc" not in tags
    assert {"pr-1-fedcba9", "pr-1-7777777"} <= remaining_tags(fake_github, WEB)  # production's images
    # Every page was read (3 per package of 261..263 versions) before anything was deleted.
    pages = [r for r in fake_github.requests if r.method == "GET" and r.path.endswith(f"/{WEB}/versions")]
    assert len(pages) == 3
    first_delete = next(i for i, r in enumerate(fake_github.requests) if r.method == "DELETE")
    assert all(r.method == "GET" for r in fake_github.requests[setup:first_delete])


def test_dry_run_deletes_nothing(fake_github: FakeGitHub) -> None:
    fill(fake_github)
    result = run("delete-images", "preview-pr", "--registry", "ghcr.io", "--pr", "1", "--protect-env", "production", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would delete" in result.output
    assert fake_github.count(method="DELETE") == 0


def test_a_user_owned_package_is_found_under_users(fake_github: FakeGitHub) -> None:
    version = fake_github.add_package_version("someone", "site", ["pr-3"], owner_type="User")
    result = run("delete-images", "preview-pr", "--registry", "ghcr.io", "--pr", "3", "--package", "someone/site", "--protect-none")
    assert result.exit_code == 0, result.output
    assert [r.path for r in fake_github.requests if r.method == "DELETE"] == [
        f"/users/someone/packages/container/site/versions/{version}"]


def test_nothing_is_deleted_without_naming_what_to_protect(fake_github: FakeGitHub) -> None:
    fake_github.add_package_version("aphiria", WEB, ["pr-2"])
    result = run("delete-images", "preview-pr", "--registry", "ghcr.io", "--pr", "2")
    assert result.exit_code == 2
    assert "name what must be kept" in result.output
    assert fake_github.requests == []


def test_needs_a_pr_number(fake_github: FakeGitHub) -> None:
    result = run("delete-images", "preview-pr", "--registry", "ghcr.io", "--protect-none")
    assert result.exit_code == 2 and "needs --pr N" in result.output


def test_a_failed_delete_is_reported_and_the_rest_still_go(fake_github: FakeGitHub) -> None:
    first = fake_github.add_package_version("aphiria", WEB, ["pr-6"])
    second = fake_github.add_package_version("aphiria", WEB, ["pr-6-abcdef1"])
    fake_github.add_package_version("aphiria", API, ["pr-6"])
    fake_github.add_fault(path_regex=rf"/versions/{second}$", status=500)
    result = run("delete-images", "preview-pr", "--registry", "ghcr.io", "--pr", "6", "--protect-none")
    assert result.exit_code == 3
    assert re.search(r"could not delete 1 image version", result.output)
    assert remaining_tags(fake_github, WEB) == {"pr-6-abcdef1"} and remaining_tags(fake_github, API) == set()
    assert first not in [v["id"] for v in fake_github.versions[("aphiria", WEB)]]


def test_a_package_never_pushed_is_nothing_to_delete(fake_github: FakeGitHub) -> None:
    fake_github.add_package_version("aphiria", WEB, ["pr-8"])  # the API package does not exist
    result = run("delete-images", "preview-pr", "--registry", "ghcr.io", "--pr", "8", "--protect-none")
    assert result.exit_code == 0, result.output
    assert "ghcr.io/aphiria/aphiria.com-api: no such package" in result.output
    assert remaining_tags(fake_github, WEB) == set()
