"""CronJobs: a Job's container on a schedule."""

from __future__ import annotations

from typing import Any

from envspec.components.base import Builder, Builtin
from envspec.components.pods import single_container_view
from envspec.spec.base import plain
from envspec.spec.models import CronJob, Environment

SCHEDULE_FIELDS = {"schedule", "timeZone", "concurrencyPolicy", "suspend", "successfulJobsHistoryLimit",
                   "failedJobsHistoryLimit", "startingDeadlineSeconds"}


def cronjob_view(name: str, job: CronJob, spec: Environment) -> dict[str, Any]:
    schedule = plain(job, include=SCHEDULE_FIELDS, exclude_none=True)
    return {**single_container_view(name, job, spec), "schedule": schedule}


def units(b: Builder) -> None:
    for cron_name, cron in b.spec.cronJobs.items():
        b.add("cronjob", "cronjob.yaml.j2", cronjob_view(cron_name, cron, b.spec), ("cronJobs", cron_name), cron_name)


COMPONENT = Builtin("cronjob", ("cronJobs",), ("CronJob",), units)
