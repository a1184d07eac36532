"""Manifests the spec names by URL (`manifests:`), fetched at apply and diff time.

Some infrastructure ships only as a release asset, e.g. the Gateway API CRDs
that cert-manager's Gateway support and the gateway controller need before
they start. Vendoring a 10k-line file into every repository is worse than
fetching it, so envspec fetches it (https only), checks the declared sha256
when there is one, and applies the objects in stage 1, before Helm charts.

`ENVSPEC_CACHE_DIR` opts into a local cache keyed by URL (for CI caches and
offline work); content pinned by sha256 is re-checked on every read.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from envspec.errors import OperationError, SpecError
from envspec.plan import RemoteManifest

CACHE_ENV = "ENVSPEC_CACHE_DIR"
MAX_BYTES = 20 * 1024 * 1024  # the Gateway API experimental install is ~1 MB; anything near this is wrong

Fetch = Callable[[str, float], bytes]


def download(url: str, timeout: float) -> bytes:
    """GET `url` with urllib (redirects followed, as GitHub release assets need)."""
    request = urllib.request.Request(url, headers={"User-Agent": "envspec"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked by caller
        final = response.geturl()
        if urllib.parse.urlsplit(final).scheme != "https":
            raise OperationError(f"manifest {url} redirected to a non-https URL ({final}); refusing")
        data: bytes = response.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise OperationError(f"manifest {url} is larger than {MAX_BYTES} bytes; refusing")
    return data


def _cache_path(cache_dir: Path, url: str) -> Path:
    return cache_dir / "manifests" / (hashlib.sha256(url.encode()).hexdigest() + ".yaml")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_manifest(
    manifest: RemoteManifest,
    *,
    fetch: Fetch = download,
    cache_dir: Path | None = None,
    timeout: float = 60.0,
) -> bytes:
    """The manifest's bytes, verified against its sha256 when one is declared."""
    url = manifest.url
    if urllib.parse.urlsplit(url).scheme != "https":
        raise SpecError(f"manifests: {url} is not an https URL; envspec fetches manifests over https only")
    want = manifest.sha256.lower() if manifest.sha256 else None
    cached = _cache_path(cache_dir, url) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        data = cached.read_bytes()
        if want is None or _digest(data) == want:
            return data
    try:
        data = fetch(url, timeout)
    except OperationError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OperationError(f"cannot fetch manifest {url}: {reason}") from None
    got = _digest(data)
    if want is not None and got != want:
        raise SpecError(
            f"manifest {url} has sha256 {got}, but the spec pins {want}; "
            "refusing to apply it (update manifests[].sha256 if the new content is intended)"
        )
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(cached)
    return data


def parse_manifest(url: str, data: bytes) -> list[dict[str, Any]]:
    """The objects of a YAML stream (List kinds flattened, empty documents skipped)."""
    from ruamel.yaml.error import YAMLError

    from envspec.render.output import load_all

    try:
        docs = load_all(data.decode("utf-8"))
    except (YAMLError, UnicodeDecodeError) as exc:
        raise OperationError(f"manifest {url} is not valid YAML: {exc}") from None
    objects: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        if str(doc["kind"]).endswith("List") and isinstance(doc.get("items"), list):
            objects.extend(i for i in doc["items"] if isinstance(i, dict))
        else:
            objects.append(doc)
    for obj in objects:
        if not obj.get("apiVersion") or not (obj.get("metadata") or {}).get("name"):
            raise OperationError(f"manifest {url}: an object of kind {obj.get('kind')} has no apiVersion or name")
    return objects


def _plain(value: Any) -> Any:
    """ruamel's containers as plain dicts and lists (the client and the diff expect JSON types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def remote_objects(
    manifests: Sequence[RemoteManifest],
    labels: Mapping[str, str],
    *,
    fetch: Fetch = download,
    cache_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Every object of every manifest, in order, carrying the plan's labels (they are this instance's members)."""
    out: list[dict[str, Any]] = []
    for manifest in manifests:
        for obj in parse_manifest(manifest.url, fetch_manifest(manifest, fetch=fetch, cache_dir=cache_dir)):
            obj = _plain(obj)
            obj.pop("status", None)  # controller-gen output may carry an empty status; the server owns it
            meta = obj.setdefault("metadata", {})
            if meta.get("creationTimestamp") is None:
                meta.pop("creationTimestamp", None)
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
            out.append(obj)
    return out


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    value = (environ if environ is not None else os.environ).get(CACHE_ENV)
    return Path(value) if value else None
