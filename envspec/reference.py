"""docs/reference.md: every key of an environment file, generated from the model's JSON Schema.

Generated, not written, so it cannot go stale: `python -m envspec.reference`
rewrites it, `python -m envspec.reference --check` exits 1 when it is stale
(a test runs the same check). Types, defaults, constraints and descriptions come
from the schema; an example is the schema's own `examples`, else the default,
else one made from the type (the first allowed value, the minimum) or, for free
text, from the table below.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

REFERENCE_PATH = Path("docs") / "reference.md"

# Examples for free-text keys, by the key's name (the schema says only "string" for them).
EXAMPLES: dict[str, Any] = {
    "image": "registry.example.com/org/app@sha256:<64 hex>",
    "host": "db.default.svc.cluster.local",
    "context": "do-nyc3-my-cluster",
    "server": "https://203.0.113.10:6443",
    "caFingerprint": "sha256:<64 hex>",
    "extends": "_defaults",
    "description": "Per-pull-request preview",
    "name": "web",
    "namespace": "web",
    "url": "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/standard-install.yaml",
    "sha256": "<64 hex>",
    "repository": "https://charts.jetstack.io",
    "chart": "cert-manager",
    "version": "v1.21.1",
    "className": "nginx",
    "hostname": "*.pr.example.com",
    "hostnames": ["www.example.com"],
    "dnsNames": ["*.pr.example.com"],
    "tlsSecret": "wildcard-tls",
    "secretName": "wildcard-tls",
    "issuer": "letsencrypt",
    "email": "admin@example.com",
    "listener": "https",
    "httpsRedirectFrom": "http",
    "app": "web",
    "secret": "postgres-admin",
    "key": "password",
    "claim": "data",
    "configMap": "app-config",
    "adminSecret": "postgres-admin",
    "appSecret": "app-db",
    "registry": "registry.example.com",
    "username": "bot",
    "passwordEnv": "GHCR_TOKEN",
    "readinessPath": "/healthz",
    "storageClass": "do-block-storage",
    "size": "10Gi",
    "cpu": "250m",
    "memory": "256Mi",
    "store": "vault",
    "refreshInterval": "1h",
    "tokenSecret": "digitalocean-dns",
    "domain": "example.com",
    "region": "nyc3",
    "pattern": "[a-z]+",
    "imagePullSecrets": ["ghcr-pull"],
    "protectedNamespaces": ["kube-system"],
    "templates": ["banner.yaml.j2"],
    "command": ["sh", "-c", "echo hi"],
    "args": ["--port", "8080"],
    "after": ["migrate"],
    "requiredEnv": ["DB_HOST"],
    "configMaps": ["app-config"],
    "secrets": ["app-secrets"],
    "generate": ["password"],
    "ingressFromNamespaces": ["nginx-gateway"],
    "values": ["dev", "prod"],
    "instance": "web-pr-${params.pr}",
    "outputs": {"webUrl": "https://${params.pr}.pr.example.com"},
    "uses": {"base": "preview-base"},
    "default": "${params.pr}",
    "example": 107,
}


def _ref_name(schema: Any) -> str | None:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _options(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a schema."""
    if "anyOf" in schema:
        return [s for s in schema["anyOf"] if s.get("type") != "null"]
    return [schema]


def _nullable(schema: dict[str, Any]) -> bool:
    return any(s.get("type") == "null" for s in schema.get("anyOf", []))


def _type_text(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    parts = []
    for option in _options(schema):
        name = _ref_name(option)
        if name:
            parts.append(f"[{_title(name, defs)}](#{_anchor(name, defs)})")
        elif "enum" in option:
            parts.append(" \\| ".join(f"`{json.dumps(v)}`" for v in option["enum"]))
        elif "const" in option:
            parts.append(f"`{json.dumps(option['const'])}`")
        elif option.get("type") == "array":
            parts.append(f"list of {_type_text(option.get('items') or {}, defs)}")
        elif option.get("type") == "object":
            values = option.get("additionalProperties")
            if isinstance(values, dict):
                parts.append(f"map of {_type_text(values, defs)}")
            elif option.get("patternProperties"):
                inner = next(iter(option["patternProperties"].values()))
                parts.append(f"map of {_type_text(inner, defs)}")
            else:
                parts.append("mapping")
        else:
            text = option.get("type", "any")
            limits = []
            for key, label in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"),
                               ("minLength", "length >="), ("maxLength", "length <=")):
                if key in option:
                    limits.append(f"{label} {option[key]}")
            if "pattern" in option:
                limits.append(f"matching `{option['pattern']}`")
            parts.append(text + (f" ({', '.join(limits)})" if limits else ""))
    return " or ".join(parts) or "any"


def _title(name: str, defs: dict[str, Any]) -> str:
    return str(defs.get(name, {}).get("title") or name.rsplit("__", 1)[-1])


def _anchor(name: str, defs: dict[str, Any]) -> str:
    return name.lower().replace("_", "-")


_JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict, "number": (int, float)}


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    return any(isinstance(value, _JSON_TYPES.get(str(o.get("type")), ())) for o in _options(schema))


def _example(key: str, schema: dict[str, Any]) -> Any:
    if schema.get("examples"):
        return schema["examples"][0]
    default = schema.get("default")
    if default not in (None, "", [], {}):
        return default
    if key in EXAMPLES and _fits(EXAMPLES[key], schema):
        return EXAMPLES[key]
    for option in _options(schema):
        if option.get("type") == "object" and isinstance(option.get("additionalProperties"), dict):
            inner = option["additionalProperties"]
            if inner.get("type") == "string":
                return {"KEY": "value"}
            if inner.get("type") == "object" and (inner.get("additionalProperties") or {}).get("type") == "string":
                return {"app-config": {"KEY": "value"}}
        if "enum" in option:
            return option["enum"][0]
        if option.get("type") == "integer":
            return option.get("minimum", 1)
        if option.get("type") == "boolean":
            return True
    return None


def _rows(defs: dict[str, Any], schema: dict[str, Any]) -> Iterator[tuple[str, str, str, str, str, bool]]:
    required = set(schema.get("required", []))
    for key, prop in sorted(schema.get("properties", {}).items()):
        example = _example(key, prop)
        default = prop.get("default")
        default_text = "required" if key in required else ("—" if default in (None, "", [], {}) and "default" not in prop
                                                             else f"`{json.dumps(default)}`")
        if key not in required and "default" not in prop:
            kinds = {o.get("type") for o in _options(prop)}
            default_text = "`{}`" if kinds == {"object"} else "`[]`" if kinds == {"array"} else "—"
        description = " ".join(str(prop.get("description") or "").split())
        if example is not None:
            example_text = f"`{key}: {json.dumps(example, ensure_ascii=False)}`"
        else:
            names = [_ref_name(o) for o in _options(prop)] + [
                _ref_name(o.get("additionalProperties") or o.get("items") or next(iter((o.get("patternProperties") or {}).values()), {}))
                for o in _options(prop)]
            ref = next((n for n in names if n), None)
            example_text = f"see [{_title(ref, defs)}](#{_anchor(ref, defs)})" if ref else ""
        yield (key, _type_text(prop, defs), default_text, description, example_text, _nullable(prop))


def _used_at(defs: dict[str, Any], root: dict[str, Any]) -> dict[str, list[str]]:
    """Each $def -> the dotted paths where it appears (`apps.<name>`, `routes.<name>.gateway`)."""
    out: dict[str, list[str]] = {}

    def visit(schema: dict[str, Any], path: str, seen: tuple[str, ...]) -> None:
        for key, prop in schema.get("properties", {}).items():
            walk(prop, f"{path}.{key}" if path else key, seen)

    def walk(schema: Any, path: str, seen: tuple[str, ...]) -> None:
        if not isinstance(schema, dict):
            return
        for option in _options(schema):
            name = _ref_name(option)
            if name:
                out.setdefault(name, []).append(path)
                if name not in seen:
                    visit(defs.get(name, {}), path, seen + (name,))
            elif option.get("type") == "array":
                walk(option.get("items"), f"{path}[]", seen)
            elif option.get("type") == "object":
                values = option.get("additionalProperties")
                if not isinstance(values, dict) and option.get("patternProperties"):
                    values = next(iter(option["patternProperties"].values()))
                if isinstance(values, dict):
                    walk(values, f"{path}.<name>", seen)

    visit(root, "", ())
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if "\\|" not in text else text


def reference_markdown(schema: dict[str, Any]) -> str:
    defs = schema.get("$defs", {})
    used = _used_at(defs, schema)
    lines = [
        "# Key reference",
        "",
        "<!-- Generated from the models by `python -m envspec.reference`; do not edit (a test fails when stale). -->",
        "",
        "Every key an environment file may hold, with its type, default and an example. A key",
        "marked *required* must be present once the files an environment `extends` are merged",
        "(the editor schema requires nothing, since any file may be a partial); every value may",
        "also be a `${...}` reference, and `key: null` deletes an inherited key. How the",
        "pieces work together: [the spec language](spec-language.md).",
        "",
    ]

    def table(title: str, anchor: str, where: list[str], body: dict[str, Any]) -> None:
        lines.extend([f'<a id="{anchor}"></a>', "", f"## {title}", ""])
        if body.get("description"):
            lines.extend([" ".join(str(body["description"]).split()), ""])
        if where:
            lines.extend(["At: " + ", ".join(f"`{w}`" for w in sorted(set(where))), ""])
        lines.extend(["| key | type | default | description | example |", "| --- | --- | --- | --- | --- |"])
        for key, type_text, default, description, example, _ in _rows(defs, body):
            lines.append(f"| `{key}` | {_cell(type_text)} | {default} | {_cell(description)} | {_cell(example)} |")
        lines.append("")

    table("Environment (the top level)", "environment", [], schema)
    for name in sorted(defs, key=lambda n: _title(n, defs).lower() + n):
        body = defs[name]
        if "properties" not in body:
            continue
        table(_title(name, defs), _anchor(name, defs), used.get(name, []), body)
    return "\n".join(lines).rstrip("\n") + "\n"


def reference_text() -> str:
    from envspec.schema import environment_schema

    return reference_markdown(environment_schema())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path.cwd() / REFERENCE_PATH
    text = reference_text()
    if "--check" in args:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != text:
            print(f"{REFERENCE_PATH} is stale: run `python -m envspec.reference`", file=sys.stderr)
            return 1
        print(f"{REFERENCE_PATH} is up to date", file=sys.stderr)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
