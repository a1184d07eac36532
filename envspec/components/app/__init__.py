"""Apps: a Deployment or StatefulSet, its Service, and optionally a PodDisruptionBudget and a
HorizontalPodAutoscaler (rules: `rules.pdb_below_replicas`, `rules.rwo_recreate`)."""

from __future__ import annotations

from typing import Any

from envspec.components.base import Builder, Builtin
from envspec.components.pods import container_view, pod_extras
from envspec.spec.base import plain
from envspec.spec.models import App, Environment


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
        "disruptionBudget": plain(app.disruptionBudget) if app.disruptionBudget else None,
    }


def units(b: Builder) -> None:
    for app_name, app in b.spec.apps.items():
        b.add("app", "app.yaml.j2", app_view(app_name, app, b.spec), ("apps", app_name), app_name)


COMPONENT = Builtin(
    "app", ("apps",), ("Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"), units
)
