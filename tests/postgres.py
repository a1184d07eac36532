"""A real, throwaway PostgreSQL server for the tests of the database Jobs' SQL.

`.ci/run` starts one (Debian's `postgresql` package) on a loopback port and exports its connection
URI in `ENVSPEC_TEST_POSTGRES` (postgresql://USER:PASSWORD@127.0.0.1:PORT/postgres). Without it,
`local_server()` starts one the same way: `initdb` with a random admin password and
scram-sha-256 authentication in a temporary directory, then `pg_ctl start` on a free loopback
port, as the `postgres` user when run as root (PostgreSQL refuses to run as root). It is stopped
when the test session ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

ENV_VAR = "ENVSPEC_TEST_POSTGRES"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    bindir: Path  # where psql is

    def env(self, **extra: str) -> dict[str, str]:
        """A process environment whose libpq variables reach this server as its admin."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        path = f"{self.bindir}{os.pathsep}{base.get('PATH', '')}"
        return {**base, "PATH": path, "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                "PGPASSWORD": self.password, "PGDATABASE": "postgres", **extra}


def bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL is not installed (apt-get install -y postgresql); the database Jobs' SQL tests need a real server"
    )


def from_uri(uri: str) -> Server:
    parts = urlsplit(uri)
    return Server(parts.hostname or "127.0.0.1", parts.port or 5432, unquote(parts.username or ""),
                  unquote(parts.password or ""), bindir())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def local_server() -> Iterator[Server]:
    bins = bindir()
    root = Path(tempfile.mkdtemp(prefix="envspec-pg-"))
    data, pwfile = root / "data", root / "pwfile"
    user, password, port = "envspec_admin", secrets.token_urlsafe(16), _free_port()
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    run = lambda cmd: subprocess.run(_as_postgres(cmd), check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        run([str(bins / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}", "-A", "scram-sha-256",
             "--no-sync", "-E", "UTF8", "--locale=C"])
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run([str(bins / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "-t", "60", "start"])
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr}{log}") from None
    try:
        yield Server("127.0.0.1", port, user, password, bins)
    finally:
        subprocess.run(_as_postgres([str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       check=False, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def server() -> Iterator[Server]:
    """The server `.ci/run` started, else a fresh local one."""
    uri = os.environ.get(ENV_VAR)
    if uri:
        yield from_uri(uri)
    else:
        with local_server() as started:
            yield started
