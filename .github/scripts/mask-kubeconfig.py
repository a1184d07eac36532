"""Print `::add-mask::` for every credential in a kubeconfig, so no later log line can show one.

GitHub masks the secrets it hands a job, but not values a step derives from
them: a kubeconfig fetched from DigitalOcean, or the token inside a
ServiceAccount kubeconfig stored as a secret, is a new string as far as the
runner knows. Run this right after the file is written.

Usage: python .github/scripts/mask-kubeconfig.py KUBECONFIG
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

from ruamel.yaml import YAML

SECRET_KEYS = {"token", "password", "client-key-data", "client-certificate-data", "id-token", "refresh-token"}


def credentials(node: Any) -> Iterator[str]:
    """Every string under a key that holds a credential, at any depth (users[].user, auth-provider config, ...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SECRET_KEYS and isinstance(value, str) and value:
                yield value
            else:
                yield from credentials(value)
    elif isinstance(node, list):
        for item in node:
            yield from credentials(item)


def main(path: str) -> int:
    data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    for value in sorted(set(credentials(data))):
        for line in value.splitlines() or [value]:
            if line.strip():
                print(f"::add-mask::{line.strip()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
