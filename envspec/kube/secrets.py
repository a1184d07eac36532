"""Secrets built at apply time from environment variables, and keeping their values out of output.

A plan names only the variables (`SecretSource.data_from_env`); the values
exist in memory between reading the environment and the apply request. Every
variable is checked before any API call so a missing one fails the run up
front, listing all of them. `Redactor` knows the values (raw and base64) and
scrubs them from any text envspec prints, as a last line of defence against an
API error message that echoes a body.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from envspec.errors import Problem, SpecError
from envspec.kube.plan import DeployPlan, SecretSource

MASK = "<masked>"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@dataclass
class Redactor:
    values: set[str] = field(default_factory=set)

    def add(self, value: str) -> None:
        # Very short values (e.g. "1") would redact half the output and protect nothing.
        if len(value) >= 4:
            self.values.add(value)
            self.values.add(_b64(value))

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


def missing_variables(plan: DeployPlan, environ: Mapping[str, str]) -> list[Problem]:
    problems = []
    for source in plan.secrets:
        for key, var in source.data_from_env.items():
            if not environ.get(var):
                problems.append(
                    Problem(
                        f"environment variable {var} is not set (needed for key {key!r} of "
                        f"Secret {source.namespace}/{source.name})",
                        path=f"secrets.{source.name}.{key}",
                    )
                )
    return problems


def _secret_data(source: SecretSource, environ: Mapping[str, str], redactor: Redactor) -> dict[str, str]:
    values = {key: environ[var] for key, var in source.data_from_env.items()}
    for value in values.values():
        redactor.add(value)
    if source.type == "kubernetes.io/dockerconfigjson":
        password = values.pop("password", "")
        username = source.username or values.pop("username", "")
        registry = source.registry or "ghcr.io"
        auth = _b64(f"{username}:{password}")
        redactor.add(auth)
        config = {"auths": {registry: {"username": username, "password": password, "auth": auth}}}
        encoded = json.dumps(config, separators=(",", ":"), sort_keys=True)
        redactor.add(encoded)
        values = {**values, ".dockerconfigjson": encoded}
    return {key: _b64(value) for key, value in sorted(values.items())}


def build_secrets(
    plan: DeployPlan, environ: Mapping[str, str], redactor: Redactor | None = None
) -> tuple[list[dict[str, Any]], Redactor]:
    """The Secret objects the plan asks for; SpecError listing every missing variable."""
    problems = missing_variables(plan, environ)
    if problems:
        raise SpecError(problems)
    redactor = redactor or Redactor()
    objects = []
    for source in plan.secrets:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": source.type,
                "metadata": {
                    "name": source.name,
                    "namespace": source.namespace,
                    "labels": {**plan.labels, **source.labels},
                },
                "data": _secret_data(source, environ, redactor),
            }
        )
    return objects, redactor
