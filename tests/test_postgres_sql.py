"""The database Jobs' SQL, run for real against PostgreSQL.

Each test takes the Job object exactly as envspec renders it (create) or builds it (drop), and runs
its container command -- `sh -c <script>` -- with the container's environment: plain values as
written (PGHOST/PGPORT aimed at the test server instead of the cluster Service), `secretKeyRef`s
resolved from the Secrets apply would hold. Nothing here copies the SQL.
"""

from __future__ import annotations

import subprocess
from typing import Any

from envspec.components.database.lifecycle import drop_database_job
from envspec.pipeline import compile_environment
from tests.postgres import Server
from tests.test_kube_helpers import REPO


def compiled(pr: int, *sets: str) -> Any:
    return compile_environment("preview-pr", root=REPO, params=[f"pr={pr}"], sets=list(sets))


def create_job(pr: int, *sets: str) -> dict[str, Any]:
    jobs = [o for o in compiled(pr, *sets).objects if o["kind"] == "Job" and o["metadata"]["name"] != "migrate"]
    assert len(jobs) == 1
    return jobs[0]


def drop_job(pr: int) -> dict[str, Any]:
    plan = compiled(pr).plan
    return drop_database_job(plan.database_drop, plan)


def run_job(server: Server, job: dict[str, Any], secrets: dict[tuple[str, str], str]) -> subprocess.CompletedProcess[str]:
    """Run the Job's container command with its environment; secrets maps (secret, key) -> value."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[(ref["name"], ref["key"])]
    env.update(PGHOST=server.host, PGPORT=str(server.port))  # the test server, not the cluster Service
    assert container["command"][:2] == ["sh", "-c"]
    return subprocess.run(container["command"], env=server.env(**env), capture_output=True, text=True, timeout=60,
                          check=False)


def admin_secrets(server: Server, job: dict[str, Any], role_password: str | None = None) -> dict[tuple[str, str], str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in container["env"] if "valueFrom" in v}
    out = {(refs["PGUSER"]["name"], "username"): server.user, (refs["PGPASSWORD"]["name"], "password"): server.password}
    if "APP_PASSWORD" in refs and role_password is not None:
        out[(refs["APP_PASSWORD"]["name"], "password")] = role_password
    return out


def query(server: Server, sql: str, *, user: str | None = None, password: str | None = None,
          database: str = "postgres") -> subprocess.CompletedProcess[str]:
    env = server.env(PGDATABASE=database)
    if user is not None:
        env.update(PGUSER=user, PGPASSWORD=password or "")
    return subprocess.run(["psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env, capture_output=True,
                          text=True, timeout=30, check=False)


def value(server: Server, sql: str) -> str:
    done = query(server, sql)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_create_job_creates_the_database_owned_by_its_own_login_role(postgres: Server) -> None:
    job = create_job(9101)
    done = run_job(postgres, job, admin_secrets(postgres, job, "first-password-9101"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert value(postgres, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'aphiria_pr_9101'") \
        == "aphiria_pr_9101"
    flags = value(postgres, "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = 'aphiria_pr_9101'")
    assert flags == "t|f|f|f"
    # The role logs in to its database with the Secret's password and can create its tables there.
    as_role = query(postgres, "CREATE TABLE t (id int); SELECT current_user", user="aphiria_pr_9101",
                    password="first-password-9101", database="aphiria_pr_9101")
    assert as_role.returncode == 0 and as_role.stdout.strip() == "aphiria_pr_9101", as_role.stderr
    # Nobody else may connect to it (REVOKE ALL ... FROM PUBLIC).
    assert query(postgres, "CREATE ROLE outsider_9101 LOGIN PASSWORD 'outsider-pw'").returncode == 0
    other = query(postgres, "SELECT 1", user="outsider_9101", password="outsider-pw", database="aphiria_pr_9101")
    assert other.returncode != 0 and "permission denied for database" in other.stderr


def test_create_job_is_idempotent(postgres: Server) -> None:
    job = create_job(9102)
    secrets = admin_secrets(postgres, job, "password-9102")
    first = run_job(postgres, job, secrets)
    assert first.returncode == 0, first.stdout + first.stderr
    assert query(postgres, "CREATE TABLE kept (id int)", user="aphiria_pr_9102", password="password-9102",
                 database="aphiria_pr_9102").returncode == 0
    again = run_job(postgres, job, secrets)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ERROR" not in again.stdout + again.stderr
    assert value(postgres, "SELECT count(*) FROM pg_database WHERE datname = 'aphiria_pr_9102'") == "1"
    kept = query(postgres, "SELECT count(*) FROM kept", user="aphiria_pr_9102", password="password-9102",
                 database="aphiria_pr_9102")
    assert kept.returncode == 0 and kept.stdout.strip() == "0"  # the data survived the re-run


def test_a_rerun_with_a_new_password_moves_the_role_to_it(postgres: Server) -> None:
    job = create_job(9103)
    assert run_job(postgres, job, admin_secrets(postgres, job, "old-password-9103")).returncode == 0
    assert query(postgres, "SELECT 1", user="aphiria_pr_9103", password="old-password-9103",
                 database="aphiria_pr_9103").returncode == 0
    changed = run_job(postgres, job, admin_secrets(postgres, job, "new-password-9103"))
    assert changed.returncode == 0, changed.stdout + changed.stderr
    old = query(postgres, "SELECT 1", user="aphiria_pr_9103", password="old-password-9103", database="aphiria_pr_9103")
    assert old.returncode != 0 and "password authentication failed" in old.stderr
    assert query(postgres, "SELECT 1", user="aphiria_pr_9103", password="new-password-9103",
                 database="aphiria_pr_9103").returncode == 0


def test_drop_job_drops_database_and_role_and_verifies_it(postgres: Server) -> None:
    job = create_job(9104)
    assert run_job(postgres, job, admin_secrets(postgres, job, "password-9104")).returncode == 0
    # A live session must not keep the database alive (DROP ... WITH (FORCE)).
    holder = subprocess.Popen(["psql", "-X", "-qtA", "-c", "SELECT pg_sleep(30)"],
                              env=postgres.env(PGUSER="aphiria_pr_9104", PGPASSWORD="password-9104",
                                               PGDATABASE="aphiria_pr_9104"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if value(postgres, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'aphiria_pr_9104'") != "0":
                break
            subprocess.run(["sleep", "0.05"], check=True)
        drop = drop_job(9104)
        done = run_job(postgres, drop, admin_secrets(postgres, drop))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "dropped"
    assert value(postgres, "SELECT count(*) FROM pg_database WHERE datname = 'aphiria_pr_9104'") == "0"
    assert value(postgres, "SELECT count(*) FROM pg_roles WHERE rolname = 'aphiria_pr_9104'") == "0"
    again = run_job(postgres, drop, admin_secrets(postgres, drop))
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == "absent", again.stdout + again.stderr


def test_drop_leaves_other_databases_alone(postgres: Server) -> None:
    for pr in (9105, 9106):
        job = create_job(pr)
        assert run_job(postgres, job, admin_secrets(postgres, job, f"password-{pr}")).returncode == 0
    drop = drop_job(9105)
    assert run_job(postgres, drop, admin_secrets(postgres, drop)).returncode == 0
    assert value(postgres, "SELECT datname FROM pg_database WHERE datname IN ('aphiria_pr_9105', 'aphiria_pr_9106')") \
        .splitlines() == ["aphiria_pr_9106"]
    assert query(postgres, "SELECT 1", user="aphiria_pr_9106", password="password-9106",
                 database="aphiria_pr_9106").returncode == 0


def test_a_failing_create_job_prints_no_admin_user_name_nor_any_password(postgres: Server) -> None:
    job = create_job(9107)
    secrets = admin_secrets(postgres, job, "role-password-9107")
    secrets[(next(k for k in secrets if k[1] == "password" and k[0] == "postgres-admin"))] = "wrong-admin-password"
    done = run_job(postgres, job, secrets)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "password authentication failed for user" in output and "<masked>" in output  # the log still says why
    for needle in (postgres.user, "wrong-admin-password", postgres.password, "role-password-9107"):
        assert needle not in output


def test_a_failing_sql_statement_masks_the_role_password(postgres: Server) -> None:
    # An admin that may log in but not create roles: the Job fails inside its SQL, and psql reports it.
    assert query(postgres, "CREATE ROLE weak_admin_9108 LOGIN PASSWORD 'weak-admin-pw'").returncode == 0
    job = create_job(9108)
    secrets = admin_secrets(postgres, job, "role-password-9108")
    secrets.update({(k[0], "username"): "weak_admin_9108" for k in list(secrets) if k[1] == "username"})
    secrets.update({(k[0], "password"): "weak-admin-pw" for k in list(secrets) if k == ("postgres-admin", "password")})
    done = run_job(postgres, job, secrets)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "permission denied to create role" in output, output
    for needle in ("weak_admin_9108", "weak-admin-pw", "role-password-9108"):
        assert needle not in output
    assert value(postgres, "SELECT count(*) FROM pg_database WHERE datname = 'aphiria_pr_9108'") == "0"


def test_create_job_without_a_role_creates_only_the_database(postgres: Server) -> None:
    job = create_job(9109, "database.appSecret=null")
    env_names = {v["name"] for v in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "APP_PASSWORD" not in env_names
    for _ in range(2):  # and idempotently
        done = run_job(postgres, job, admin_secrets(postgres, job))
        assert done.returncode == 0, done.stdout + done.stderr
    assert value(postgres, "SELECT count(*) FROM pg_database WHERE datname = 'aphiria_pr_9109'") == "1"
    assert value(postgres, "SELECT count(*) FROM pg_roles WHERE rolname = 'aphiria_pr_9109'") == "0"


def test_the_server_is_real(postgres: Server) -> None:
    # Guard against a stand-in: this is PostgreSQL answering over TCP with password authentication.
    assert value(postgres, "SHOW server_version_num").isdigit()
    assert query(postgres, "SELECT 1", user=postgres.user, password="not-the-password").returncode != 0


# --- end to end: apply (fake API server) hands the Job its password; PostgreSQL (real) checks it ---


def _applied_job_run(postgres: Server, fake: Any, name: str, namespace: str) -> subprocess.CompletedProcess[str]:
    """Run the Job as the fake cluster holds it, its role password read from the Secret apply wrote there."""
    import base64

    job = fake.get("batch/v1", "Job", name, namespace)
    container = job["spec"]["template"]["spec"]["containers"][0]
    secrets = admin_secrets(postgres, job)
    for var in container["env"]:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if var["name"] == "APP_PASSWORD":
            live = fake.get("v1", "Secret", ref["name"], namespace)
            secrets[(ref["name"], ref["key"])] = base64.b64decode(live["data"][ref["key"]]).decode()
    return run_job(postgres, job, secrets)


def test_the_role_follows_the_secret_apply_generated(postgres: Server, tmp_path: Any) -> None:
    import base64

    from envspec.kube.apply import ApplyOptions, apply_plan
    from envspec.kube.client import Kube, load_target
    from tests.fakes.kube_server import FakeKube
    from tests.test_kube_helpers import compile_preview_pr, fast_wait, no_sleep_retry, seed_shared_infrastructure

    ns, job_name = "preview-pr-107", "envspec-create-aphiria-pr-107-0b7eadba"

    def app_password(fake: FakeKube) -> str:
        return base64.b64decode(fake.get("v1", "Secret", "app-db", ns)["data"]["password"]).decode()

    def login(password: str) -> int:
        return query(postgres, "SELECT 1", user="aphiria_pr_107", password=password,
                     database="aphiria_pr_107").returncode

    with FakeKube() as fake:
        seed_shared_infrastructure(fake)
        _, api_client = load_target(fake.write_kubeconfig(tmp_path / "kubeconfig"), None)
        with Kube(api_client, retry=no_sleep_retry(), request_timeout=5.0) as kube:
            plan = compile_preview_pr().plan
            options = ApplyOptions(environ={"GHCR_TOKEN": "t0ken-for-tests"}, wait=fast_wait(), check_helm=False)
            apply_plan(kube, plan, options)
            first = app_password(fake)
            done = _applied_job_run(postgres, fake, job_name, "default")
            assert done.returncode == 0, done.stdout + done.stderr
            assert login(first) == 0
            # The shared namespace holds only the SCRAM verifier, which PostgreSQL stored as it is.
            copy = fake.get("v1", "Secret", "envspec-role-aphiria-pr-107-0b7eadba", "default")
            verifier = base64.b64decode(copy["data"]["password"]).decode()
            assert verifier.startswith("SCRAM-SHA-256$4096:") and first not in verifier
            assert value(postgres, "SELECT rolpassword FROM pg_authid WHERE rolname = 'aphiria_pr_107'") == verifier

            fake.delete_direct("v1", "Secret", "app-db", ns)  # lost: apply generates a new password...
            result = apply_plan(kube, plan, options)
            second = app_password(fake)
            assert second != first and f"Job/default/{job_name}" in result.replaced  # ...and re-runs the role Job
            done = _applied_job_run(postgres, fake, job_name, "default")
            assert done.returncode == 0, done.stdout + done.stderr
            assert login(second) == 0 and login(first) != 0

            drop = drop_job(107)
            assert run_job(postgres, drop, admin_secrets(postgres, drop)).returncode == 0
            assert value(postgres, "SELECT count(*) FROM pg_roles WHERE rolname = 'aphiria_pr_107'") == "0"


# --- the Jobs' output filter, for any credential values ---------------------------------------

from hypothesis import example, given, settings, strategies as st  # noqa: E402

from envspec.components.database.lifecycle import MASK, scrubbed  # noqa: E402

# A value inside the fixed text (e.g. "then" in "authentication") would mask the text the test looks for.
_FIXED = "FATAL: password authentication failed for user ALTER ROLE x PASSWORD"
_values = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=4, max_size=24).filter(
    lambda v: v not in MASK and v not in _FIXED)


@settings(max_examples=40, deadline=None)
@given(user=_values, password=_values, role_password=_values)
@example(user="aphiria", password="aphiria-secret", role_password="aphiria-secret-2")  # one inside another
def test_the_job_output_filter_masks_every_credential_and_keeps_the_exit_status(
    user: str, password: str, role_password: str
) -> None:
    body = ('printf \'%s\\n\' "FATAL: password authentication failed for user \\"$PGUSER\\" ($PGPASSWORD)"\n'
            'printf \'%s\\n\' "ALTER ROLE x PASSWORD \'$APP_PASSWORD\'" >&2\nexit 3')
    env = {"PATH": "/usr/bin:/bin", "PGUSER": user, "PGPASSWORD": password, "APP_PASSWORD": role_password}
    done = subprocess.run(["sh", "-c", scrubbed(body)], env=env, capture_output=True, text=True, timeout=10,
                          check=False)
    assert done.returncode == 3
    assert MASK in done.stdout
    # The message's own words survive unless a credential happens to occur inside them (then they are masked too).
    fixed = "password authentication failed for user"
    if not any(value in fixed for value in (user, password, role_password)):
        assert fixed in done.stdout
    for value in (user, password, role_password):
        assert value not in done.stdout + done.stderr
    if (user, password, role_password) == ("aphiria", "aphiria-secret", "aphiria-secret-2"):
        assert "secret" not in done.stdout  # no tail of a longer value is left behind a shorter one's mask
