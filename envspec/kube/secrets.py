"""Secrets built at apply time from environment variables, and keeping their values out of output.

A plan names only the variables (`SecretSource.data_from_env`); the values
exist in memory between reading the environment and the apply request. Every
variable is checked before any API call so a missing one fails the run up
front, listing all of them. `Redactor` knows the values (raw and base64) and
scrubs them from any text envspec prints: progress lines, pod log tails and
error messages that echo a body.

Two kinds of key have no value in the environment and are *pending* until
the live Secret has been read (`complete_secrets`):

* keys a source generates (`SecretSource.generate`): apply keeps the live
  value when there is one and otherwise makes a random one, once;
* for `envspec diff`, which runs in CI before approval without secret
  variables, every key of a source whose variables are missing: the diff then
  compares those Secrets by keys only (values are masked anyway) and says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets as _random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from envspec.errors import EnvspecError, Problem, SpecError
from envspec.kube.plan import DeployPlan, SecretSource

MASK = "<masked>"
GENERATED_BYTES = 24  # token_urlsafe(24) is 32 URL-safe characters
# What a pending key holds in a diff when the live Secret lacks it: shown masked, never sent.
UNKNOWN_VALUE = base64.b64encode(b"<not compared>").decode()

# Keys that hold names, not secrets (basic-auth style). Masking them would hide e.g. a user
# "aphiria" inside every domain and database name ("<masked>.com") and protect nothing.
IDENTITY_KEYS = frozenset({"username", "user"})

LiveLookup = Callable[[str, str], "dict[str, Any] | None"]  # (namespace, name) -> live Secret


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

    def scrub_error(self, exc: EnvspecError) -> EnvspecError:
        """The same exception with every problem message scrubbed (in place: subclasses keep their fields)."""
        exc.problems = [
            Problem(self.scrub(p.message), p.location, p.path, p.severity, p.rule) for p in exc.problems
        ]
        exc.args = ("\n".join(str(p) for p in exc.problems),)
        return exc

    def wrap(self, report: Callable[[str], None]) -> Callable[[str], None]:
        """`report`, scrubbing each line first (with the values known at the time of the call)."""
        return lambda line: report(self.scrub(line))


def data_keys(source: SecretSource) -> list[str]:
    """The keys the built Secret's `data` will hold, sorted (what a diff can compare without values)."""
    keys = set(source.data_from_env) | set(source.generate)
    if source.type == "kubernetes.io/dockerconfigjson":
        keys.discard("password")
        if not source.username:
            keys.discard("username")
        keys.add(".dockerconfigjson")
    return sorted(keys)


def unset_variables(source: SecretSource, environ: Mapping[str, str]) -> list[str]:
    return sorted({var for var in source.data_from_env.values() if not environ.get(var)})


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
    for key, value in values.items():
        if key not in IDENTITY_KEYS:
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
    plan: DeployPlan, environ: Mapping[str, str], redactor: Redactor | None = None, *, missing_ok: bool = False
) -> tuple[list[dict[str, Any]], Redactor]:
    """The Secret objects the plan asks for, without their pending keys (see `pending_keys`).

    SpecError listing every missing variable, unless `missing_ok` (diff): then a
    source with a missing variable gets no data here, all its keys pending.
    """
    if not missing_ok:
        problems = missing_variables(plan, environ)
        if problems:
            raise SpecError(problems)
    redactor = redactor or Redactor()
    objects = []
    for source in plan.secrets:
        data = {} if unset_variables(source, environ) else _secret_data(source, environ, redactor)
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
                "data": data,
            }
        )
    return objects, redactor


def pending_keys(plan: DeployPlan, environ: Mapping[str, str]) -> dict[tuple[str, str], list[str]]:
    """(namespace, name) -> keys whose value is not in the environment: generated ones, and all keys of a
    source with a missing variable."""
    out: dict[tuple[str, str], list[str]] = {}
    for source in plan.secrets:
        keys = data_keys(source) if unset_variables(source, environ) else sorted(source.generate)
        if keys:
            out[(source.namespace, source.name)] = keys
    return out


def _decoded(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def complete_secrets(
    objects: list[dict[str, Any]],
    pending: dict[tuple[str, str], list[str]],
    live: LiveLookup,
    redactor: Redactor,
    *,
    generate: bool,
) -> None:
    """Fill pending keys in place: the live Secret's value when it has the key (so an apply leaves it
    and a diff sees it unchanged), else a new random value for a key in `generate` (apply), else a
    placeholder (diff: the key will be added). Every value met is taught to the redactor.

    `generate` is True for apply, whose pending keys are all generated ones (missing variables
    stopped it earlier); a diff never invents values."""
    for obj in objects:
        meta = obj["metadata"]
        keys = pending.get((meta["namespace"], meta["name"]))
        if not keys:
            continue
        current = (live(meta["namespace"], meta["name"]) or {}).get("data") or {}
        data = obj.setdefault("data", {})
        for key in keys:
            if key in current:
                value = str(current[key])
                plain = _decoded(value)
                if key not in IDENTITY_KEYS:
                    redactor.add(value)
                    if plain is not None:
                        redactor.add(plain)
            elif generate:
                plain = _random.token_urlsafe(GENERATED_BYTES)
                redactor.add(plain)
                value = _b64(plain)
            else:
                value = UNKNOWN_VALUE
            data[key] = value
        obj["data"] = dict(sorted(data.items()))


def redactor_for(plan: DeployPlan, environ: Mapping[str, str]) -> Redactor:
    """A Redactor that knows the values of the plan's secret variables that are set (none is required)."""
    redactor = Redactor()
    for source in plan.secrets:
        for key, var in source.data_from_env.items():
            value = environ.get(var)
            if value and key not in IDENTITY_KEYS:
                redactor.add(value)
    return redactor


def learn_live_secrets(redactor: Redactor, objects: list[dict[str, Any]]) -> None:
    """Live Secrets about to be deleted (e.g. a generated database password) are scrubbed too."""
    for obj in objects:
        if obj.get("kind") != "Secret":
            continue
        for key, encoded in (obj.get("data") or {}).items():
            if key in IDENTITY_KEYS:
                continue
            try:
                value = base64.b64decode(str(encoded), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                redactor.add(str(encoded))
                continue
            redactor.add(value)
            if key == ".dockerconfigjson":
                _learn_registry_credentials(redactor, value)


def _learn_registry_credentials(redactor: Redactor, config: str) -> None:
    try:
        auths = json.loads(config).get("auths") or {}
    except (ValueError, AttributeError):
        return
    for entry in auths.values() if isinstance(auths, dict) else ():
        for field_name in ("password", "auth", "identitytoken"):
            if isinstance(entry, dict) and entry.get(field_name):
                redactor.add(str(entry[field_name]))
