"""The PR comment: one snapshot per kind, truncation, the marker, and no secret ever."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from envspec.github.comment import (
    GITHUB_COMMENT_LIMIT,
    ChangeSummary,
    changes_from_json,
    collect_images,
    comment_input,
    mask_secret_data,
    render_comment,
)
from envspec.plan import ClusterBinding, DeployPlan, SecretSource

WEB_DIGEST = "sha256:" + "a1" * 32
API_TAG = "ghcr.io/aphiria/aphiria.com-api:pr-107"
RUN_URL = "https://github.com/aphiria/aphiria.com/actions/runs/4242"
CANARY = "canary-Zq81vX0pLm"


class MarkdownSnapshot(SingleFileSnapshotExtension):
    """Stores each snapshot as a readable .md file under __snapshots__/test_comment/."""

    file_extension = "md"
    _write_mode = WriteMode.TEXT


@pytest.fixture
def md(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(MarkdownSnapshot)


def _deployment(name: str, image: str, *, init_image: str | None = None) -> dict:
    pod: dict = {"containers": [{"name": name, "image": image}]}
    if init_image:
        pod["initContainers"] = [{"name": "copy-code", "image": init_image}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "preview-pr-107"},
        "spec": {"template": {"spec": pod}},
    }


def _plan() -> DeployPlan:
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "preview-pr-107"}},
        _deployment("web", f"ghcr.io/aphiria/aphiria.com-web@{WEB_DIGEST}"),
        _deployment("api", API_TAG, init_image=API_TAG),
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "db-create", "namespace": "preview-pr-107"},
            "spec": {"template": {"spec": {"containers": [{"name": "psql", "image": "postgres:16"}]}}},
        },
    ]
    return DeployPlan(
        environment="preview-pr",
        instance="preview-pr-107",
        objects=objects,
        cluster=ClusterBinding(context="do-nyc3-preview"),
        labels={"app.kubernetes.io/managed-by": "envspec"},
        requires_pinned_images=True,  # as preview-pr: the apps' own images must be pinned, sidecars and Jobs not
        app_images=sorted([f"ghcr.io/aphiria/aphiria.com-web@{WEB_DIGEST}", API_TAG]),
        secrets=[SecretSource(name="db", namespace="preview-pr-107", data_from_env={"password": "DB_PASSWORD"})],
        outputs={
            "webUrl": "https://107.pr.aphiria.com",
            "apiUrl": "https://107.pr-api.aphiria.com",
            "databaseName": "aphiria_pr_107",
            "namespace": "preview-pr-107",
        },
    )


DIFF = """\
--- live/ConfigMap/preview-pr-107/web-config
+++ envspec/ConfigMap/preview-pr-107/web-config
@@ -1,4 +1,4 @@
 data:
-  API_URI: https://107.pr-api.aphiria.com/old
+  API_URI: https://107.pr-api.aphiria.com
 metadata:
   name: web-config
--- live/Secret/preview-pr-107/db
+++ envspec/Secret/preview-pr-107/db
@@ -1,3 +1,3 @@
 data:
-  password: <masked: changed>
+  password: <masked: changed>
   username: <masked: unchanged>
--- /dev/null
+++ envspec/Deployment/preview-pr-107/api
@@ -0,0 +1,3 @@
+apiVersion: apps/v1
+kind: Deployment
+metadata: {name: api, namespace: preview-pr-107}
"""

CHANGES = ChangeSummary(
    created=["Deployment/preview-pr-107/api"],
    changed=["ConfigMap/preview-pr-107/web-config", "Secret/preview-pr-107/db"],
    pruned=["Service/preview-pr-107/old-api"],
    diff=DIFF,
)


def test_plan_comment(md) -> None:  # type: ignore[no-untyped-def]
    body = render_comment(comment_input(_plan(), "plan", changes=CHANGES, run_url=RUN_URL, commit="0123abc"))
    assert body == md


def test_deployed_comment(md) -> None:  # type: ignore[no-untyped-def]
    body = render_comment(comment_input(_plan(), "deployed", changes=CHANGES, run_url=RUN_URL, commit="0123abc"))
    assert body == md


def test_destroyed_comment(md) -> None:  # type: ignore[no-untyped-def]
    body = render_comment(comment_input(_plan(), "destroyed", run_url=RUN_URL))
    assert body == md
    assert "<details>" not in body and "| Image |" not in body


def test_failed_comment(md) -> None:  # type: ignore[no-untyped-def]
    error = "Deployment/preview-pr-107/api: not ready: pod api-7d9 ImagePullBackOff: manifest unknown"
    body = render_comment(comment_input(_plan(), "failed", error=error, run_url=RUN_URL))
    assert body == md
    assert "ImagePullBackOff" in body


def test_plan_without_changes(md) -> None:  # type: ignore[no-untyped-def]
    body = render_comment(comment_input(_plan(), "plan", changes=ChangeSummary()))
    assert body == md
    assert "No object changes" in body


def _long_diff(lines: int) -> str:
    out = ["--- live/ConfigMap/preview-pr-107/big", "+++ envspec/ConfigMap/preview-pr-107/big", "@@ -1 +1 @@", " data:"]
    out += [f"+  key{i:05d}: value-{i:05d}-" + "x" * 40 for i in range(lines)]
    return "\n".join(out) + "\n"


def test_truncated_comment(md) -> None:  # type: ignore[no-untyped-def]
    changes = ChangeSummary(changed=["ConfigMap/preview-pr-107/big"], diff=_long_diff(200))
    body = render_comment(comment_input(_plan(), "plan", changes=changes, run_url=RUN_URL), max_chars=4000)
    assert body == md
    assert len(body) <= 4000


@pytest.mark.parametrize("kind", ["plan", "deployed", "destroyed", "failed"])
def test_marker_is_first_line(kind: str) -> None:
    body = render_comment(comment_input(_plan(), kind, changes=CHANGES, error="boom"))  # type: ignore[arg-type]
    assert body.split("\n", 1)[0] == "<!-- envspec:preview-pr-107 -->"
    assert body.count("<!-- envspec:") == 1


def test_truncation_under_github_limit_keeps_blocks_closed() -> None:
    diff = _long_diff(20_000)
    body = render_comment(comment_input(_plan(), "plan", changes=ChangeSummary(changed=["x"], diff=diff), run_url=RUN_URL))
    assert len(body) <= GITHUB_COMMENT_LIMIT
    assert body.count("<details>") == body.count("</details>") == 1
    assert body.index("```diff") < body.rindex("\n```\n") < body.index("</details>")
    shown = body[body.index("```diff\n") + 8 : body.rindex("\n```\n")].split("\n")
    source = diff.rstrip("\n").split("\n")
    assert shown == source[: len(shown)]  # whole lines, in order, nothing broken mid-line
    cut = len(source) - len(shown)
    assert f"Diff truncated: {cut} of {len(source)} lines not shown." in body
    assert "envspec-diff" in body and RUN_URL in body


def test_diff_with_backticks_gets_a_longer_fence() -> None:
    diff = "--- live/ConfigMap/ns/readme\n+++ envspec/ConfigMap/ns/readme\n+  README: |\n+    ```\n+    code\n+    ```\n"
    body = render_comment(comment_input(_plan(), "plan", changes=ChangeSummary(changed=["x"], diff=diff)))
    assert "````diff\n" in body and "\n````\n" in body


def test_unpinned_images_are_flagged_and_digests_shown_whole() -> None:
    body = render_comment(comment_input(_plan(), "plan"))
    assert f"ghcr.io/aphiria/aphiria.com-web@{WEB_DIGEST}` | yes |" in body
    assert f"`{API_TAG}` | **no: apply refuses it without a sha256 digest**" in body
    # The database Job's postgres image is not an app image apply would refuse: listed, not warned about.
    assert "`postgres:16` | no |" in body
    assert "1 image(s) are not pinned" in body and "apply` refuses them" in body


def test_no_warning_where_apply_would_refuse_nothing() -> None:
    import dataclasses

    body = render_comment(comment_input(dataclasses.replace(_plan(), requires_pinned_images=False), "plan"))
    assert "[!WARNING]" not in body and f"`{API_TAG}` | no |" in body


def test_collect_images_sees_init_containers_and_cronjobs() -> None:
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "ns"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}},
    }
    images = collect_images([*_plan().objects, cron])
    by_image = {u.image: u.used_by for u in images}
    assert by_image[API_TAG] == ("Deployment/preview-pr-107/api (api)", "Deployment/preview-pr-107/api (copy-code)")
    assert by_image["busybox:1"] == ("CronJob/ns/nightly (c)",)


def test_render_is_deterministic() -> None:
    make = lambda: render_comment(comment_input(_plan(), "deployed", changes=CHANGES, run_url=RUN_URL))  # noqa: E731
    assert make() == make()


def test_secret_values_are_masked_even_if_diff_forgot() -> None:
    leaked = f"""\
--- live/Secret/preview-pr-107/db
+++ envspec/Secret/preview-pr-107/db
@@ -1,6 +1,6 @@
 data:
-  password: {CANARY}old
+  password: {CANARY}
 stringData:
   url: postgres://u:{CANARY}@db
 type: Opaque
--- live/ConfigMap/preview-pr-107/web
+++ envspec/ConfigMap/preview-pr-107/web
 data:
+  GREETING: hello
"""
    masked = mask_secret_data(leaked)
    assert CANARY not in masked
    assert "+  password: <masked>" in masked and "   url: <masked>" in masked
    assert " type: Opaque" in masked and "+  GREETING: hello" in masked  # other kinds are left alone


def test_secret_data_without_headers_is_masked() -> None:
    assert CANARY not in mask_secret_data(f" data:\n+  token: {CANARY}\n")
    assert CANARY not in mask_secret_data(f"+data: {{token: {CANARY}}}\n")
    assert CANARY not in mask_secret_data(f"+kind: Secret\n+stringData:\n+  key: |\n+    {CANARY}\n")
    deleted = f"--- live/Secret/ns/db\n+++ /dev/null\n-data:\n-  password: {CANARY}\n"
    assert CANARY not in mask_secret_data(deleted)
    plain = "--- live/ConfigMap/ns/web\n+++ envspec/ConfigMap/ns/web\n data:\n+  GREETING: hello\n"
    assert mask_secret_data(plain) == plain


def test_canary_never_reaches_the_comment() -> None:
    changes = ChangeSummary(changed=[f"ConfigMap/ns/{CANARY}"], diff=f"+  note: {CANARY}\n")
    plan = _plan()
    plan.outputs["leaky"] = f"https://x/{CANARY}"
    for kind in ("plan", "deployed", "destroyed", "failed"):
        body = render_comment(
            comment_input(plan, kind, changes=changes, error=f"failed with {CANARY}"),  # type: ignore[arg-type]
            redact=[CANARY],
        )
        assert CANARY not in body, kind


def test_changes_from_json() -> None:
    text = json.dumps({"created": ["A/x"], "changed": [], "pruned": ["B/ns/y"], "diff": "+a\n", "extra": 1})
    changes = changes_from_json(text)
    assert (changes.created, changes.changed, changes.pruned, changes.diff) == (["A/x"], [], ["B/ns/y"], "+a\n")
    with pytest.raises(ValueError, match="'created' must be a list"):
        changes_from_json('{"created": "A/x"}')


def test_error_text_is_shortened() -> None:
    error = "\n".join(f"line {i}" for i in range(500))
    body = render_comment(comment_input(_plan(), "failed", error=error))
    assert "line 39\n" in body and "line 40\n" not in body
    assert "(460 more lines in the workflow log)" in body
    assert re.search(r"```text\n", body)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown comment kind"):
        render_comment(comment_input(_plan(), "merged"))  # type: ignore[arg-type]


def test_reads_the_kube_engines_change_set_json() -> None:
    from envspec.kube.diff import ChangeSet

    original = ChangeSet(created=["Namespace/preview-pr-107"], changed=[], pruned=["Service/ns/x"], diff=DIFF)
    read = changes_from_json(original.to_json())
    assert (read.created, read.changed, read.pruned, read.diff) == (original.created, [], original.pruned, DIFF)


# --- the command -----------------------------------------------------------------------------

from pathlib import Path  # noqa: E402

from click.testing import CliRunner  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"


def test_comment_command_prints_the_marked_comment(tmp_path: Path) -> None:
    from envspec.cli import main

    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"created": [], "changed": ["ConfigMap/hello-dev/hello-config"], "pruned": [], "diff": DIFF}))
    result = CliRunner().invoke(
        main, ["comment", "hello", "--root", str(EXAMPLE), "--kind", "deployed", "--changes", str(changes), "--run-url", RUN_URL]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<!-- envspec:hello -->\n### envspec: Deployed `hello`")
    assert "| url | https://hello.example.test |" in result.output and "Full diff (21 lines)" in result.output


def test_comment_command_rejects_a_bad_change_set(tmp_path: Path) -> None:
    from envspec.cli import main

    bad = tmp_path / "changes.json"
    bad.write_text('{"created": "oops"}')
    result = CliRunner().invoke(main, ["comment", "hello", "--root", str(EXAMPLE), "--changes", str(bad)])
    assert result.exit_code == 2
    assert "not a change set from `envspec diff --json-out`" in result.output
    assert "Traceback" not in result.output


def test_comment_post_needs_a_pr(monkeypatch: pytest.MonkeyPatch) -> None:
    from envspec.cli import main

    monkeypatch.setenv("GITHUB_TOKEN", "t")
    result = CliRunner().invoke(main, ["comment", "hello", "--root", str(EXAMPLE), "--post"])
    assert result.exit_code == 2 and "--post needs --pr N" in result.output


def test_conflicts_and_notes_from_the_diff_reach_the_comment() -> None:
    from envspec.github.comment import CommentInput, changes_from_json, render_comment
    from envspec.kube.diff import ChangeSet

    change_set = ChangeSet(
        changed=["Deployment/preview-pr-107/web"],
        conflicts=["Deployment/preview-pr-107/api"],
        notes=["Secret preview-pr-107/ghcr-pull: data not compared (GHCR_TOKEN not set); compared by keys only"],
        diff="",
    )
    summary = changes_from_json(change_set.to_json())
    assert summary.conflicts == ["Deployment/preview-pr-107/api"] and len(summary.notes) == 1
    body = render_comment(CommentInput(environment="preview-pr", instance="preview-pr-107", kind="plan", changes=summary))
    assert "- **Conflicts** (another field manager owns these fields; apply will stop unless `--force-conflicts`): `Deployment/preview-pr-107/api`" in body
    assert "- Note: Secret preview-pr-107/ghcr-pull: data not compared (GHCR_TOKEN not set); compared by keys only" in body
