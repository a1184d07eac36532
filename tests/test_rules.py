"""Every semantic rule: a spec that triggers it (message, location, rule name) and one that passes.

The failing specs reproduce the seed project's production failures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envspec.errors import SpecError
from envspec.pipeline import compile_environment

BASE = """cluster: {context: kind-test}
namespace:
  name: demo
"""

RES = "resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}"


def compile_spec(tmp_path: Path, text: str, extra: dict[str, str] | None = None, params: list[str] | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "environments").mkdir(exist_ok=True)
    (tmp_path / "environments" / "env.yaml").write_text(text)
    for name, content in (extra or {}).items():
        (tmp_path / "environments" / name).write_text(content)
    return compile_environment("env", root=tmp_path, params=params or [])


def problems_of(tmp_path: Path, text: str, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as info:
        compile_spec(tmp_path, text, **kwargs)
    return [str(p) for p in info.value.problems]


@pytest.fixture(autouse=True)
def _chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------- quota-resources

QUOTA_APP = BASE + """  quota: {cpu: "2", memory: 4Gi, pods: 5}
apps:
  api:
    image: ghcr.io/a/api:1
    initContainers:
      db-migration:
        command: [migrate]
%s
    containers:
      php:
        %s
"""


def test_quota_requires_limits_on_init_containers(tmp_path: Path) -> None:
    # The seed's T052r: the db-migration init container had no limits, the quota rejected every API pod.
    assert problems_of(tmp_path, QUOTA_APP % ("", RES)) == [
        "environments/env.yaml:9:7: apps.api.initContainers.db-migration.resources: init container must set "
        "requests.cpu, requests.memory, limits.cpu, limits.memory: namespace demo has a ResourceQuota, "
        "which rejects pods without them [quota-resources]"
    ]


def test_quota_requires_limits_on_job_pods(tmp_path: Path) -> None:
    text = BASE + """  quota: {cpu: "2", memory: 4Gi, pods: 5}
jobs:
  db-init:
    image: postgres:16
    resources: {requests: {cpu: 100m, memory: 128Mi}}
"""
    assert problems_of(tmp_path, text) == [
        "environments/env.yaml:8:5: jobs.db-init.resources: container must set limits.cpu, limits.memory: "
        "namespace demo has a ResourceQuota, which rejects pods without them [quota-resources]"
    ]


def test_quota_resources_pass_when_every_container_sets_them(tmp_path: Path) -> None:
    init = "        " + RES
    compiled = compile_spec(tmp_path, QUOTA_APP % (init, RES))
    assert compiled.warnings == []


def test_no_quota_no_requirement(tmp_path: Path) -> None:
    text = BASE + "apps:\n  web:\n    image: nginx:1.27\n    containers: {web: {port: 80}}\n"
    assert compile_spec(tmp_path, text).objects


# ---------------------------------------------------------------- quota-fit

def fit_spec(replicas: int, cpu_limit: str, pods: int = 5) -> str:
    return BASE + f"""  quota: {{cpu: "1", memory: 1Gi, pods: {pods}}}
apps:
  web:
    image: nginx:1.27
    replicas: {replicas}
    containers:
      web:
        resources: {{requests: {{cpu: 100m, memory: 64Mi}}, limits: {{cpu: {cpu_limit}, memory: 128Mi}}}}
"""


def test_quota_fit_counts_rolling_update_surge(tmp_path: Path) -> None:
    # 2 replicas + 1 surge pod at 400m each = 1200m > 1 CPU
    assert problems_of(tmp_path, fit_spec(2, "400m")) == [
        "environments/env.yaml:4:16: namespace.quota.cpu: pods need 1200m of limits.cpu during a rolling update "
        "(with the largest Job), but the quota allows 1 [quota-fit]"
    ]


def test_quota_fit_counts_pods(tmp_path: Path) -> None:
    assert problems_of(tmp_path, fit_spec(3, "100m", pods=3)) == [
        "environments/env.yaml:4:40: namespace.quota.pods: 4 pods can run at once (replicas + surge + one Job), "
        "but the quota allows 3 [quota-fit]"
    ]


def test_quota_fit_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, fit_spec(2, "300m")).objects


# ---------------------------------------------------------------- pinned-images

PIN = BASE + """requirePinnedImages: true
apps:
  web:
    image: %s
    containers: {web: {port: 80}}
"""


def test_unpinned_app_image_warns_in_render(tmp_path: Path) -> None:
    compiled = compile_spec(tmp_path, PIN % "ghcr.io/a/web:pr-107")
    assert [str(w) for w in compiled.warnings] == [
        "environments/env.yaml:7:12: warning: apps.web.image: image 'ghcr.io/a/web:pr-107' is not pinned by digest; "
        "apply will refuse it (pass the image as name@sha256:<64 hex>) [pinned-images]"
    ]
    assert compiled.plan.requires_pinned_images and compiled.plan.app_images == ["ghcr.io/a/web:pr-107"]


def test_truncated_digest_is_an_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path, PIN % "ghcr.io/a/web@sha256:0123456789ab") == [
        "environments/env.yaml:7:12: apps.web.image: digest is truncated: sha256 needs 64 hex characters (got 12) "
        "(got 'ghcr.io/a/web@sha256:0123456789ab') [pinned-images]"
    ]


def test_pinned_image_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, PIN % ("ghcr.io/a/web@sha256:" + "c" * 64)).warnings == []


# ---------------------------------------------------------------- fqdn-hosts

OTHER = BASE.replace("name: demo", "name: default\n  create: false") + """apps:
  db:
    image: postgres:16
    containers: {postgres: {port: 5432}}
    service: {port: 5432}
outputs: {host: %s}
"""

FQDN = BASE + """uses: {base: other}
configMaps:
  app-config:
    DB_HOST: ${base.host}
"""


def test_short_cross_namespace_host_is_an_error(tmp_path: Path) -> None:
    # The seed's T052s: DB_HOST "db" did not resolve from preview-pr-N.
    assert problems_of(tmp_path, FQDN, extra={"other.yaml": OTHER % "db"}) == [
        "environments/env.yaml:7:14: configMaps.app-config.DB_HOST: 'db' names Service db in namespace default, "
        "which does not resolve from namespace demo; use db.default.svc.cluster.local [fqdn-hosts]"
    ]


def test_partly_qualified_host_is_an_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path, FQDN, extra={"other.yaml": OTHER % "db.default"}) == [
        "environments/env.yaml:7:14: configMaps.app-config.DB_HOST: 'db.default' is a partly qualified Service name; "
        "use db.default.svc.cluster.local [fqdn-hosts]"
    ]


def test_fully_qualified_host_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, FQDN, extra={"other.yaml": OTHER % "db.default.svc.cluster.local"}).objects


# ---------------------------------------------------------------- route-parents

GATEWAY = BASE + """apps:
  web:
    image: nginx:1.27
    containers: {web: {port: 80}}
    service: {port: 80}
gateway:
  name: gw
  namespace: gw
  className: nginx
  listeners:
    - {name: https, protocol: HTTPS, port: 443, hostname: "*.pr.example.com", tlsSecret: tls}
routes:
  web:
    hostnames: [%s]
    gateway: {name: %s, namespace: gw, listener: %s}
    backend: {app: web}
"""


def test_route_to_unknown_gateway(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GATEWAY % ("1.pr.example.com", "gateway", "https")) == [
        "environments/env.yaml:18:5: routes.web.gateway: no Gateway gw/gateway is declared (known: gw/gw) [route-parents]"
    ]


def test_route_to_unknown_listener(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GATEWAY % ("1.pr.example.com", "gw", "http")) == [
        "environments/env.yaml:18:50: routes.web.gateway.listener: Gateway gw/gw has no listener 'http' (has: https) [route-parents]"
    ]


def test_route_hostname_outside_listener(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GATEWAY % ("1.pr-api.example.com", "gw", "https")) == [
        "environments/env.yaml:17:17: routes.web.hostnames[0]: hostname '1.pr-api.example.com' is not covered by "
        "listener https (*.pr.example.com) [route-parents]"
    ]


def test_route_wildcard_covers_one_label_only(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GATEWAY % ("a.b.pr.example.com", "gw", "https"))[0].endswith(
        "is not covered by listener https (*.pr.example.com) [route-parents]"
    )


def test_route_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, GATEWAY % ("107.pr.example.com", "gw", "https")).objects


# ---------------------------------------------------------------- acme-wildcard-dns01

ACME = BASE + """secrets:
  do-token:
    namespace: cert-manager
    fromEnv: {access-token: DIGITALOCEAN_TOKEN}
issuers:
  letsencrypt:
    acme:
      server: https://acme-v02.api.letsencrypt.org/directory
      email: ops@example.com
%s
certificates:
  wildcard:
    namespace: gw
    secretName: wildcard-tls
    issuer: letsencrypt
    dnsNames: ["*.pr.example.com"]
"""


def test_wildcard_needs_dns01(tmp_path: Path) -> None:
    assert problems_of(tmp_path, ACME % "      http01: true") == [
        "environments/env.yaml:19:16: certificates.wildcard.dnsNames[0]: wildcard '*.pr.example.com' needs a DNS-01 "
        "solver, but issuer letsencrypt has none [acme-wildcard-dns01]"
    ]


def test_dns01_needs_its_token_secret(tmp_path: Path) -> None:
    assert problems_of(tmp_path, ACME % "      dns01: {tokenSecret: missing-token}") == [
        "environments/env.yaml:13:28: issuers.letsencrypt.acme.dns01.tokenSecret: the DNS-01 token Secret "
        "'missing-token' is not declared under secrets: [acme-wildcard-dns01]"
    ]


def test_wildcard_with_dns01_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, ACME % "      dns01: {tokenSecret: do-token}").objects


# ---------------------------------------------------------------- pdb-below-replicas

PDB = BASE + """apps:
  web:
    image: nginx:1.27
    replicas: 2
    disruptionBudget: {minAvailable: %d}
    containers: {web: {port: 80}}
"""


def test_pdb_equal_to_replicas(tmp_path: Path) -> None:
    assert problems_of(tmp_path, PDB % 2) == [
        "environments/env.yaml:8:38: apps.web.disruptionBudget.minAvailable: minAvailable 2 must be below replicas (2), "
        "or no pod can ever be evicted [pdb-below-replicas]"
    ]


def test_pdb_below_replicas_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, PDB % 1).objects


# ---------------------------------------------------------------- rwo-recreate

RWO = BASE + """claims:
  data: {size: 1Gi}
apps:
  db:
    image: postgres:16
    strategy: %s
    containers: {postgres: {port: 5432, mounts: {data: /var/lib/postgresql/data}}}
    volumes: {data: {claim: data}}
"""


def test_rwo_volume_needs_recreate(tmp_path: Path) -> None:
    assert problems_of(tmp_path, RWO % "RollingUpdate") == [
        "environments/env.yaml:9:15: apps.db.strategy: mounts ReadWriteOnce claim 'data' with one replica, so a rolling "
        "update deadlocks; set strategy: Recreate [rwo-recreate]"
    ]


def test_rwo_with_recreate_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, RWO % "Recreate").objects


# ---------------------------------------------------------------- protected-namespaces

PROTECTED = BASE + """protectedNamespaces: [default, gw]
apps:
  web:
    image: nginx:1.27
    namespace: %s
    containers: {web: {port: 80}}
"""


def test_object_in_protected_namespace(tmp_path: Path) -> None:
    assert problems_of(tmp_path, PROTECTED % "default") == [
        "environments/env.yaml:8:16: apps.web.namespace: Deployment web would be written to protected namespace default "
        "[protected-namespaces]"
    ]


def test_creating_a_protected_namespace(tmp_path: Path) -> None:
    text = BASE.replace("name: demo", "name: gw") + "protectedNamespaces: [gw]\n"
    assert problems_of(tmp_path, text) == [
        "environments/env.yaml:3:9: namespace.name: namespace gw is protected [protected-namespaces]",
        "environments/env.yaml:3:9: namespace.name: Namespace gw would be written to protected namespace gw [protected-namespaces]",
    ]


def test_own_namespace_passes(tmp_path: Path) -> None:
    assert compile_spec(tmp_path, PROTECTED % "demo").objects


# ---------------------------------------------------------------- name-limits

NAMES = """cluster: {context: kind-test}
params:
  pr: {type: integer, minimum: 1, maximum: %d, example: 7}
instance: preview-${params.pr}
namespace:
  name: a-very-long-preview-namespace-prefix-for-the-pull-request-${params.pr}
"""


def test_names_too_long_at_the_parameter_maximum(tmp_path: Path) -> None:
    """validate checks integer parameters at their bounds: pr=7 fits, pr=9999999 does not."""
    from envspec.validate import validate_report

    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "env.yaml").write_text(NAMES % 9999999)
    problems = validate_report(["env"], root=tmp_path).problems
    assert [str(p) for p in problems] == [
        "environments/env.yaml:6:9: namespace.name: Namespace name 'a-very-long-preview-namespace-prefix-for-the-pull-request-9999999' "
        "is not a valid DNS-1123 label (at most 63 characters) (with pr=9999999) [name-limits]"
    ]


def test_names_fit_for_every_allowed_value(tmp_path: Path) -> None:
    from envspec.validate import validate_report

    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "env.yaml").write_text(NAMES % 99)
    problems = validate_report(["env"], root=tmp_path).problems
    assert problems == []


def test_label_values_are_checked(tmp_path: Path) -> None:
    text = BASE + "instance: x\nlabels: {team: " + "a" * 64 + "}\n"
    assert problems_of(tmp_path, text) == [
        "environments/env.yaml:5:16: labels.team: must be at most 63 characters (got '" + "a" * 64 + "')"
    ]


def test_database_name_pattern(tmp_path: Path) -> None:
    text = BASE + "database: {name: aphiria-pr-7, host: db.default.svc.cluster.local, adminSecret: pg}\n"
    assert problems_of(tmp_path, text) == [
        "environments/env.yaml:4:18: database.name: must match ^[a-z0-9_]+$ (got 'aphiria-pr-7')"
    ]


def test_preview_pr_names_fit_for_every_pr_number(repo_root: Path) -> None:
    from envspec.validate import validate_report

    problems = validate_report(["preview-pr"]).problems
    assert problems == []


# ---------------------------------------------------------------- required-env

ENV = BASE + """configMaps:
  app-config: {APP_ENV: dev}
secrets:
  pg: {fromEnv: {password: PG_PASSWORD}}
apps:
  api:
    image: ghcr.io/a/api:1
    requiredEnv: [APP_ENV, DB_PASSWORD]
    containers:
      php:
        configMaps: [app-config]
%s
"""


def test_required_env_missing(tmp_path: Path) -> None:
    assert problems_of(tmp_path, ENV % "") == [
        "environments/env.yaml:11:28: apps.api.requiredEnv[1]: app api requires DB_PASSWORD, but none of its containers "
        "sets it [required-env]"
    ]


def test_required_env_complete(tmp_path: Path) -> None:
    extra = "        secretEnv: {DB_PASSWORD: {secret: pg, key: password}}"
    assert compile_spec(tmp_path, ENV % extra).objects


def test_rule_names_are_unique() -> None:
    from envspec.checks import RULES

    assert len({rule.__name__ for rule in RULES}) == len(RULES) == 13


def test_external_secret_is_rendered_not_built_at_apply(tmp_path: Path) -> None:
    text = BASE + """secrets:
  db:
    external: {store: vault, data: {password: prod/db/password}}
apps:
  api:
    image: ghcr.io/a/api:1
    requiredEnv: [password]
    containers: {php: {secrets: [db]}}
"""
    compiled = compile_spec(tmp_path, text)
    external = next(o for o in compiled.objects if o["kind"] == "ExternalSecret")
    assert external["spec"]["secretStoreRef"] == {"name": "vault", "kind": "ClusterSecretStore"}
    assert external["spec"]["data"] == [{"secretKey": "password", "remoteRef": {"key": "prod/db/password"}}]
    assert compiled.plan.secrets == []
    assert all(o["kind"] != "Secret" for o in compiled.objects)
