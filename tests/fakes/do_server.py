"""A small fake of the DigitalOcean API, served over real HTTP on 127.0.0.1.

It mimics the parts envspec uses, with the real API's shapes: domains and
their records (paginated with `page`/`per_page`, absolute `links.pages.next`
URLs and `meta.total`), Kubernetes clusters (list, create → provisioning →
running after a few reads, get, node pool update) and their kubeconfig. It
checks the Bearer token, enforces the CNAME rule the real DNS does, and can
inject faults (429 with Retry-After, 500, odd bodies). Every request is logged
so tests can assert what was (not) written.

Use the `fake_do` fixture: it starts the server and points
DIGITALOCEAN_END_POINT and DIGITALOCEAN_TOKEN at it.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "dop_v1_fake0123456789abcdef"
UNAUTHORIZED = {"id": "Unauthorized", "message": "Unable to authenticate you"}
NOT_FOUND = {"id": "not_found", "message": "The resource you were accessing could not be found."}


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class Fault:
    method: str | None  # None: any method
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass
class State:
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    reads_until_running: dict[str, int] = field(default_factory=dict)


class FakeDigitalOcean:
    """State, fault queue and request log of the fake; the handler below serves them."""

    def __init__(self, *, max_per_page: int = 200, provision_reads: int = 2, token: str = TOKEN):
        self.token = token
        self.max_per_page = max_per_page
        self.provision_reads = provision_reads  # GETs of a new cluster before it reports "running"
        # API server URL the kubeconfigs name (e.g. a FakeKube's); the API then reports it as every
        # cluster's `endpoint` too, as the real API's kubeconfig names the cluster's endpoint.
        self.kubeconfig_server: str | None = None
        self.state = State()
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1000)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def end_point(self) -> str:
        return f"{self.url}/v2/"

    def start(self) -> FakeDigitalOcean:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    # -- seeding and inspection -------------------------------------------------

    def add_domain(self, name: str, ttl: int = 1800) -> None:
        with self.lock:
            self.state.domains[name] = {"name": name, "ttl": ttl, "zone_file": ""}
            self.state.records.setdefault(name, [])

    def add_record(self, domain: str, type: str, name: str, data: str, ttl: int = 1800) -> dict[str, Any]:
        with self.lock:
            record = self._new_record(type, name, data, ttl)
            self.state.records[domain].append(record)
            return dict(record)

    def records(self, domain: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.state.records[domain]]

    def add_cluster(self, name: str, *, region: str = "nyc3", version: str = "1.34.1-do.0",
                    vpc_uuid: str | None = None, pools: list[dict[str, Any]] | None = None,
                    state: str = "running") -> dict[str, Any]:
        body = {"name": name, "region": region, "version": version, "vpc_uuid": vpc_uuid,
                "node_pools": pools or [{"name": "default", "size": "s-2vcpu-4gb", "count": 2}]}
        with self.lock:
            cluster = self._new_cluster(body)
            cluster["status"] = {"state": state, "message": state}
            return json.loads(json.dumps(cluster))

    def cluster(self, name: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(next(c for c in self.state.clusters.values() if c["name"] == name)))

    def inject(self, status: int, *, method: str | None = None, path: str = ".*", body: Any = None,
               headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next `times` matching requests with `status` (before the auth check)."""
        if body is None:
            body = {429: {"id": "too_many_requests", "message": "API Rate limit exceeded."},
                    500: {"id": "server_error", "message": "Unexpected server-side error"}}.get(
                        status, {"id": "error", "message": f"injected {status}"})
        with self.lock:
            self.faults.append(Fault(method, re.compile(path), status, body, headers or {}, times))

    def writes(self) -> list[Logged]:
        return [entry for entry in self.log if entry.method != "GET"]

    def requests_to(self, method: str, path_pattern: str) -> list[Logged]:
        pattern = re.compile(path_pattern)
        return [e for e in self.log if e.method == method and pattern.fullmatch(e.path)]

    # -- behaviour (called with the lock held) -------------------------------------

    def _new_record(self, type: str, name: str, data: str, ttl: int | None) -> dict[str, Any]:
        return {"id": next(self._ids), "type": type, "name": name, "data": data, "priority": None, "port": None,
                "ttl": ttl or 1800, "weight": None, "flags": None, "tag": None}

    def _new_cluster(self, body: dict[str, Any]) -> dict[str, Any]:
        cluster_id = str(uuid.uuid4())
        pools = []
        for pool in body.get("node_pools") or []:
            pools.append({
                "id": str(uuid.uuid4()), "name": pool["name"], "size": pool["size"], "count": pool["count"],
                "auto_scale": bool(pool.get("auto_scale", False)), "min_nodes": pool.get("min_nodes", 0),
                "max_nodes": pool.get("max_nodes", 0), "tags": pool.get("tags", []), "nodes": [],
            })
        cluster = {
            "id": cluster_id, "name": body["name"], "region": body["region"], "version": body["version"],
            "vpc_uuid": body.get("vpc_uuid") or "c33931f2-a26a-4e61-b85c-4e95a2ec431b",
            "endpoint": f"https://{cluster_id}.k8s.ondigitalocean.com", "tags": body.get("tags", []),
            "node_pools": pools, "status": {"state": "provisioning", "message": "Provisioning"},
        }
        self.state.clusters[cluster_id] = cluster
        self.state.reads_until_running[cluster_id] = self.provision_reads
        return cluster

    def _shown(self, cluster: dict[str, Any]) -> dict[str, Any]:
        return {**cluster, "endpoint": self.kubeconfig_server} if self.kubeconfig_server else cluster

    def _kubeconfig(self, cluster: dict[str, Any]) -> str:
        context = f"do-{cluster['region']}-{cluster['name']}"
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- cluster:\n    server: {self.kubeconfig_server or cluster['endpoint']}\n"
            f"  name: {context}\n"
            f"contexts:\n- context:\n    cluster: {context}\n    user: {context}-admin\n  name: {context}\n"
            f"current-context: {context}\n"
            f"users:\n- name: {context}-admin\n  user:\n    token: doks-cluster-credential-{cluster['id'][:8]}\n"
        )


def _page(fake: FakeDigitalOcean, path: str, query: dict[str, list[str]], key: str,
          items: list[dict[str, Any]]) -> dict[str, Any]:
    """One page in DigitalOcean's shape; per_page defaults to 20 and is capped like the real API's 200."""
    page = max(1, int(query.get("page", ["1"])[0]))
    per_page = min(max(1, int(query.get("per_page", ["20"])[0])), fake.max_per_page)
    total = len(items)
    last = max(1, -(-total // per_page))
    body: dict[str, Any] = {key: items[(page - 1) * per_page: page * per_page], "links": {}, "meta": {"total": total}}
    pages: dict[str, str] = {}
    base = f"{fake.url}{path}"
    if page < last:
        pages["next"] = f"{base}?page={page + 1}&per_page={per_page}"
        pages["last"] = f"{base}?page={last}&per_page={per_page}"
    if page > 1:
        pages["first"] = f"{base}?page=1&per_page={per_page}"
        pages["prev"] = f"{base}?page={page - 1}&per_page={per_page}"
    if pages:
        body["links"]["pages"] = pages
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes; avoid 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    @property
    def fake(self) -> FakeDigitalOcean:
        return self.server.fake  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _send(self, status: int, body: Any = None, *, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        payload = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        fake = self.fake
        with fake.lock:
            fake.log.append(Logged(method, parts.path, query, body))
            for fault in fake.faults:
                if fault.times > 0 and (fault.method in (None, method)) and fault.path.fullmatch(parts.path):
                    fault.times -= 1
                    self._send(fault.status, fault.body, headers=fault.headers)
                    return
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                self._send(401, UNAUTHORIZED)
                return
            try:
                self._route(method, parts.path, query, body)
            except _Reply as reply:
                self._send(reply.status, reply.body)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
        fake, state = self.fake, self.fake.state
        path = path.rstrip("/")
        if m := re.fullmatch(r"/v2/domains/([^/]+)", path):
            domain = state.domains.get(m[1])
            if method != "GET" or domain is None:
                raise _Reply(404, NOT_FOUND)
            self._send(200, {"domain": domain})
        elif m := re.fullmatch(r"/v2/domains/([^/]+)/records", path):
            if m[1] not in state.domains:
                raise _Reply(404, NOT_FOUND)
            records = state.records[m[1]]
            if method == "GET":
                self._send(200, _page(fake, path, query, "domain_records", records))
            elif method == "POST":
                _check_record(body, records)
                record = fake._new_record(body["type"], body["name"], body["data"], body.get("ttl"))
                records.append(record)
                self._send(201, {"domain_record": record})
            else:
                raise _Reply(405, {"id": "method_not_allowed", "message": method})
        elif m := re.fullmatch(r"/v2/domains/([^/]+)/records/(\d+)", path):
            records = state.records.get(m[1], [])
            record = next((r for r in records if r["id"] == int(m[2])), None)
            if record is None:
                raise _Reply(404, NOT_FOUND)
            if method == "GET":
                self._send(200, {"domain_record": record})
            elif method == "PUT":
                changes = {k: v for k, v in (body or {}).items()
                           if k in ("type", "name", "data", "ttl", "priority", "port", "weight", "flags", "tag")
                           and v is not None}
                _check_record({**record, **changes}, [r for r in records if r is not record])
                record.update(changes)
                self._send(200, {"domain_record": record})
            elif method == "DELETE":
                records.remove(record)
                self._send(204)
        elif path == "/v2/kubernetes/clusters":
            if method == "GET":
                self._send(200, _page(fake, path, query, "kubernetes_clusters", [fake._shown(c) for c in state.clusters.values()]))
            elif method == "POST":
                _check_cluster(body, state)
                self._send(201, {"kubernetes_cluster": fake._shown(fake._new_cluster(body))})
            else:
                raise _Reply(405, {"id": "method_not_allowed", "message": method})
        elif m := re.fullmatch(r"/v2/kubernetes/clusters/([^/]+)", path):
            cluster = state.clusters.get(m[1])
            if cluster is None or method != "GET":
                raise _Reply(404 if cluster is None else 405, NOT_FOUND)
            left = state.reads_until_running.get(m[1], 0)
            if left > 0:
                state.reads_until_running[m[1]] = left - 1
                if left == 1:
                    cluster["status"] = {"state": "running", "message": "Cluster is running"}
            self._send(200, {"kubernetes_cluster": fake._shown(cluster)})
        elif m := re.fullmatch(r"/v2/kubernetes/clusters/([^/]+)/node_pools/([^/]+)", path):
            cluster = state.clusters.get(m[1])
            pool = next((p for p in (cluster or {}).get("node_pools", []) if p["id"] == m[2]), None)
            if pool is None or method != "PUT":
                raise _Reply(404, NOT_FOUND)
            body = body or {}
            if "name" not in body or "count" not in body:
                raise _Reply(422, {"id": "unprocessable_entity", "message": "name and count are required"})
            if "size" in body and body["size"] != pool["size"]:
                raise _Reply(422, {"id": "unprocessable_entity", "message": "size cannot be updated"})
            for key in ("name", "count", "auto_scale", "min_nodes", "max_nodes", "tags"):
                if key in body:
                    pool[key] = body[key]
            self._send(202, {"node_pool": pool})
        elif m := re.fullmatch(r"/v2/kubernetes/clusters/([^/]+)/kubeconfig", path):
            cluster = state.clusters.get(m[1])
            if cluster is None:
                raise _Reply(404, NOT_FOUND)
            self._send(200, fake._kubeconfig(cluster), content_type="application/yaml")
        else:
            raise _Reply(404, NOT_FOUND)


class _Reply(Exception):
    def __init__(self, status: int, body: Any):
        self.status, self.body = status, body


def _unprocessable(message: str) -> _Reply:
    return _Reply(422, {"id": "unprocessable_entity", "message": message})


def _check_record(body: Any, others: list[dict[str, Any]]) -> None:
    """The checks DigitalOcean DNS makes that envspec could trip over."""
    if not isinstance(body, dict) or not all(body.get(k) for k in ("type", "name", "data")):
        raise _unprocessable("type, name and data are required")
    kind, name, data = body["type"], body["name"], body["data"]
    if kind in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(data)
        except ValueError:
            raise _unprocessable(f"Data needs to be an IP address for {kind} records") from None
        if address.version != (4 if kind == "A" else 6):
            raise _unprocessable(f"Data is not a valid IPv{4 if kind == 'A' else 6} address")
    ttl = body.get("ttl")
    if ttl is not None and not 30 <= int(ttl) <= 86400:
        raise _unprocessable("TTL must be between 30 and 86400")
    same_name = [r for r in others if r["name"] == name]
    if kind == "CNAME" and same_name:
        raise _unprocessable("CNAME records cannot share a name with other records")
    if any(r["type"] == "CNAME" for r in same_name):
        raise _unprocessable("Records cannot share a name with a CNAME record")


def _check_cluster(body: Any, state: State) -> None:
    if not isinstance(body, dict) or not all(body.get(k) for k in ("name", "region", "version", "node_pools")):
        raise _unprocessable("name, region, version and node_pools are required")
    if any(c["name"] == body["name"] for c in state.clusters.values()):
        raise _unprocessable("a cluster with this name already exists")
    for pool in body["node_pools"]:
        if not all(pool.get(k) for k in ("name", "size", "count")):
            raise _unprocessable("node pools need name, size and count")


@pytest.fixture
def fake_do(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDigitalOcean]:
    fake = FakeDigitalOcean().start()
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", fake.end_point)
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", fake.token)
    monkeypatch.delenv("DIGITALOCEAN_ACCESS_TOKEN", raising=False)
    try:
        yield fake
    finally:
        fake.stop()
