"""The built-in components, in render order. Adding a kind of thing: one folder beside the others
(its `__init__.py` with a `COMPONENT`, its templates in envspec/templates/<name>/), listed here."""

from __future__ import annotations

from envspec.components import (
    app,
    certificate,
    claim,
    config,
    cronjob,
    database,
    gateway,
    issuer,
    job,
    namespace,
    route,
    secret,
    serviceaccount,
)
from envspec.components.base import Builtin

BUILTIN: tuple[Builtin, ...] = (
    namespace.COMPONENT,
    secret.COMPONENT,
    config.COMPONENT,
    serviceaccount.COMPONENT,
    claim.COMPONENT,
    app.COMPONENT,
    issuer.COMPONENT,
    certificate.COMPONENT,
    gateway.COMPONENT,
    route.COMPONENT,
    cronjob.COMPONENT,
    database.COMPONENT,  # before job: the database's create Job runs before every other Job
    job.COMPONENT,
)
BY_NAME: dict[str, Builtin] = {c.name: c for c in BUILTIN}
