"""`plain(model)` reads a spec model's fields the way `model_dump` would, without building a serializer
for every nested model mid-render: the same data for every model of every bundled environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import BaseModel

from envspec.spec.base import plain
from envspec.spec.cloud import Cluster as DoCluster
from envspec.spec.cloud import NodePool
from envspec.spec.models import CronJob, Environment
from envspec.spec.project import find_project
from envspec.spec.resolve import Resolver

REPO = Path(__file__).resolve().parent.parent
PROJECTS = [REPO, *(p for p in sorted((REPO / "examples").iterdir()) if (p / "environments").is_dir())]


def _models(value: Any) -> Iterator[BaseModel]:
    if isinstance(value, BaseModel):
        yield value
        for name in type(value).model_fields:
            yield from _models(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _models(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _models(item)


def _environments() -> Iterator[Environment]:
    for root in PROJECTS:
        project = find_project(root)
        for name in project.environment_names():
            yield Resolver(project).resolve(name, (), (), use_examples=True).spec


def test_plain_is_model_dump_for_every_model_of_every_bundled_environment() -> None:
    seen: set[str] = set()
    for spec in _environments():
        for model in _models(spec):
            seen.add(type(model).__name__)
            for options in ({}, {"exclude_none": True}, {"exclude_defaults": True}):
                assert plain(model, **options) == model.model_dump(**options), (type(model).__name__, options)
                assert plain(model, **options) == model.model_dump(mode="json", **options) or _has_tuple(model)
    assert {"Environment", "App", "Container", "Resources", "SecretSpec", "Route", "Namespace"} <= seen


def _has_tuple(model: BaseModel) -> bool:
    return any(isinstance(getattr(m, n), tuple) for m in _models(model) for n in type(m).model_fields)


def test_plain_include_keeps_field_order_and_drops_none() -> None:
    job = CronJob.model_validate({"image": "busybox", "schedule": "@daily", "timeZone": None, "suspend": True})
    fields = {"suspend", "schedule", "timeZone", "concurrencyPolicy"}
    assert plain(job, include=fields, exclude_none=True) == job.model_dump(include=fields, exclude_none=True)
    assert list(plain(job, include=fields, exclude_none=True)) == ["schedule", "concurrencyPolicy", "suspend"]


@pytest.mark.parametrize("options", [{}, {"exclude_none": True}, {"exclude_defaults": True}])
def test_plain_of_nested_models_tuples_and_defaults(options: dict[str, bool]) -> None:
    cluster = DoCluster(name="c", region="nyc3", version="1.34.1-do.0", tags=("a", "b"),
                        nodePool=NodePool(name="pool", size="s-1vcpu-2gb", count=1))
    assert plain(cluster, **options) == cluster.model_dump(**options)
    assert isinstance(plain(cluster)["tags"], tuple)


def test_plain_returns_new_containers() -> None:
    job = CronJob.model_validate({"image": "busybox", "schedule": "@daily", "env": {"A": "1"}, "configMaps": ["x"]})
    data = plain(job)
    data["env"]["B"] = "2"
    data["configMaps"].append("y")
    assert job.env == {"A": "1"} and job.configMaps == ["x"]
