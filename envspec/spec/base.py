"""The base every spec model shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """Strict: unknown keys are errors (with a did-you-mean), values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True, strict=True)
