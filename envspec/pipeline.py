"""The compiler pipeline, one stage per module (placeholder; being written).

    compile_environment(name, root=None, params=(), sets=()) -> Compiled

Compiled has: name, instance, source (Path), spec (pydantic Environment),
objects (list[dict], final order), plan (envspec.kube.plan.DeployPlan),
warnings (list[Problem]). Raises envspec.errors.SpecError on bad input.
"""
