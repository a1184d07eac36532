"""The database component's rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from envspec.checks.context import RuleContext


def is_database_job(ctx: RuleContext, obj: dict[str, Any]) -> bool:
    """The database's create Job runs in `database.namespace` by design (the one place the admin Secret is)."""
    from envspec.components.database.lifecycle import create_job_name, jobs_namespace

    db = ctx.spec.database
    return (
        db is not None and db.namespace is not None and obj["kind"] == "Job"
        and obj["metadata"].get("namespace") == jobs_namespace(ctx.spec) and obj["metadata"]["name"] == create_job_name(ctx.spec)
    )


def database_credentials(ctx: RuleContext) -> None:
    """With `database.namespace`, the admin Secret is read there only: building it anywhere else would put
    PostgreSQL admin credentials into a namespace the database Jobs left precisely to avoid them."""
    db = ctx.spec.database
    if db is None or db.namespace is None or db.adminSecret not in ctx.spec.secrets:
        return
    where = ctx.spec.secrets[db.adminSecret].namespace or ctx.spec.namespace.name
    if where != db.namespace:
        ctx.error(
            "database-credentials",
            ("secrets", db.adminSecret),
            f"Secret {db.adminSecret} is the database's adminSecret, read in namespace {db.namespace} "
            f"(database.namespace), but would be built in {where}; remove it here ({db.adminSecret}: null) "
            f"or build it in {db.namespace}",
        )
