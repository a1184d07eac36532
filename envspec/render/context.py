"""Stage 4: from the typed model to what templates see.

Python decides *what* gets rendered (which template, how many times, with which
derived values); templates only decide the manifest's shape. Each unit's
context is plain data: `env` (environment-wide values), `item` (the thing
being rendered) and `name`.
"""

from __future__ import annotations

from typing import Any

from envspec.database import create_job_view
from envspec.render.templates import RenderUnit
from envspec.spec.models import App, Container, Environment, Job, Resources

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


def container_view(name: str, container: Container, app: App) -> dict[str, Any]:
    return {
        "name": name,
        "image": container.image or app.image,
        "imagePullPolicy": container.imagePullPolicy or app.imagePullPolicy,
        "command": container.command,
        "args": container.args,
        "port": container.port,
        "env": _env_list(container.env, container.secretEnv),
        "envFrom": _env_from(container.configMaps, container.secrets),
        "volumeMounts": [{"name": v, "mountPath": p} for v, p in sorted(container.mounts.items())],
        "resources": _resources(container.resources),
        "readinessPath": container.readinessPath,
    }


def app_view(name: str, app: App, spec: Environment) -> dict[str, Any]:
    first_port = next((c.port for c in app.containers.values() if c.port), None)
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
        service = {"port": app.service.port, "targetPort": app.service.targetPort or first_port or app.service.port}
    return {
        "name": name,
        "namespace": app.namespace or spec.namespace.name,
        "replicas": app.replicas,
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


def job_view(name: str, job: Job, spec: Environment) -> dict[str, Any]:
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
        "ttlSecondsAfterFinished": job.ttlSecondsAfterFinished,
        "imagePullSecrets": list(spec.imagePullSecrets),
        "after": list(job.after),
        "port": None,
        "volumeMounts": [],
        "readinessPath": None,
    }


def route_views(name: str, spec: Environment) -> list[dict[str, Any]]:
    route = spec.routes[name]
    namespace = route.namespace or spec.namespace.name
    parent = {"name": route.gateway.name, "namespace": route.gateway.namespace, "sectionName": route.gateway.listener}
    backend = None
    if route.backend is not None:
        app = spec.apps[route.backend.app]
        port = route.backend.port or (app.service.port if app.service else 80)
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


def build_units(spec: Environment, name: str, instance: str) -> list[RenderUnit]:
    """Every (template, context) pair this environment renders, in spec order."""
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
    for job_name in spec.job_order():
        if job_name == "create-database":
            add("job.yaml.j2", create_job_view(spec), ("database",), job_name)
        else:
            add("job.yaml.j2", job_view(job_name, spec.jobs[job_name], spec), ("jobs", job_name), job_name)
    for index, template in enumerate(spec.templates):
        units.append(
            RenderUnit(template, {"env": env, "spec": spec.model_dump(mode="json"), "item": None, "name": ""}, ("templates", index))
        )
    return units
