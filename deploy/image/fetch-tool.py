"""Download one release binary for the image, verify its SHA-256, install it executable.

Used by the Dockerfile's kube-tools stage (python:3.12-slim has no curl). The
checksum is of the binary itself, so a tarball is unpacked first (--member).

    python fetch-tool.py URL SHA256 DEST [--member PATH/IN/TARBALL]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tarfile
import urllib.request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("sha256")
    parser.add_argument("dest")
    parser.add_argument("--member", help="the file to take out of a .tar.gz download")
    args = parser.parse_args(argv)

    with urllib.request.urlopen(args.url, timeout=120) as response:  # noqa: S310 (fixed release URLs)
        data = response.read()
    if args.member:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            member = archive.extractfile(args.member)
            if member is None:
                print(f"fetch-tool: {args.member} is not a file in {args.url}", file=sys.stderr)
                return 1
            data = member.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != args.sha256.lower():
        print(f"fetch-tool: {args.url}: sha256 {digest}, expected {args.sha256}", file=sys.stderr)
        return 1
    with open(args.dest, "wb") as out:
        out.write(data)
    os.chmod(args.dest, 0o755)
    return 0


if __name__ == "__main__":
    sys.exit(main())
