"""The provider interfaces: the DigitalOcean and GitHub clients are implementations of small protocols."""

from __future__ import annotations

from envspec.cloud.digitalocean import DigitalOceanClient
from envspec.cloud.provider import ClusterProvider, DnsProvider
from envspec.github.api import GitHubClient
from envspec.github.provider import PullRequestHost


def methods(protocol: type) -> list[str]:
    return sorted(name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_"))


def test_the_digitalocean_client_is_a_dns_and_cluster_provider() -> None:
    for protocol in (DnsProvider, ClusterProvider):
        assert methods(protocol)
        missing = [name for name in methods(protocol) if not callable(getattr(DigitalOceanClient, name, None))]
        assert missing == [], protocol.__name__


def test_the_github_client_is_a_pull_request_host() -> None:
    assert methods(PullRequestHost)
    missing = [name for name in methods(PullRequestHost) if not callable(getattr(GitHubClient, name, None))]
    assert missing == []
