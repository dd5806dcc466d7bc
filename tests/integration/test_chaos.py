"""The chaos test, scaled down: steady SIP callers and operators on the real stack while the app,
PostgreSQL and Asterisk are killed at random moments; afterwards every call in Asterisk's own
record has exactly one row, closed and right. Full size: `python -m bench.chaos`.

The seed is random (its fault moments are in the failure message); SIAGA_CHAOS_SEED repeats a
run.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from testbed.chaos import ChaosPlan, run_chaos

pytestmark = pytest.mark.integration


async def test_every_call_asterisk_saw_is_recorded_once_and_right_through_the_kills() -> None:
    seed = int(os.environ.get("SIAGA_CHAOS_SEED") or random.randrange(1_000_000))
    plan = ChaosPlan(
        rate=2.5, duration=35, app_kills=2, postgres_kills=1, asterisk_kills=1, seed=seed
    )
    result = await run_chaos(plan)
    report = json.dumps(result, indent=1, default=str)

    assert result["kills"] == {"app": 2, "postgres": 1, "asterisk": 1}, report
    assert result["asterisk_record"] == "cel", report
    assert result["asterisk_calls"] >= 0.8 * result["calls_placed"], report
    assert result["missing"] == 0, report
    assert result["wrong"] == 0, report
    assert result["duplicates"] == 0, report
    assert result["open"] == 0, report
    assert result["extra"] == 0, report
