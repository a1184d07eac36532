"""Views shared by the components that run pods (app, job, cronjob, database): containers, probes,
environment, security contexts. Python derives the values; the templates only place them."""

from __future__ import annotations

from typing import Any

from envspec.spec.base import plain
from envspec.spec.models import App, Container, JobPod, Probe, Resources
from envspec.spec.models import Environment


def resources_view(resources: Resources | None) -> dict[str, Any] | None:
    if resources is None:
        return None
    return plain(resources, exclude_none=True) or None


def env_list(env: dict[str, str], secret_env: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    for key, ref in sorted(secret_env.items()):
        out.append({"name": key, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}}})
    return out


def env_from(config_maps: list[str], secrets: list[str]) -> list[dict[str, Any]]:
    return [{"configMapRef": {"name": n}} for n in config_maps] + [{"secretRef": {"name": n}} for n in secrets]


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


def security_view(model: Any) -> dict[str, Any] | None:
    view = plain(model, exclude_none=True) if model is not None else None
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
        "env": env_list(container.env, container.secretEnv),
        "envFrom": env_from(container.configMaps, container.secrets),
        "volumeMounts": [{"name": v, "mountPath": p} for v, p in sorted(container.mounts.items())],
        "resources": resources_view(container.resources),
        "readinessProbe": readiness,
        "livenessProbe": probe_view(container.liveness, first),
        "startupProbe": probe_view(container.startup, first),
        "securityContext": security_view(container.securityContext),
        "lifecycle": {"preStop": {"exec": {"command": list(container.preStop)}}} if container.preStop else None,
    }


def pod_extras(service_account: str | None, security: Any, node_selector: dict[str, str] | None = None,
               grace: int | None = None) -> dict[str, Any]:
    """Pod-level settings after the containers and volumes, in this order; absent ones are left out."""
    extras: dict[str, Any] = {}
    if service_account:
        extras["serviceAccountName"] = service_account
    if security is not None:
        extras["securityContext"] = security_view(security)
    if node_selector:
        extras["nodeSelector"] = dict(node_selector)
    if grace is not None:
        extras["terminationGracePeriodSeconds"] = grace
    return extras


def single_container_view(name: str, job: JobPod, spec: Environment) -> dict[str, Any]:
    """A Job's (or a CronJob's Jobs') one container and pod, as job.yaml.j2 / cronjob.yaml.j2 place them."""
    return {
        "name": name,
        "namespace": job.namespace or spec.namespace.name,
        "image": job.image,
        "imagePullPolicy": job.imagePullPolicy,
        "command": job.command,
        "args": job.args,
        "env": env_list(job.env, job.secretEnv),
        "envFrom": env_from(job.configMaps, job.secrets),
        "resources": resources_view(job.resources),
        "backoffLimit": job.backoffLimit,
        "imagePullSecrets": list(spec.imagePullSecrets),
        "ports": [],
        "volumeMounts": [],
        "readinessProbe": None,
        "livenessProbe": None,
        "startupProbe": None,
        "securityContext": security_view(job.securityContext),
        "lifecycle": None,
        "podExtras": pod_extras(job.serviceAccount, job.podSecurityContext),
    }
