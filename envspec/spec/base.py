"""The base every spec model shares."""

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """Strict: unknown keys are errors (with a did-you-mean), values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True, strict=True)


def empty_list() -> list[Any]:
    """The default_factory of list fields, instead of `list` itself: pydantic inspects a factory's
    signature when it builds a schema, and a builtin's is parsed from its text signature by the
    tokenizer (~0.1 ms each, ~3 ms for the first) on every start."""
    return []


def plain(
    model: BaseModel,
    *,
    exclude_none: bool = False,
    exclude_defaults: bool = False,
    include: Collection[str] | None = None,
) -> dict[str, Any]:
    """What `model.model_dump(...)` returns (by field name), read from the model's fields.

    Only the environment's model has a serializer from the start (built with its validator, which
    holds every nested model); a nested model's first `model_dump` builds one of its own, ~0.3-1.5 ms
    each in the middle of a render. It is python mode's result: a tuple field stays a tuple (JSON
    mode would give a list); `exclude_none` and `exclude_defaults` apply to model fields, at every
    depth, as in pydantic.
    """
    fields = type(model).model_fields
    out: dict[str, Any] = {}
    for name, value in vars(model).items():  # a model's __dict__ holds its fields, in field order
        if include is not None and name not in include:
            continue
        if value is None and exclude_none:
            continue
        if exclude_defaults and value == fields[name].get_default(call_default_factory=True):
            continue
        out[name] = value if type(value) in _SCALARS else _plain(value, exclude_none, exclude_defaults)
    return out


_SCALARS = frozenset({str, int, bool, float, type(None)})


def _plain(value: Any, exclude_none: bool, exclude_defaults: bool) -> Any:
    if isinstance(value, BaseModel):
        return plain(value, exclude_none=exclude_none, exclude_defaults=exclude_defaults)
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else _plain(v, exclude_none, exclude_defaults) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _SCALARS else _plain(v, exclude_none, exclude_defaults) for v in value]
    if isinstance(value, tuple):
        return tuple(v if type(v) in _SCALARS else _plain(v, exclude_none, exclude_defaults) for v in value)
    return value
