"""The per-process caches of parsed inputs (spec files, compositions, patterns, quantities, components).

Each is keyed by everything its value depends on (the text itself, for a parse), lives for one
process only, and forgets its oldest entry past a bound, so a long-running process (a test run, a
watch loop) cannot grow without end. One kind of cache, so each module does not invent its own
(a pure function of hashable arguments uses functools.lru_cache instead).
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(dict[K, V]):
    """A dict that forgets its oldest entry once it holds `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: K, value: V) -> V:
        if key not in self and len(self) >= self.limit:
            del self[next(iter(self))]
        self[key] = value
        return value
