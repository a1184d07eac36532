"""The spec models' validators and serializers are built once, at the first validation: rendering
builds none of its own (a nested model's first `model_dump` would build one mid-render)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from pathlib import Path
from envspec.pipeline import compile_all, compile_environment
from envspec.render.output import dump_yaml
from envspec.spec.base import SpecModel
from envspec.spec.project import find_project

dump_yaml(compile_environment("preview-pr", params=["pr=107"]).objects)
for root in [Path("."), *sorted(p for p in Path("examples").iterdir() if (p / "environments").is_dir())]:
    for compiled in compile_all(find_project(root))[0].values():
        dump_yaml(compiled.objects)

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

built = sorted({c.__name__ for c in subclasses(SpecModel) if c.__dict__.get("__pydantic_complete__")})
print(json.dumps({"built": built, "modules": sorted(m for m in sys.modules if m.startswith("envspec"))}))
"""


def test_rendering_builds_only_the_models_it_validates() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    # Environment holds every nested model; Param and ComponentManifest are validated on their own.
    assert report["built"] == ["ComponentManifest", "Environment", "Param"]
    assert not {"envspec.schema", "envspec.authoring_schema"} & set(report["modules"])
