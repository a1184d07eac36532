"""Fetch a fresh kubeconfig for a DigitalOcean cluster and write it where only its owner can read it.

DigitalOcean rotates cluster credentials every 7 days, so envspec fetches them
when it needs them instead of relying on a hand-kept file -- and asks for ones
that expire after an hour (`DEFAULT_EXPIRY_SECONDS`), also for
`envspec kubeconfig --out`: a file that leaks from a CI runner or a laptop is
then worth an hour, not DigitalOcean's default week. The file holds a
bearer token: it is created with mode 0600 (never widened by umask, never
briefly world-readable) and moved into place atomically, so a reader sees the
old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from envspec.errors import OperationError, SpecError

if TYPE_CHECKING:
    from envspec.cloud.digitalocean import DigitalOceanClient


DEFAULT_EXPIRY_SECONDS = 3600


def default_kubeconfig_path(cluster_name: str) -> Path:
    return Path.home() / ".kube" / "envspec" / f"{cluster_name}.yaml"


def context_name(kubeconfig_text: str, cluster_name: str) -> str:
    """The kubeconfig's current-context; DigitalOcean names it `do-<region>-<cluster name>`."""
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe").load(kubeconfig_text)
    except Exception:  # ruamel raises many types; all mean "not YAML"
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise OperationError(f"DigitalOcean returned a kubeconfig for {cluster_name} that is not a kubeconfig")
    names = [c.get("name") for c in data["contexts"] if isinstance(c, dict)]
    current = data.get("current-context")
    if isinstance(current, str) and current in names:
        return current
    if len(names) == 1 and isinstance(names[0], str):
        return names[0]
    raise OperationError(f"the kubeconfig for {cluster_name} names no usable context")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600, atomically."""
    fd, tmp = -1, ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        candidate = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        tmp = candidate
        os.fchmod(fd, 0o600)  # the mode above is filtered by umask; this is not
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = ""
    except OSError as exc:
        raise OperationError(f"cannot write kubeconfig {path}: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def fetch_kubeconfig(
    cluster_name: str,
    out: Path | None = None,
    *,
    client: DigitalOceanClient | None = None,
    expiry_seconds: int = DEFAULT_EXPIRY_SECONDS,
) -> tuple[Path, str]:
    """Fetch the cluster's kubeconfig from DigitalOcean and write it; returns (path, context name).

    `out` defaults to ~/.kube/envspec/<cluster name>.yaml. `client` defaults
    to one built from DIGITALOCEAN_TOKEN. The credentials expire after
    `expiry_seconds` (one hour unless the caller says otherwise).
    """
    if expiry_seconds < 1:
        raise SpecError(f"kubeconfig expiry must be at least 1 second, got {expiry_seconds}")
    if client is None:
        from envspec.cloud.digitalocean import DigitalOceanClient

        client = DigitalOceanClient.from_env()
    cluster = client.find_cluster(cluster_name)
    if cluster is None:
        raise SpecError(
            f"DigitalOcean has no Kubernetes cluster named {cluster_name}; create it with `envspec cluster ENV`"
        )
    text = client.get_kubeconfig(str(cluster["id"]), expiry_seconds=expiry_seconds)
    context = context_name(text, cluster_name)
    path = (out or default_kubeconfig_path(cluster_name)).expanduser()
    write_private(path, text)
    return path, context
