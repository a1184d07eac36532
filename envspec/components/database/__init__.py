"""A database on a shared PostgreSQL: an idempotent create Job when applying, a drop on destroy.

The lifecycle (create and drop scripts, the Job names, what the plan carries for destroy) is in
`lifecycle.py`; this module renders the create Job through the job template like any other Job.
"""

from __future__ import annotations

from typing import Any

from envspec.components.base import Builder, Builtin
from envspec.components.database.lifecycle import create_job_view
from envspec.spec.models import Environment

# What job.yaml.j2's container macro reads, beyond the create Job's own view.
_CONTAINER_DEFAULTS: dict[str, Any] = {
    "ports": [],
    "volumeMounts": [],
    "readinessProbe": None,
    "livenessProbe": None,
    "startupProbe": None,
    "securityContext": None,
    "lifecycle": None,
    "podExtras": {},
}


def database_job_view(spec: Environment) -> dict[str, Any]:
    view = {**_CONTAINER_DEFAULTS, **create_job_view(spec)}
    for legacy in ("port", "readinessPath"):
        view.pop(legacy, None)
    return view


def units(b: Builder) -> None:
    if b.spec.database is not None:
        view = database_job_view(b.spec)
        b.add("job", "job.yaml.j2", view, ("database",), view["name"])


COMPONENT = Builtin("database", ("database",), ("Job",), units)
