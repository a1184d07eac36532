"""The app component's rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from envspec.checks.context import RuleContext


def pdb_below_replicas(ctx: RuleContext) -> None:
    """minAvailable equal to the replica count blocks every node drain."""
    for name, app in ctx.spec.apps.items():
        floor = app.autoscale.minReplicas if app.autoscale else app.replicas
        if app.disruptionBudget and app.disruptionBudget.minAvailable >= floor:
            what = "autoscale.minReplicas" if app.autoscale else "replicas"
            ctx.error(
                "pdb-below-replicas",
                ("apps", name, "disruptionBudget", "minAvailable"),
                f"minAvailable {app.disruptionBudget.minAvailable} must be below {what} ({floor}), or no pod can ever be evicted",
            )


def rwo_recreate(ctx: RuleContext) -> None:
    """A rolling update can't mount a ReadWriteOnce volume that the old pod still holds: use Recreate."""
    spec = ctx.spec
    for name, app in spec.apps.items():
        claims = [v.claim for v in app.volumes.values() if v.claim]
        rwo = [c for c in claims if c in spec.claims and spec.claims[c].accessMode in ("ReadWriteOnce", "ReadWriteOncePod")]
        if rwo and app.kind == "Deployment" and app.replicas == 1 and app.strategy != "Recreate":
            ctx.error(
                "rwo-recreate",
                ("apps", name, "strategy"),
                f"mounts ReadWriteOnce claim {rwo[0]!r} with one replica, so a rolling update deadlocks; set strategy: Recreate",
            )
