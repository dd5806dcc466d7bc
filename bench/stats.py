"""Small statistics shared by the benchmarks."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence


def pct(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def until(check: Callable[[], Awaitable[bool]], what: str, give_up: float = 60.0) -> float:
    """Seconds until `check()` holds; TimeoutError(`what`) after `give_up` seconds."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > give_up:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)
    return time.monotonic() - began
