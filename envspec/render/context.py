"""Stage 4: from the typed model to what templates see.

Python decides *what* gets rendered (which template, how many times, with which
derived values); templates only decide the manifest's shape. Each unit's
context is plain data: `env` (environment-wide values), `item` (the thing
being rendered) and `name`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from envspec.components.project import instance_units
from envspec.errors import Location, Problems
from envspec.render.templates import RenderUnit
from envspec.spec.models import App, Container, CronJob, Environment, Job, JobPod, Probe, Resources

MANAGED_BY = "app.kubernetes.io/managed-by"
ENVIRONMENT_LABEL = "envspec.dev/environment"
INSTANCE_LABEL = "envspec.dev/instance"


def base_labels(name: str, instance: str, extra: dict[str, str]) -> dict[str, str]:
    labels = dict(sorted(extra.items()))
    labels.update({MANAGED_BY: "envspec", ENVIRONMENT_LABEL: name, INSTANCE_LABEL: instance})
    return labels


def _resources(resources: Resources | None) -> dict[str, Any] | None:
    if resources is None:
        return None
    return resources.model_dump(mode="json", exclude_none=True) or None


def _env_list(env: dict[str, str], secret_env: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    for key, ref in sorted(secret_env.items()):
        out.append({"name": key, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}}})
    return out


def _env_from(config_maps: list[str], secrets: list[str]) -> list[dict[str, Any]]:
    return [{"configMapRef": {"name": n}} for n in config_maps] + [{"secretRef": {"name": n}} for n in secrets]


def _dump(model: Any) -> dict[str, Any] | None:
    return model.model_dump(mode="json", exclude_none=True) if model is not None else None


def probe_view(probe: Probe | None, default_port: int | None) -> dict[str, Any] | None:
    """A Kubernetes probe; the handler's port defaults to the container's first port."""
    if probe is None:
        return None
    port = probe.port if probe.port is not None else default_port
    if probe.path is not None:
        view: dict[str, Any] = {"httpGet": {"path": probe.path, "port": port}}
    elif probe.tcp:
        view = {"tcpSocket": {"port": port}}
    else:
        view = {"exec": {"command": list(probe.exec or [])}}
    for key in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"):
        if getattr(probe, key) is not None:
            view[key] = getattr(probe, key)
    return view


def _ports(container: Container) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = [{"containerPort": container.port}] if container.port else []
    return ports + [{"name": n, "containerPort": p} for n, p in container.ports.items()]


def _security(model: Any) -> dict[str, Any] | None:
    view = _dump(model)
    if view and "seccompProfile" in view:
        view["seccompProfile"] = {"type": view["seccompProfile"]}
    return view or None


def container_view(name: str, container: Container, app: App) -> dict[str, Any]:
    first = container.first_port()
    readiness = probe_view(container.readiness, first)
    if readiness is None and container.readinessPath and container.port:
        readiness = {"httpGet": {"path": container.readinessPath, "port": container.port}}
    return {
        "name": name,
        "image": container.image or app.image,
        "imagePullPolicy": container.imagePullPolicy or app.imagePullPolicy,
        "command": container.command,
        "args": container.args,
        "ports": _ports(container),
        "env": _env_list(container.env, container.secretEnv),
        "envFrom": _env_from(container.configMaps, container.secrets),
        "volumeMounts": [{"name": v, "mountPath": p} for v, p in sorted(container.mounts.items())],
        "resources": _resources(container.resources),
        "readinessProbe": readiness,
        "livenessProbe": probe_view(container.liveness, first),
        "startupProbe": probe_view(container.startup, first),
        "securityContext": _security(container.securityContext),
        "lifecycle": {"preStop": {"exec": {"command": list(container.preStop)}}} if container.preStop else None,
    }


def pod_extras(service_account: str | None, security: Any, node_selector: dict[str, str] | None = None,
               grace: int | None = None) -> dict[str, Any]:
    """Pod-level settings after the containers and volumes, in this order; absent ones are left out."""
    extras: dict[str, Any] = {}
    if service_account:
        extras["serviceAccountName"] = service_account
    if security is not None:
        extras["securityContext"] = _security(security)
    if node_selector:
        extras["nodeSelector"] = dict(node_selector)
    if grace is not None:
        extras["terminationGracePeriodSeconds"] = grace
    return extras


def app_view(name: str, app: App, spec: Environment) -> dict[str, Any]:
    first_port = next((c.first_port() for c in app.containers.values() if c.first_port()), None)
    volumes = []
    for vname, volume in sorted(app.volumes.items()):
        if volume.emptyDir:
            volumes.append({"name": vname, "emptyDir": {}})
        elif volume.claim:
            volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": volume.claim}})
        else:
            volumes.append({"name": vname, "configMap": {"name": volume.configMap}})
    service = None
    if app.service is not None:
        ports = [
            {"name": pname, "port": p.port, "targetPort": p.targetPort if p.targetPort is not None else p.port}
            for pname, p in app.service.ports.items()
        ] or [{"name": "http", "port": app.service.port, "targetPort": app.service.targetPort or first_port or app.service.port}]
        service = {"port": ports[0]["port"], "ports": ports, "headless": app.service.headless}
    autoscale = None
    if app.autoscale is not None:
        metrics = [
            {"type": "Resource", "resource": {"name": res, "target": {"type": "Utilization", "averageUtilization": value}}}
            for res, value in (("cpu", app.autoscale.cpu), ("memory", app.autoscale.memory))
            if value is not None
        ]
        autoscale = {"minReplicas": app.autoscale.minReplicas, "maxReplicas": app.autoscale.maxReplicas, "metrics": metrics}
    claim_templates = [
        {"name": cname, "accessMode": c.accessMode, "size": c.size, "storageClass": c.storageClass}
        for cname, c in app.volumeClaimTemplates.items()
    ]
    return {
        "name": name,
        "kind": app.kind,
        "namespace": app.namespace or spec.namespace.name,
        "replicas": None if app.autoscale else app.replicas,
        "autoscale": autoscale,
        "claimTemplates": claim_templates,
        "podExtras": pod_extras(app.serviceAccount, app.securityContext, app.nodeSelector, app.terminationGracePeriodSeconds),
        "strategy": app.strategy,
        "maxSurge": app.maxSurge,
        "selector": {"app.kubernetes.io/name": name},
        "containers": [container_view(n, c, app) for n, c in app.containers.items()],
        "initContainers": [container_view(n, c, app) for n, c in app.initContainers.items()],
        "volumes": volumes,
        "imagePullSecrets": list(spec.imagePullSecrets),
        "service": service,
        "disruptionBudget": app.disruptionBudget.model_dump() if app.disruptionBudget else None,
    }


def _job_pod_view(name: str, job: JobPod, spec: Environment) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": job.namespace or spec.namespace.name,
        "image": job.image,
        "imagePullPolicy": job.imagePullPolicy,
        "command": job.command,
        "args": job.args,
        "env": _env_list(job.env, job.secretEnv),
        "envFrom": _env_from(job.configMaps, job.secrets),
        "resources": _resources(job.resources),
        "backoffLimit": job.backoffLimit,
        "imagePullSecrets": list(spec.imagePullSecrets),
        "ports": [],
        "volumeMounts": [],
        "readinessProbe": None,
        "livenessProbe": None,
        "startupProbe": None,
        "securityContext": _security(job.securityContext),
        "lifecycle": None,
        "podExtras": pod_extras(job.serviceAccount, job.podSecurityContext),
    }


def job_view(name: str, job: Job, spec: Environment) -> dict[str, Any]:
    return {**_job_pod_view(name, job, spec), "ttlSecondsAfterFinished": job.ttlSecondsAfterFinished, "after": list(job.after)}


def cronjob_view(name: str, job: CronJob, spec: Environment) -> dict[str, Any]:
    schedule = job.model_dump(
        include={"schedule", "timeZone", "concurrencyPolicy", "suspend", "successfulJobsHistoryLimit",
                 "failedJobsHistoryLimit", "startingDeadlineSeconds"},
        exclude_none=True,
    )
    return {**_job_pod_view(name, job, spec), "schedule": schedule}


# Idempotent SQL, with the names passed as psql variables and quoted by format(%I/%L): nothing from the
# spec is spliced into SQL text (the model also restricts database names to ^[a-z0-9_]+$).
CREATE_DATABASE = """set -e
psql -v ON_ERROR_STOP=1 -v db="$DB_NAME" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
SQL
"""

CREATE_WITH_ROLE = """set -e
psql -v ON_ERROR_STOP=1 -v db="$DB_NAME" -v pw="$APP_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'db') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'db')\\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'db', :'pw')\\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db')\\gexec
SQL
"""


def database_job_view(spec: Environment) -> dict[str, Any]:
    """The idempotent create-database Job; the name is validated ^[a-z0-9_]+$ by the model."""
    db = spec.database
    assert db is not None
    script = CREATE_WITH_ROLE if db.appSecret else CREATE_DATABASE
    return {
        "name": "create-database",
        "namespace": spec.namespace.name,
        "image": db.image,
        "imagePullPolicy": None,
        "command": ["sh", "-c", script],
        "args": None,
        "env": [
            {"name": "PGHOST", "value": db.host},
            {"name": "PGPORT", "value": str(db.port)},
            {"name": "PGDATABASE", "value": "postgres"},
            {"name": "PGUSER", "valueFrom": {"secretKeyRef": {"name": db.adminSecret, "key": "username"}}},
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": db.adminSecret, "key": "password"}}},
            {"name": "DB_NAME", "value": db.name},
        ]
        + ([{"name": "APP_PASSWORD", "valueFrom": {"secretKeyRef": {"name": db.appSecret, "key": "password"}}}] if db.appSecret else []),
        "envFrom": [],
        "resources": _resources(db.resources),
        "backoffLimit": 3,
        "ttlSecondsAfterFinished": 3600,
        "imagePullSecrets": [],
        "after": [],
        "ports": [],
        "volumeMounts": [],
        "readinessProbe": None,
        "livenessProbe": None,
        "startupProbe": None,
        "securityContext": None,
        "lifecycle": None,
        "podExtras": {},
    }


def route_views(name: str, spec: Environment) -> list[dict[str, Any]]:
    route = spec.routes[name]
    namespace = route.namespace or spec.namespace.name
    parent = {"name": route.gateway.name, "namespace": route.gateway.namespace, "sectionName": route.gateway.listener}
    backend = None
    if route.backend is not None:
        app = spec.apps[route.backend.app]
        service_port = (next(iter(app.service.ports.values())).port if app.service.ports else app.service.port) if app.service else 80
        port = route.backend.port or service_port
        backend = {"name": route.backend.app, "port": port}
    redirect = route.redirect.model_dump(exclude_none=True) if route.redirect else None
    views = [{"name": name, "namespace": namespace, "hostnames": route.hostnames, "parent": parent, "backend": backend, "redirect": redirect}]
    if route.httpsRedirectFrom:
        views.append(
            {
                "name": f"{name}-https-redirect",
                "namespace": namespace,
                "hostnames": route.hostnames,
                "parent": {**parent, "sectionName": route.httpsRedirectFrom},
                "backend": None,
                "redirect": {"scheme": "https", "statusCode": 301},
            }
        )
    return views


def build_units(
    spec: Environment,
    name: str,
    instance: str,
    root: Path | None = None,
    problems: Problems | None = None,
    locate: Callable[[tuple[str | int, ...]], Location | None] = lambda origin: None,
) -> list[RenderUnit]:
    """Every (template, context) pair this environment renders, in spec order; project components need `root`."""
    labels = base_labels(name, instance, spec.labels)
    env = {"name": name, "instance": instance, "namespace": spec.namespace.name, "labels": labels}
    units: list[RenderUnit] = []

    def add(template: str, item: Any, origin: tuple[str | int, ...], item_name: str = "") -> None:
        units.append(RenderUnit(template, {"env": env, "item": item, "name": item_name}, origin))

    ns = spec.namespace
    if ns.create:
        add("namespace.yaml.j2", {"name": ns.name}, ("namespace",), ns.name)
    if ns.quota:
        add("resourcequota.yaml.j2", {"namespace": ns.name, **ns.quota.model_dump()}, ("namespace", "quota"))
    if ns.networkPolicy:
        add("networkpolicy.yaml.j2", {"namespace": ns.name, **ns.networkPolicy.model_dump()}, ("namespace", "networkPolicy"))
    if spec.gateway and spec.gateway.createNamespace:
        add("namespace.yaml.j2", {"name": spec.gateway.namespace}, ("gateway", "namespace"), spec.gateway.namespace)
    for sname, secret in spec.secrets.items():
        if secret.external is not None:
            view = {"namespace": secret.namespace or ns.name, **secret.external.model_dump()}
            add("externalsecret.yaml.j2", view, ("secrets", sname), sname)
    for cname, data in spec.configMaps.items():
        add("configmap.yaml.j2", {"namespace": ns.name, "data": data}, ("configMaps", cname), cname)
    for sa_name, account in spec.serviceAccounts.items():
        view = {"namespace": account.namespace or ns.name, "annotations": dict(account.annotations), "automount": account.automountToken}
        add("serviceaccount.yaml.j2", view, ("serviceAccounts", sa_name), sa_name)
    for claim_name, claim in spec.claims.items():
        add("pvc.yaml.j2", {**claim.model_dump(), "namespace": claim.namespace or ns.name}, ("claims", claim_name), claim_name)
    for app_name, app in spec.apps.items():
        add("app.yaml.j2", app_view(app_name, app, spec), ("apps", app_name), app_name)
    for issuer_name, issuer in spec.issuers.items():
        add("clusterissuer.yaml.j2", issuer.model_dump(), ("issuers", issuer_name), issuer_name)
    for cert_name, cert in spec.certificates.items():
        add("certificate.yaml.j2", cert.model_dump(), ("certificates", cert_name), cert_name)
    if spec.gateway:
        add("gateway.yaml.j2", spec.gateway.model_dump(), ("gateway",), spec.gateway.name)
    for route_name in spec.routes:
        for view in route_views(route_name, spec):
            add("httproute.yaml.j2", view, ("routes", route_name), view["name"])
    for cron_name, cron in spec.cronJobs.items():
        add("cronjob.yaml.j2", cronjob_view(cron_name, cron, spec), ("cronJobs", cron_name), cron_name)
    for job_name in spec.job_order():
        if job_name == "create-database":
            add("job.yaml.j2", database_job_view(spec), ("database",), job_name)
        else:
            add("job.yaml.j2", job_view(job_name, spec.jobs[job_name], spec), ("jobs", job_name), job_name)
    if spec.components:
        units.extend(instance_units(spec, env, root or Path.cwd(), problems if problems is not None else Problems(), locate))
    for index, template in enumerate(spec.templates):
        units.append(
            RenderUnit(template, {"env": env, "spec": spec.model_dump(mode="json"), "item": None, "name": ""}, ("templates", index))
        )
    return units
