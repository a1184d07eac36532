"""Moved to `envspec.kubedefs` (the compiler's patches read it too); this name stays only until
kube/diff.py imports it from there."""

from envspec.kubedefs import KEY_DEFAULTS, QUANTITY_REF, TypeInfo, definitions, type_of  # noqa: F401
