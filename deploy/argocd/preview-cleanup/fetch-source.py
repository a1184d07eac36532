"""Fetch the project's spec files at one commit into $DEST, for the PostDelete hook's `envspec destroy`.

The envspec image has no git; GitHub serves any commit of a public repository as
a tarball. Only what envspec reads is kept (environments/, templates/ and
components/ if present), extracted with the "data" filter so no path leaves $DEST.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tarfile
import urllib.request

KEEP = ("environments/", "templates/", "components/")


def main() -> int:
    revision, repository, dest = os.environ["REVISION"], os.environ["REPOSITORY"], os.environ["DEST"]
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        print(f"fetch-source: REVISION must be a full commit SHA (got {revision!r})", file=sys.stderr)
        return 2
    url = f"https://github.com/{repository}/archive/{revision}.tar.gz"
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (fixed host, checked SHA)
        data = response.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = []
        for member in archive.getmembers():
            _, _, rel = member.name.partition("/")  # drop GitHub's <repo>-<sha>/ prefix
            if rel.startswith(KEEP):
                member.name = rel
                members.append(member)
        if not any(m.name.startswith("environments/") for m in members):
            print(f"fetch-source: no environments/ in {repository}@{revision}", file=sys.stderr)
            return 1
        archive.extractall(dest, members=members, filter="data")
    print(f"fetch-source: {len(members)} entries of {repository}@{revision} in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
