"""Jobs, run one after another in `after:` order."""

from __future__ import annotations

from typing import Any

from envspec.components.base import Builder, Builtin
from envspec.components.pods import single_container_view
from envspec.spec.models import Environment, Job


def job_view(name: str, job: Job, spec: Environment) -> dict[str, Any]:
    return {**single_container_view(name, job, spec), "ttlSecondsAfterFinished": job.ttlSecondsAfterFinished, "after": list(job.after)}


def units(b: Builder) -> None:
    for job_name in b.spec.job_order():
        if job_name in b.spec.jobs:
            b.add("job", "job.yaml.j2", job_view(job_name, b.spec.jobs[job_name], b.spec), ("jobs", job_name), job_name)


COMPONENT = Builtin("job", ("jobs",), ("Job",), units)
