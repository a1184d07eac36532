"""Deleting a closed pull request's container images from GitHub's container registry.

The seed project matched tags by prefix, so cleaning up PR 1 would have taken
PR 10's images too. Here a version is deleted only when

* one of its tags is exactly the PR's tag: `^<prefix><N>(-[0-9a-f]{7,40})?$`
  (the bare PR tag, or the PR tag and a commit SHA);
* every one of its tags is one of the PR's (deleting a version deletes all its
  tags: a digest also tagged `main` or `pr-10` is kept);
* its digest and tags are not referenced by anything protected: the images
  of the environments named with `--protect-env` (compiled from the spec)
  and those recorded by the GitHub deployments of `--protect-deployments`
  (what production actually ran, including a preview digest promoted as it is).

All pages of the package-versions API are read before anything is decided, so
a protected or foreign tag on page two cannot be missed.

Which packages, which owner and which tag prefix: the PR environment's own
image references say (`<registry>/<owner>/<package>:<prefix><N>`, the registry host
named by `--registry`), or flags.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable

from envspec.github.api import GitHubClient, GitHubError

_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class Package:
    owner: str
    name: str
    registry: str = field(default="", compare=False)  # the host, for messages only

    def __str__(self) -> str:
        return f"{self.registry}/{self.owner}/{self.name}" if self.registry else f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class Version:
    id: int
    digest: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    package: Package
    version: Version
    delete: bool
    reason: str


@dataclass
class Protected:
    """Digests and tags, per package, that must never be deleted."""

    registry: str = ""  # GitHub's container registry host (`--registry`)
    digests: set[str] = field(default_factory=set)
    tags: set[tuple[Package, str]] = field(default_factory=set)

    def add_image(self, ref: str) -> None:
        match = _DIGEST.search(ref)
        if match:
            self.digests.add(match.group(1))
            ref = ref[: match.start()]
        package, tag = parse_image(ref, self.registry)
        if package is not None and tag:
            self.tags.add((package, tag))

    def reason(self, package: Package, version: Version) -> str | None:
        if version.digest in self.digests:
            return f"digest {version.digest} is referenced by a protected environment"
        for tag in version.tags:
            if (package, tag) in self.tags:
                return f"tag {tag} is referenced by a protected environment"
        return None


def pr_tag_pattern(prefix: str, pr: int) -> re.Pattern[str]:
    """Exactly this PR's tags: `<prefix><N>` or `<prefix><N>-<7..40 hex>`; `pr-1` never matches `pr-10`."""
    return re.compile(rf"^{re.escape(prefix)}{int(pr)}(-[0-9a-f]{{7,40}})?$")


def parse_image(ref: str, registry: str) -> tuple[Package | None, str]:
    """(package, tag) of an image reference on `registry`; (None, '') for any other registry."""
    ref = _DIGEST.sub("", ref)
    if not registry or not ref.startswith(registry + "/"):
        return None, ""
    path = ref[len(registry) + 1 :]
    tag = ""
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    owner, _, name = path.partition("/")
    if not owner or not name:
        return None, ""
    return Package(owner.lower(), name.lower(), registry), tag


def packages_and_prefix(images: Iterable[str], pr: int, registry: str) -> tuple[list[Package], str | None]:
    """The packages on `registry` among `images`, and the tag prefix their PR tags share (None when they say none).

    `<registry>/acme/shop-web:pr-107` with PR 107 gives package acme/shop-web and prefix `pr-`.
    """
    packages: set[Package] = set()
    prefixes: set[str] = set()
    for ref in images:
        package, tag = parse_image(ref, registry)
        if package is None:
            continue
        packages.add(package)
        if tag.endswith(str(pr)) and len(tag) > len(str(pr)):
            prefixes.add(tag[: -len(str(pr))])
    prefix = next(iter(prefixes)) if len(prefixes) == 1 else None
    return sorted(packages, key=str), prefix


def owner_scope(client: GitHubClient, owner: str) -> str:
    """`orgs` or `users`: the package API lives under the owner's kind of account."""
    data = client.get_json(f"/users/{urllib.parse.quote(owner, safe='')}")
    kind = data.get("type") if isinstance(data, dict) else None
    return "orgs" if kind == "Organization" else "users"


def list_versions(client: GitHubClient, package: Package, scope: str) -> list[Version]:
    """Every version of the package, all pages (the list is decided on whole)."""
    out: list[Version] = []
    for item in client.paginate(_versions_path(package, scope)):
        out.append(_version(item))
    return out


def decide(package: Package, versions: Iterable[Version], *, prefix: str, pr: int, protected: Protected) -> list[Verdict]:
    """One verdict per version that carries one of the PR's tags; other versions are not this PR's business."""
    pattern = pr_tag_pattern(prefix, pr)
    verdicts: list[Verdict] = []
    for version in versions:
        ours = [t for t in version.tags if pattern.match(t)]
        if not ours:
            continue
        others = [t for t in version.tags if not pattern.match(t)]
        why = protected.reason(package, version)
        if why:
            verdicts.append(Verdict(package, version, False, f"kept: {why}"))
        elif others:
            verdicts.append(Verdict(package, version, False, f"kept: also tagged {', '.join(sorted(others))}"))
        else:
            verdicts.append(Verdict(package, version, True, f"tags {', '.join(sorted(ours))}"))
    return verdicts


def delete_version(client: GitHubClient, package: Package, scope: str, version: Version) -> None:
    client.delete(f"{_versions_path(package, scope)}/{int(version.id)}")


def _versions_path(package: Package, scope: str) -> str:
    return (f"/{scope}/{urllib.parse.quote(package.owner, safe='')}/packages/container/"
            f"{urllib.parse.quote(package.name, safe='')}/versions")


def _version(item: Any) -> Version:
    try:
        tags = ((item.get("metadata") or {}).get("container") or {}).get("tags") or []
        return Version(int(item["id"]), str(item.get("name") or ""), tuple(str(t) for t in tags))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise GitHubError("GitHub API returned a package version without an id") from None
