"""Available operators of one skill level, ready to be chosen by a strategy.

The engine keeps a pool per (skill, level) holding exactly the operators that may be offered a
call now. Heap pools order by a key the engine computes (longest idle, fewest calls); the
round-robin pool cycles through operator ids, remembering the last one chosen.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Collection
from typing import Any


class OperatorPool(ABC):
    # The operators in the pool, as a plain container: testing it is cheap, which matters in
    # the dispatch loop that asks "anyone free for this skill?" many times per event.
    present: Collection[str]

    @abstractmethod
    def add(self, operator_id: str, key: tuple[Any, ...]) -> None: ...

    @abstractmethod
    def discard(self, operator_id: str) -> None: ...

    @abstractmethod
    def best(self) -> str:
        """The operator the strategy picks; the pool must not be empty."""

    def chosen(self, operator_id: str) -> None:  # noqa: B027 - only round robin remembers
        """The engine offered a call to this operator (taken from this pool)."""

    @abstractmethod
    def members(self) -> list[str]:
        """All operators, best first."""

    def __len__(self) -> int:
        return len(self.present)

    def __contains__(self, operator_id: str) -> bool:
        return operator_id in self.present


class HeapPool(OperatorPool):
    """Smallest key first; removal is lazy (stale heap entries are skipped)."""

    __slots__ = ("_heap", "_live", "present")

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[Any, ...], str]] = []
        self._live: dict[str, tuple[Any, ...]] = {}
        self.present = self._live.keys()

    def add(self, operator_id: str, key: tuple[Any, ...]) -> None:
        self._live[operator_id] = key
        heapq.heappush(self._heap, (key, operator_id))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = [(k, op) for op, k in self._live.items()]
            heapq.heapify(self._heap)

    def discard(self, operator_id: str) -> None:
        self._live.pop(operator_id, None)

    def best(self) -> str:
        heap, live = self._heap, self._live
        while True:
            key, operator_id = heap[0]
            if live.get(operator_id) == key:
                return operator_id
            heapq.heappop(heap)

    def members(self) -> list[str]:
        return [op for _, op in sorted((k, op) for op, k in self._live.items())]


class RoundRobinPool(OperatorPool):
    """Operators in id order; the next after the last one chosen, wrapping around."""

    __slots__ = ("_ids", "_last", "present")

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._last: str | None = None
        self.present = self._ids

    def add(self, operator_id: str, key: tuple[Any, ...]) -> None:
        i = bisect_left(self._ids, operator_id)
        if i == len(self._ids) or self._ids[i] != operator_id:
            self._ids.insert(i, operator_id)

    def discard(self, operator_id: str) -> None:
        i = bisect_left(self._ids, operator_id)
        if i < len(self._ids) and self._ids[i] == operator_id:
            del self._ids[i]

    def best(self) -> str:
        ids = self._ids
        i = 0 if self._last is None else bisect_right(ids, self._last)
        return ids[i] if i < len(ids) else ids[0]

    def chosen(self, operator_id: str) -> None:
        self._last = operator_id

    def members(self) -> list[str]:
        if not self._ids:
            return []
        first = self.best()
        i = self._ids.index(first)
        return self._ids[i:] + self._ids[:i]
