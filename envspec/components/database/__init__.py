"""A database on a shared PostgreSQL: an idempotent create Job when applying, a drop on destroy."""

from __future__ import annotations

from typing import Any

from envspec.components.base import Builder, Builtin
from envspec.components.pods import resources_view
from envspec.spec.models import Environment

# Idempotent SQL, with the names passed as psql variables and quoted by format(%I/%L): nothing from the
# spec is spliced into SQL text (the model also restricts database names to ^[a-z0-9_]+$).
CREATE_DATABASE = """set -e
psql -v ON_ERROR_STOP=1 -v db="$DB_NAME" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
SQL
"""

CREATE_WITH_ROLE = """set -e
psql -v ON_ERROR_STOP=1 -v db="$DB_NAME" -v pw="$APP_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'db') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'db')\\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'db', :'pw')\\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db')\\gexec
SQL
"""


def database_job_view(spec: Environment) -> dict[str, Any]:
    """The idempotent create Job; the database name is validated ^[a-z0-9_]+$ by the model."""
    db = spec.database
    assert db is not None
    script = CREATE_WITH_ROLE if db.appSecret else CREATE_DATABASE
    return {
        "name": db.job,
        "namespace": spec.namespace.name,
        "image": db.image,
        "imagePullPolicy": None,
        "command": ["sh", "-c", script],
        "args": None,
        "env": [
            {"name": "PGHOST", "value": db.host},
            {"name": "PGPORT", "value": str(db.port)},
            {"name": "PGDATABASE", "value": "postgres"},
            {"name": "PGUSER", "valueFrom": {"secretKeyRef": {"name": db.adminSecret, "key": "username"}}},
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": db.adminSecret, "key": "password"}}},
            {"name": "DB_NAME", "value": db.name},
        ]
        + ([{"name": "APP_PASSWORD", "valueFrom": {"secretKeyRef": {"name": db.appSecret, "key": "password"}}}] if db.appSecret else []),
        "envFrom": [],
        "resources": resources_view(db.resources),
        "backoffLimit": 3,
        "ttlSecondsAfterFinished": 3600,
        "imagePullSecrets": [],
        "after": [],
        "ports": [],
        "volumeMounts": [],
        "readinessProbe": None,
        "livenessProbe": None,
        "startupProbe": None,
        "securityContext": None,
        "lifecycle": None,
        "podExtras": {},
    }


def units(b: Builder) -> None:
    if b.spec.database is not None:
        b.add("job", "job.yaml.j2", database_job_view(b.spec), ("database",), b.spec.database.job)


COMPONENT = Builtin("database", ("database",), ("Job",), units)
