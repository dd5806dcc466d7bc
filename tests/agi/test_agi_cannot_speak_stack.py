"""The "55" path end to end: a caller who cannot speak presses 5 twice while waiting, with no
operator free, and is flagged `cannot_speak` and raised to the top priority."""

from __future__ import annotations

import pytest

from ari_app.call import CANNOT_SPEAK_PRIORITY, CallState
from testbed.sandbox import simulated_operators

pytestmark = pytest.mark.integration


async def test_caller_pressing_55_while_queued_jumps_to_the_top(
    start_app, agi_server, callers, records, wait
):
    ops = simulated_operators(1, "Local/talk-3@siaga-test", skills=("medical",))
    app = await start_app(operators=ops)
    app.operator_pause("sim1", "meal")  # staffed, but nobody free: the caller waits

    # 1 (medical) in the menu, a second and a half, then 5 5 while the hold prompt plays.
    call_id = await callers.call(digits="1WWW55", delay=1.0, gap_ms=250, hold=20)

    async def flagged():
        actor = app.calls.get(call_id)
        return actor is not None and "cannot_speak" in actor.machine.flags

    await wait(flagged, what="the call to be flagged cannot_speak")
    assert app.calls[call_id].machine.state is CallState.QUEUED

    async def on_top():
        # The live board (what the console shows) has it at the top priority.
        waiting = [w for c in app.snapshot().categories for w in c.waiting if w.call_id == call_id]
        return [(w.priority, "cannot_speak" in w.flags) for w in waiting] == [
            (CANNOT_SPEAK_PRIORITY, True)
        ]

    await wait(on_top, what="the call at priority 0, flagged, on the live board")

    async def recorded():
        return await records.events(call_id, "flag_set")

    events = await wait(recorded, what="the flag to be recorded")
    assert [e["flag"] for e in events] == ["cannot_speak"]
    row = await records.call(call_id)
    assert row is not None and "cannot_speak" in row["flags"]
    assert row["category"] == "medical"

    app.operator_ready("sim1")  # and the first operator free takes it

    async def answered():
        row = await records.call(call_id)
        return row if row is not None and row["operator_id"] == "sim1" else None

    await wait(answered, timeout=20, what="sim1 to answer the call")
