"""Where `envspec gc` meets the cluster, the compiler and GitHub.

`envspec.github.gc` decides; this module supplies its inputs (instances from
the ApplySet parents, closed PRs from a file or GitHub) and its one action
(destroy one instance through the destroy engine, with the plan compiled for
that PR, so gc drops the database exactly as `cleanup.yml` would).
Imported inside the `gc` command only: it pulls in the kubernetes client.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

from envspec.errors import SpecError
from envspec.github.gc import ClosedLookup, PreviewInstance, parse_closed_prs
from envspec.kube.client import Kube
from envspec.kube.inventory import parse_time
from envspec.kube.lease import DEFAULT_LOCK_TIMEOUT
from envspec.spec.preview import PreviewSpec

if TYPE_CHECKING:  # pragma: no cover
    from envspec.plan import DeployPlan

# Any PR number the spec accepts: a preview's cluster binding (what gc connects by) does not depend on it.
PROBE_PR = "1"


def closed_lookup(closed_prs: IO[str] | None, repo: str | None) -> ClosedLookup | None:
    """From --closed-prs (file or stdin), else GitHub when GITHUB_TOKEN is set, else None."""
    if closed_prs is not None:
        source = "<stdin>" if getattr(closed_prs, "name", "-") in ("-", "<stdin>") else str(closed_prs.name)
        numbers = parse_closed_prs(closed_prs.read(), source)
        return numbers.__contains__
    if not os.environ.get("GITHUB_TOKEN"):
        return None
    from envspec.github.api import GitHubClient, resolve_repo

    client = GitHubClient.from_env()
    owner_repo = resolve_repo(repo)

    def is_closed(number: int) -> bool:
        return not client.pull_request(owner_repo, number).is_open

    return is_closed


def find_previews(kube: Kube, preview: PreviewSpec) -> list[PreviewInstance]:
    """Instances of one preview environment recorded by ApplySet parents (the destroy engine's `list_instances`)."""
    from envspec.kube.destroy import list_instances

    return [_to_preview(info, preview) for info in list_instances(kube, preview.environment)]


def _to_preview(info: Any, preview: PreviewSpec | None = None) -> PreviewInstance:
    instance = str(info.instance)
    return PreviewInstance(
        instance=instance,
        environment=str(info.environment or ""),
        created=parse_time(getattr(info, "created", None)),
        last_applied=parse_time(getattr(info, "last_applied", None)),
        pr_number=preview.pr_of(instance) if preview else None,
    )


def compiled_plan(root: Path | None, preview: PreviewSpec) -> Callable[[int], "DeployPlan"]:
    """A preview's plan for a PR number, compiled from the project (what `envspec destroy` would use)."""
    from envspec.pipeline import compile_environment

    def plan_for(pr: int) -> "DeployPlan":
        return compile_environment(preview.environment, root=root, params=[f"{preview.pr_param}={pr}"]).plan

    return plan_for


def destroyer(
    kube: Kube,
    plan_for: Callable[[int], "DeployPlan"],
    *,
    timeout: float,
    report: Callable[[str], None] = lambda line: None,
    interval: float = 2.0,
    grace_seconds: float = 30.0,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    recheck: Callable[[PreviewInstance], str | None] | None = None,
) -> Callable[[PreviewInstance], str | None]:
    """A function that destroys one preview instance; raises on failure (gc reports and goes on).

    The destroy engine takes the instance's Lease, so gc never deletes a preview while an apply
    of it runs: it waits up to `lock_timeout`, then reports the instance as failed, naming the holder.
    Once the lease is held, `recheck` decides again from the parent as it is then (an apply may have
    refreshed it while gc waited); a note it returns keeps the instance, and the function returns it.
    """
    from envspec.kube.destroy import DestroyOptions, destroy_instance
    from envspec.kube.lease import LeaseSettings
    from envspec.kube.wait import WaitSettings

    def destroy(item: PreviewInstance) -> str | None:
        if item.pr is None:  # decide() never selects these; refuse anyway
            raise SpecError(f"{item.instance}: not a preview instance")
        plan = plan_for(item.pr)
        if plan.instance != item.instance:
            raise SpecError(f"the {item.environment} plan for PR {item.pr} is instance {plan.instance}, not {item.instance}")
        options = DestroyOptions(
            grace_seconds=grace_seconds,
            wait=WaitSettings(timeout=timeout, interval=interval),
            report=report,
            lease=LeaseSettings(timeout=lock_timeout),
            recheck=None if recheck is None else lambda inventory: recheck(_refreshed(item, inventory)),
        )
        return destroy_instance(kube, plan, options).kept

    return destroy


def _refreshed(item: PreviewInstance, inventory: Any) -> PreviewInstance:
    """`item` with the times its ApplySet parent records now."""
    return PreviewInstance(
        instance=item.instance,
        environment=item.environment,
        created=parse_time(getattr(inventory, "creation_timestamp", None)),
        last_applied=parse_time(getattr(inventory, "last_applied", None)),
    )
