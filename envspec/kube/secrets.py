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

A generated value is created once: apply POSTs the Secret (create-only) and a
409 means another apply got there first, whose value it then reads and uses; a
key missing from an existing Secret is added with a resourceVersion
precondition. Nothing regenerates a value that exists, so two simultaneous
first applies converge on one password.

Pods follow their Secrets: `prepare_secrets` stamps every pod template that
reads a Secret the plan builds with `envspec.dev/secret-checksum`, an
HMAC-SHA256 of those Secrets' data under a per-instance random key kept in the
cluster (a create-only generated Secret, `checksum_key_name`). A changed value
changes the annotation, which rolls a Deployment's pods and re-runs a Job
(e.g. the database role's password); without the key the annotation reveals
nothing about the value, not even for a guessable one. Rendered output carries
no such annotation: it exists only at apply (and diff) time.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import secrets as _random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from envspec.errors import EnvspecError, OperationError, Problem, SpecError
from envspec.objects import pod_template_of_object
from envspec.plan import DeployPlan, SecretSource
from envspec.render.normalize import secret_skeleton

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

MASK = "<masked>"
GENERATED_BYTES = 24  # token_urlsafe(24) is 32 URL-safe characters
# What a pending key holds in a diff when the live Secret lacks it: shown masked, never sent.
UNKNOWN_VALUE = base64.b64encode(b"<not compared>").decode()

# Keys that hold names, not secrets (basic-auth style). Masking them would hide e.g. a user
# "shop" inside every domain and database name ("<masked>.example.com") and protect nothing.
IDENTITY_KEYS = frozenset({"username", "user"})

LiveLookup = Callable[[str, str], "dict[str, Any] | None"]  # (namespace, name) -> live Secret

SECRET_CHECKSUM_ANNOTATION = "envspec.dev/secret-checksum"
CHECKSUM_KEY = "key"  # the data key of the per-instance checksum key Secret
PENDING_CHECKSUM = "<computed at apply>"  # what a diff shows before the instance has a checksum key
CREATE_ATTEMPTS = 5


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
        registry = source.registry or ""  # the spec requires `registry` for this type
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
    for source in sources(plan):
        data = {} if unset_variables(source, environ) else _secret_data(source, environ, redactor)
        objects.append({**secret_skeleton(source.name, source.namespace, source.type, {**plan.labels, **source.labels}), "data": data})
    return objects, redactor


def pending_keys(plan: DeployPlan, environ: Mapping[str, str]) -> dict[tuple[str, str], list[str]]:
    """(namespace, name) -> keys whose value is not in the environment: generated ones, and all keys of a
    source with a missing variable."""
    out: dict[tuple[str, str], list[str]] = {}
    for source in sources(plan):
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


# --- the plan's Secrets beyond its declarations: the checksum key ---------------------------


def secret_refs(pod_spec: dict[str, Any]) -> set[str]:
    """Names of the Secrets a pod reads (env, envFrom, volumes); image pull secrets need no roll."""
    names: set[str] = set()
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            if (source.get("secretRef") or {}).get("name"):
                names.add(source["secretRef"]["name"])
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                names.add(ref["name"])
    for volume in pod_spec.get("volumes") or []:
        if (volume.get("secret") or {}).get("secretName"):
            names.add(volume["secret"]["secretName"])
    return names


def _reads_built_secret(plan: DeployPlan) -> bool:
    built = {(s.namespace, s.name) for s in plan.secrets}
    for obj in plan.objects:
        template = pod_template_of_object(obj)
        if template is not None:
            ns = (obj.get("metadata") or {}).get("namespace")
            if any((ns, name) in built for name in secret_refs(template["spec"])):
                return True
    return False


def checksum_key_name(instance: str) -> str:
    return f"envspec-checksum-key-{instance}"


def sources(plan: DeployPlan) -> list[SecretSource]:
    """The plan's Secrets plus, when a pod reads one of them, the instance's checksum key (generated once)."""
    out = list(plan.secrets)
    if _reads_built_secret(plan):
        out.append(
            SecretSource(
                name=checksum_key_name(plan.instance),
                namespace=plan.applyset_namespace or "default",
                labels=dict(plan.labels),
                generate=(CHECKSUM_KEY,),
            )
        )
    return out


# --- completing them at apply (create-only) and diff time -----------------------------------


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def ensure_generated(
    kube: "Kube",
    objects: list[dict[str, Any]],
    pending: dict[tuple[str, str], list[str]],
    live: LiveLookup,
    redactor: Redactor,
    report: Callable[[str], None] = lambda line: None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Make sure every generated key exists in the cluster, writing only what is missing; returns the
    live Secrets, (namespace, name) -> object, holding the values everyone now uses.

    Create-only: a missing Secret is POSTed and a 409 (another apply created it meanwhile) makes this
    read and use the winner's value; a missing key is added by a PUT conditional on the
    resourceVersion read, retried on 409. An existing value is never replaced."""
    from envspec.kube.client import KubeApiError

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        meta = obj["metadata"]
        where = (meta["namespace"], meta["name"])
        keys = pending.get(where)
        if not keys:
            continue
        current = live(*where)
        for _ in range(CREATE_ATTEMPTS):
            data = dict((current or {}).get("data") or {})
            missing = [k for k in keys if k not in data]
            if not missing:
                break
            fresh = {}
            for key in missing:
                plain = _random.token_urlsafe(GENERATED_BYTES)
                redactor.add(plain)
                fresh[key] = _b64(plain)
            try:
                if current is None:
                    body = copy.deepcopy(obj)
                    body["data"] = dict(sorted({**(obj.get("data") or {}), **fresh}.items()))
                    current = kube.create(body)
                    report(f"generated {', '.join(missing)} for Secret/{where[0]}/{where[1]} (create-only)")
                else:
                    body = copy.deepcopy(current)
                    body["metadata"].pop("managedFields", None)  # the server keeps tracking them itself
                    body["data"] = dict(sorted({**data, **fresh}.items()))
                    current = kube.replace(body)
                    report(f"added generated {', '.join(missing)} to Secret/{where[0]}/{where[1]}")
            except KubeApiError as exc:
                if _status(exc) != 409:
                    raise
                current = kube.get("v1", "Secret", where[1], where[0])  # someone else wrote it: use theirs
        else:
            raise OperationError(f"Secret/{where[0]}/{where[1]}: could not create its generated keys (kept changing)")
        assert current is not None
        found[where] = current
    return found


SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of `password` (RFC 5802/7677, as `pg_authid.rolpassword` stores it).

    Logging in needs the password itself; the verifier only lets a server check it."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def fill_copies(objects: list[dict[str, Any]], plan: DeployPlan, key: str | None, redactor: Redactor) -> None:
    """Give each copy (`SecretSource.copy_of`) the completed data of its original, or its SCRAM verifiers.

    A verifier's salt is derived from the instance's checksum key and the copy's name, so the verifier
    (and with it the checksum of the Job that reads it) changes exactly when the password does."""
    by_id = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
    for source in plan.secrets:
        if source.copy_of is None:
            continue
        target, original = by_id.get((source.namespace, source.name)), by_id.get(source.copy_of)
        if target is None or original is None:
            continue
        data = dict(original.get("data") or {})
        if source.scram_verifier:
            salt = hmac.new((key or "").encode(), f"scram:{source.namespace}/{source.name}".encode(),
                            hashlib.sha256).digest()[:16]
            for name, value in list(data.items()):
                verifier = scram_verifier(_decoded(value) or value, salt)
                redactor.add(verifier)
                data[name] = _b64(verifier)
        target["data"] = data


def checksum(key: str, secrets: list[dict[str, Any]]) -> str:
    """HMAC-SHA256 of the Secrets' names, types and data: changes with any value, reveals none."""
    payload = json.dumps(
        [[s["metadata"]["name"], s.get("type", "Opaque"), s.get("data") or {}] for s in secrets],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def stamp_checksums(objects: list[dict[str, Any]], built: list[dict[str, Any]], instance: str) -> None:
    """Annotate each pod template that reads built Secrets with their keyed checksum (in place; the
    object's `spec` is copied first, since desired objects share it with the plan)."""
    by_id = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in built}
    key_secret = next((o for o in built if o["metadata"]["name"] == checksum_key_name(instance)), None)
    key = ((key_secret or {}).get("data") or {}).get(CHECKSUM_KEY)
    if not key:
        return
    # diff before the first apply: there is no key yet, and a hash under a known placeholder key
    # would be a plain hash of the values (guessable ones could be recovered from the diff).
    unkeyed = key == UNKNOWN_VALUE
    for obj in objects:
        template = pod_template_of_object(obj)
        if template is None:
            continue
        ns = obj["metadata"].get("namespace")
        used = [by_id[(ns, n)] for n in sorted(secret_refs(template["spec"])) if (ns, n) in by_id]
        if not used:
            continue
        obj["spec"] = copy.deepcopy(obj["spec"])
        template = pod_template_of_object(obj)
        assert template is not None
        meta = template.setdefault("metadata", {})
        value = PENDING_CHECKSUM if unkeyed else checksum(key, used)
        meta["annotations"] = {**(meta.get("annotations") or {}), SECRET_CHECKSUM_ANNOTATION: value}


def prepare_secrets(
    plan: DeployPlan,
    environ: Mapping[str, str],
    objects: list[dict[str, Any]],
    live: LiveLookup,
    redactor: Redactor,
    *,
    kube: "Kube | None" = None,
    report: Callable[[str], None] = lambda line: None,
) -> None:
    """Complete the built Secrets among `objects` and stamp the pod templates that read them.

    With `kube` (apply), generated keys are first made to exist in the cluster, create-only; without
    (diff), missing ones show as placeholders. The Secrets' namespaces must exist when `kube` is given."""
    built_ids = {(s.namespace, s.name) for s in sources(plan)}
    built = [
        o for o in objects
        if o.get("kind") == "Secret" and (o["metadata"].get("namespace"), o["metadata"]["name"]) in built_ids
    ]
    pending = pending_keys(plan, environ)
    lookup = live
    if kube is not None:
        written = ensure_generated(kube, built, pending, live, redactor, report)

        def lookup(namespace: str, name: str) -> dict[str, Any] | None:
            return written.get((namespace, name)) or live(namespace, name)

    complete_secrets(built, pending, lookup, redactor, generate=False)
    key_secret = next((o for o in built if o["metadata"]["name"] == checksum_key_name(plan.instance)), None)
    fill_copies(built, plan, ((key_secret or {}).get("data") or {}).get(CHECKSUM_KEY), redactor)
    stamp_checksums(objects, built, plan.instance)
