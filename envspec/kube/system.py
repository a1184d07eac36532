"""The cluster's own namespaces, as cluster operations import them. The knowledge is shared with the
compiler's rules, so it lives outside the deployer (`envspec.system`)."""

from envspec.system import NEVER_TOUCHED_NAMESPACES, SYSTEM_NAMESPACES, system_problems, system_reason

__all__ = ["NEVER_TOUCHED_NAMESPACES", "SYSTEM_NAMESPACES", "system_problems", "system_reason"]
