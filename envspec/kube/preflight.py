"""Checks that need no cluster: everything that can be refused before the first request.

A deploy that fails half-way leaves a half-updated preview, so whatever can be
known up front is checked up front and reported all at once: an empty render,
unpinned images where the environment requires digests, a protected namespace
in the render, missing secret variables, a missing helm binary, and
production's confirmation.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from envspec.errors import Problem, SpecError
from envspec.kube.helm import find_helm
from envspec.objects import containers_of, identity, is_pinned, object_id
from envspec.plan import DeployPlan
from envspec.kube.secrets import Redactor, build_secrets, missing_variables

def unpinned_images(objects: Iterable[dict[str, Any]], app_images: Iterable[str] = ()) -> list[Problem]:
    """Containers running an app image (every image, if none are named) without a full sha256 digest."""
    checked = set(app_images)
    problems = []
    for obj in objects:
        for list_name, container in containers_of(obj):
            image = str(container.get("image", ""))
            if checked and image not in checked:
                continue
            if not is_pinned(image):
                problems.append(
                    Problem(
                        f"{object_id(obj)}: {list_name} {container.get('name', '?')} uses image {image!r}, "
                        "which is not pinned to a full digest (...@sha256:<64 hex>)",
                        rule="pinned-images",
                    )
                )
    return problems


def protected_namespace_objects(plan: DeployPlan) -> list[Problem]:
    protected = set(plan.protected_namespaces)
    return [
        Problem(f"{object_id(o)}: namespace {o['metadata']['name']} is protected; envspec never creates or changes it")
        for o in plan.objects
        if o.get("kind") == "Namespace" and o.get("metadata", {}).get("name") in protected
    ]


def duplicate_objects(objects: Iterable[dict[str, Any]]) -> list[Problem]:
    seen: set[tuple[str, str, str, str]] = set()
    problems = []
    for obj in objects:
        key = identity(obj)
        if key in seen:
            problems.append(Problem(f"{object_id(obj)} is rendered more than once"))
        seen.add(key)
    return problems


def confirm_if_needed(
    plan: DeployPlan, *, yes: bool, confirm: Callable[[str], bool] | None, target: str, action: str = "Apply"
) -> None:
    """Production-like environments need --yes or an interactive 'y' before anything is changed."""
    if not plan.requires_confirmation or yes:
        return
    question = f"{action} {plan.instance} on {target}?"
    if confirm is None:
        raise SpecError(f"environment {plan.environment} needs confirmation: pass --yes (no terminal to ask on)")
    if not confirm(question):
        raise SpecError("aborted: not confirmed")


def preflight(
    plan: DeployPlan,
    environ: Mapping[str, str],
    *,
    check_helm: bool = True,
    redactor: Redactor | None = None,
) -> tuple[list[dict[str, Any]], Redactor]:
    """Run every cluster-free check; return the Secret objects built from the environment."""
    if not plan.objects:
        raise SpecError(
            f"refusing to apply an empty render for {plan.instance}: it would prune everything; "
            "check the spec and parameters"
        )
    problems: list[Problem] = []
    problems += duplicate_objects(plan.objects)
    problems += protected_namespace_objects(plan)
    if plan.requires_pinned_images:
        problems += unpinned_images(plan.objects, plan.app_images)
    problems += missing_variables(plan, environ)
    if problems:
        raise SpecError(problems)
    if check_helm and plan.helm:
        find_helm()
    return build_secrets(plan, environ, redactor)
