"""A line of waiting calls in strict (priority, arrival, seq) order, with positions.

A sorted list: finding a call's position is a bisection, and inserting or removing moves a block
of pointers in C, a few microseconds even with 10,000 calls.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

# (priority, arrival, seq, call_id): seq is unique, so call_id is never compared.
CallKey = tuple[int, float, int, str]


class WaitingLine:
    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[CallKey] = []

    def add(self, key: CallKey) -> None:
        insort(self._keys, key)

    def remove(self, key: CallKey) -> None:
        keys = self._keys
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            raise KeyError(key)
        del keys[i]

    def head(self) -> CallKey | None:
        return self._keys[0] if self._keys else None

    def position(self, key: CallKey) -> int:
        """1 for the next call to be served; KeyError if the call is not in the line."""
        keys = self._keys
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            raise KeyError(key)
        return i + 1

    def __contains__(self, key: CallKey) -> bool:
        keys = self._keys
        i = bisect_left(keys, key)
        return i < len(keys) and keys[i] == key

    def __len__(self) -> int:
        return len(self._keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __iter__(self) -> Iterator[CallKey]:
        return iter(self._keys)
