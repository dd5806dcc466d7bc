"""`siaga simulate`: a newcomer with no phone sees the whole flow, every call accounted for."""

from __future__ import annotations

import pytest
from conftest import EXAMPLE

from siaga.config import load_config
from testbed.simulate import simulate

pytestmark = pytest.mark.integration


async def test_simulated_callers_all_reach_simulated_operators(provisioned):
    result = await simulate(
        load_config(EXAMPLE), callers=6, operators=2, talk=3, rate=6, patience=40
    )
    assert result["every_call_accounted_for"], result
    assert result["outcomes"] == {"answered": 6}
    assert result["calls_still_up"] == 0
    assert result["latency"]["answer"]["count"] == 6
    # Two operators, six callers: four calls waited for an operator to come free.
    assert result["latency"]["dispatch"]["count"] >= 3
