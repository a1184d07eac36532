"""The per-instance database on a shared PostgreSQL: its Jobs, their SQL, and what the plan needs.

One place for the database's whole lifecycle, so it can become a component:

* `create_job_view(spec)`: the idempotent create Job (database, and with `appSecret` its own login
  role whose password follows the Secret on every run);
* `plan_parts(spec, labels)`: what apply and destroy need -- how to drop it, and the Secret the
  create Job reads the role's password from when it runs in the shared database's namespace: built
  by apply from `appSecret`, holding only the password's SCRAM-SHA-256 verifier (ALTER ROLE ...
  PASSWORD takes it in place of the password), so neither that namespace nor PostgreSQL's
  statement log ever holds the password itself;
* `drop_script` / `drop_database_job`: the verified drop destroy runs.

Where the Jobs run: `database.namespace` (the shared PostgreSQL's namespace, where its admin
Secret already lives). The admin credentials then never enter the instance's namespace, and the
Jobs are members of the instance's ApplySet there, so prune and destroy still remove them.

Every script runs its SQL through `psql` and passes all it prints through `SCRUB`, which masks the
admin user name, the admin password and the role's password by their values (read from the Job's
environment, so they are masked even though envspec itself does not know the admin's): envspec
prints failing Jobs' log tails, and the deploy workflow copies them into public PR comments.

This module must not import `kubernetes` (render imports it).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from envspec.spec.base import plain

if TYPE_CHECKING:  # pragma: no cover
    from envspec.plan import DatabaseDrop, DeployPlan, SecretSource
    from envspec.spec.models import Environment

NAME = re.compile(r"^[a-z0-9_]{1,63}$")
MASK = "<masked>"
STATUS_MARK = "envspec-status"

# awk: mask every occurrence of the credentials' values (longest first, so one value inside another leaves
# no part of it), drop the status line, exit with its status.
SCRUB = (
    "awk 'BEGIN { n = split(\"PGUSER PGPASSWORD APP_PASSWORD\", names, \" \"); status = 1\n"
    "  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)\n"
    "    if (length(ENVIRON[names[j]]) > length(ENVIRON[names[i]])) { t = names[i]; names[i] = names[j]; names[j] = t } }\n"
    f'$1 == "{STATUS_MARK}" && NF == 2 {{ status = $2; next }}\n'
    "{ line = $0\n"
    "  for (i = 1; i <= n; i++) {\n"
    "    v = ENVIRON[names[i]]; if (v == \"\") continue\n"
    "    out = \"\"\n"
    f'    while ((p = index(line, v)) > 0) {{ out = out substr(line, 1, p - 1) "{MASK}"; line = substr(line, p + length(v)) }}\n'
    "    line = out line\n"
    "  }\n"
    "  print line }\n"
    "END { exit status }'"
)


def scrubbed(body: str) -> str:
    """A POSIX sh script running `body` (set -eu) with stdout and stderr through `SCRUB`.

    The pipeline's status is awk's, which exits with the body's (sh has no pipefail)."""
    return f"{{ ( set -eu\n{body.rstrip()}\n) 2>&1; echo \"{STATUS_MARK} $?\"; }} | {SCRUB}\n"


# Idempotent SQL, names and password passed as psql variables and quoted by format(%I/%L): nothing from
# the spec is spliced into SQL text (the model also restricts database names to ^[a-z0-9_]+$).
CREATE_SQL = """SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
"""

# The role is the database's owner and nothing else; its password is set on every run, so a Job re-run
# after the Secret changed (its pod template carries a keyed checksum of the password) moves the role on.
CREATE_WITH_ROLE_SQL = """SELECT format('CREATE ROLE %I LOGIN', :'db') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'db')\\gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'db', :'pw')\\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'db')\\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db')\\gexec
"""


def create_script(with_role: bool) -> str:
    sql, pw = (CREATE_WITH_ROLE_SQL, ' -v pw="$APP_PASSWORD"') if with_role else (CREATE_SQL, "")
    return scrubbed(f"psql -X -q -v ON_ERROR_STOP=1 -v db=\"$DB_NAME\"{pw} <<'SQL'\n{sql}SQL")


def _shared_name(prefix: str, database: str) -> str:
    """A name unique per database inside a namespace many instances share (at most 63 characters)."""
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    return f"envspec-{prefix}-{database.replace('_', '-')}"[:50].rstrip("-") + f"-{digest}"


def service_namespace(host: str) -> str | None:
    """The namespace of a cluster Service host (`db.default.svc`, `db.default.svc.cluster.local`), else None.

    Only such a name says where the database runs; `postgres.example.com` is outside the cluster and
    names no namespace (its second label is a domain, not a namespace envspec could run a Job in)."""
    labels = host.split(".")
    return labels[1] if len(labels) >= 3 and labels[2] == "svc" else None


def jobs_namespace(spec: "Environment") -> str:
    db = spec.database
    assert db is not None
    return db.namespace or spec.namespace.name


def _shared(spec: "Environment") -> bool:
    return jobs_namespace(spec) != spec.namespace.name


def create_job_name(spec: "Environment") -> str:
    """`database.job` (what other Jobs list in `after:`) in the instance's own namespace; unique per database
    in a shared one."""
    assert spec.database is not None
    return _shared_name("create", spec.database.name) if _shared(spec) else spec.database.job


def role_secret_name(spec: "Environment") -> str | None:
    """The Secret the create Job reads the role's password from (a copy when the Job runs elsewhere)."""
    db = spec.database
    assert db is not None
    if not db.appSecret:
        return None
    return _shared_name("role", db.name) if _shared(spec) else db.appSecret


def create_job_view(spec: "Environment") -> dict[str, Any]:
    """What job.yaml.j2 renders for the create Job."""
    db = spec.database
    assert db is not None
    role_secret = role_secret_name(spec)
    env: list[dict[str, Any]] = [
        {"name": "PGHOST", "value": db.host},
        {"name": "PGPORT", "value": str(db.port)},
        {"name": "PGDATABASE", "value": "postgres"},
        {"name": "PGUSER", "valueFrom": {"secretKeyRef": {"name": db.adminSecret, "key": "username"}}},
        {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": db.adminSecret, "key": "password"}}},
        {"name": "DB_NAME", "value": db.name},
    ]
    if role_secret:
        env.append({"name": "APP_PASSWORD", "valueFrom": {"secretKeyRef": {"name": role_secret, "key": "password"}}})
    return {
        "name": create_job_name(spec),
        "namespace": jobs_namespace(spec),
        "image": db.image,
        "imagePullPolicy": None,
        "command": ["sh", "-c", create_script(bool(role_secret))],
        "args": None,
        "env": env,
        "envFrom": [],
        "resources": plain(db.resources, exclude_none=True) or None if db.resources else None,
        "backoffLimit": 3,
        "ttlSecondsAfterFinished": 3600,
        "imagePullSecrets": [],
        "after": [],
        "port": None,
        "volumeMounts": [],
        "readinessPath": None,
    }


def plan_parts(spec: "Environment", labels: dict[str, str]) -> tuple["DatabaseDrop | None", list["SecretSource"]]:
    """How destroy drops the database, and the Secrets apply builds for the database's Jobs."""
    from envspec.plan import DatabaseDrop, SecretSource

    db = spec.database
    if db is None:
        return None, []
    namespace = db.namespace or service_namespace(db.host) or spec.namespace.name
    drop = DatabaseDrop(
        database=db.name, host=db.host, port=db.port, image=db.image, namespace=namespace, user_secret=db.adminSecret,
        role=db.name if db.appSecret else None,
    )
    copies = []
    role_secret = role_secret_name(spec)
    if db.appSecret and role_secret != db.appSecret:
        app = spec.secrets.get(db.appSecret)
        copies.append(
            SecretSource(
                name=str(role_secret),
                namespace=jobs_namespace(spec),
                labels=labels,
                copy_of=((app.namespace if app else None) or spec.namespace.name, db.appSecret),
                scram_verifier=True,  # the shared namespace holds no PR password, PostgreSQL never sees it
            )
        )
    return drop, copies


# --- destroy -------------------------------------------------------------------------------

DROPPED, ABSENT = "dropped", "absent"  # the drop Job's last log line


def drop_job_name(database: str) -> str:
    return _shared_name("drop", database)


def _checked_name(what: str, name: str) -> str:
    from envspec.errors import SpecError

    if not NAME.fullmatch(name):
        raise SpecError(f"refusing to drop {what} {name!r}: name must match ^[a-z0-9_]{{1,63}}$")
    return name


def drop_script(drop: "DatabaseDrop") -> str:
    """The drop Job's script; ends by printing `dropped` or `absent`, and fails if anything is left.

    Names are validated before they are quoted into SQL, so quoting them is safe.
    """
    db = _checked_name("database", drop.database)
    role = _checked_name("role", drop.role) if drop.role else None
    lines = [
        'q() { psql -X -v ON_ERROR_STOP=1 -qtAc "$1"; }',
        f"db_before=$(q \"SELECT count(*) FROM pg_database WHERE datname = '{db}'\")",
        f"q 'DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE);'",
        f"left=$(q \"SELECT count(*) FROM pg_database WHERE datname = '{db}'\")",
        f'if [ "$left" != "0" ]; then echo "database {db} still exists" >&2; exit 1; fi',
        "role_before=0",
    ]
    if role:
        lines += [
            f"role_before=$(q \"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'\")",
            f"q 'DROP ROLE IF EXISTS \"{role}\";'",
            f"left=$(q \"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'\")",
            f'if [ "$left" != "0" ]; then echo "role {role} still exists" >&2; exit 1; fi',
        ]
    lines.append(
        f'if [ "$db_before" = "0" ] && [ "$role_before" = "0" ]; then echo {ABSENT}; else echo {DROPPED}; fi'
    )
    return scrubbed("\n".join(lines))


def drop_database_job(drop: "DatabaseDrop", plan: "DeployPlan") -> dict[str, Any]:
    """The Job that drops and verifies the per-instance database (and role); SpecError on an unsafe name."""
    from envspec.render.context import ENVIRONMENT_LABEL, MANAGED_BY as MANAGED_BY_LABEL
    from envspec.render.normalize import normalize_object

    script = drop_script(drop)
    labels = {
        MANAGED_BY_LABEL: "envspec",
        ENVIRONMENT_LABEL: plan.environment,
        "envspec.dev/drops-instance": plan.instance,
    }

    def secret_env(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": drop.user_secret, "key": key}}}

    resources = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}
    # Through the compiler's normalisation like every rendered object (its labels are the drop Job's own:
    # not the instance label, so destroy's leftover check and the CI policies tell it from the members).
    return normalize_object({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": drop_job_name(drop.database), "namespace": drop.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "drop-database",
                            "image": drop.image,
                            "command": ["sh", "-c", script],
                            "env": [
                                {"name": "PGHOST", "value": drop.host},
                                {"name": "PGPORT", "value": str(drop.port)},
                                {"name": "PGDATABASE", "value": "postgres"},
                                secret_env("PGUSER", "username"),
                                secret_env("PGPASSWORD", "password"),
                            ],
                            "resources": resources,
                        }
                    ],
                },
            },
        },
    }, labels)
