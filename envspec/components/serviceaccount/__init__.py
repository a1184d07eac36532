"""ServiceAccounts the environment's pods run as (`serviceAccount:` on apps, jobs and cron jobs)."""

from __future__ import annotations

from envspec.components.base import Builder, Builtin


def units(b: Builder) -> None:
    for sa_name, account in b.spec.serviceAccounts.items():
        view = {
            "namespace": account.namespace or b.spec.namespace.name,
            "annotations": dict(account.annotations),
            "automount": account.automountToken,
        }
        b.add("serviceaccount", "serviceaccount.yaml.j2", view, ("serviceAccounts", sa_name), sa_name)


COMPONENT = Builtin("serviceaccount", ("serviceAccounts",), ("ServiceAccount",), units)
