"""The dialplan fallback on the real stack, with the ARI app stopped: a SIP caller to 112 is
answered and rings the operators' phones (queue siaga-fallback, ring-all); nobody answering
sends the call to the partner centre. Every such call is recorded with flag `fallback`, from AMI
while the recorder runs, or from Asterisk's own record (CEL) at the next start."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from integration.conftest import WINDOW, recording_of

from agi.fallback import FallbackRecorder, operators_by_interface
from db.events import fact_id
from db.reconcile import PbxNow, Reconciler
from db.writer import RecordWriter
from testbed.sipp import Sipp, SippPhone, answer_scenario, caller_scenario

pytestmark = pytest.mark.integration


def fresh_number() -> str:
    return f"0814{uuid.uuid4().int % 10**8:08d}"


@pytest.fixture
async def recorder(stack_config, journal, asterisk):
    recorder = FallbackRecorder(stack_config, journal)
    await recorder.start()
    await recorder.wait_connected(10)
    yield recorder
    await recorder.stop()


async def in_database(writer: RecordWriter) -> None:
    """Everything written is in PostgreSQL (under load a batch may go through the journal)."""
    await writer.wait_replayed(timeout=10)
    await writer.wait_replayed(timeout=20)


async def nothing_live() -> PbxNow:
    return PbxNow(frozenset(), datetime.now(UTC))


async def ended_call(db, journal, number: str, wait, what: str) -> asyncpg.Record:
    async def ended():
        await journal.wait_replayed(timeout=10)
        row = await db.fetchrow("SELECT * FROM calls WHERE caller_number = $1", number)
        return row if row is not None and row["ended_at"] is not None else None

    row: asyncpg.Record = await wait(ended, timeout=20, what=what)
    return row


async def test_sip_caller_reaches_sip_operator_through_the_fallback_queue(
    recorder,
    stack_config,
    asterisk,
    journal,
    records,
    db,
    wait,
    pg_dsn,
    stack_dsn,
    tmp_path,
    idle_pbx,
):
    operator = stack_config.operators[0]
    # The phone rings 3 s before it answers: the caller hears the fallback prompt meanwhile.
    phone = SippPhone(
        operator.sip_user,
        operator.sip_password,
        stack_config.asterisk.sip_port,
        answer=answer_scenario(ring_ms=3000),
    )
    await phone.start()
    number = fresh_number()
    # Answered at once by the fallback; the ring with the prompt, a few seconds of talk, BYE.
    caller = Sipp(
        caller_scenario(caller_id=number, delay_ms=500, hold_ms=11000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:
        await caller.wait(timeout=40)
    finally:
        await caller.stop()
        await phone.unregister()
        await phone.stop()
    assert "INVITE" in phone.uas.messages(), "the operator's phone was rung"

    # Recorded from AMI while it happened, from the few events the recorder asked for.
    row = await ended_call(db, journal, number, wait, "the fallback call to end in the records")
    assert recorder.received["UserEvent"] > 0 and recorder.received["AgentConnect"] > 0
    assert not {"Newexten", "VarSet", "Newchannel", "Newstate"} & set(recorder.received)
    assert "fallback" in row["flags"]
    assert row["operator_id"] == "1001"
    assert row["outcome"] == "answered"
    assert row["hangup_by"] == "caller"
    assert row["arrived_at"] < row["connected_at"] < row["ended_at"]
    call_id = row["call_id"]
    # The phone rings at once; the fallback prompt plays to the caller meanwhile (the queue's
    # music class announces it), not before.
    offered = await db.fetchval(
        "SELECT min(at) FROM call_events WHERE call_id = $1 AND kind = 'call_offered'", call_id
    )
    assert (offered - row["arrived_at"]).total_seconds() < 1.0
    windows = await recording_of(call_id, asterisk, wait)
    ringing = windows[: int((row["connected_at"] - row["arrived_at"]).total_seconds() / WINDOW)]
    # The caller sends no audio and the phone none before it answers: what the recording holds
    # while the phone rings is what the caller heard, the prompt.
    assert sum(1 for rms, _ in ringing if rms > 0.01) * WINDOW >= 1.0, ringing

    # The same call reconciled from Asterisk's own record into an empty database, as after a
    # crash of the whole app: the same call, with the same facts.
    cel = asterisk.outside(asterisk.layout.cel_file)

    def reconciler(journal: RecordWriter, dsn: str) -> Reconciler:
        return Reconciler(
            cel,
            dsn,
            journal,
            app=stack_config.asterisk.app,
            operators_by_interface=operators_by_interface(stack_config),
            ask_pbx=nothing_live,
        )

    later = datetime.now(UTC) + timedelta(seconds=10)  # past the time the app has to write
    fresh = RecordWriter(pg_dsn, tmp_path / "fresh.jsonl", batch_ms=50)
    await fresh.start()
    try:
        assert (await reconciler(fresh, pg_dsn).run_once(later)).events > 0
        await in_database(fresh)
    finally:
        await fresh.close()
    other = await asyncpg.connect(pg_dsn)
    try:
        again = await other.fetchrow("SELECT * FROM calls WHERE call_id = $1", call_id)
    finally:
        await other.close()
    assert again is not None, "Asterisk's record holds the call under the same id"
    assert again["caller_number"] == number
    assert "fallback" in again["flags"]
    assert again["operator_id"] == "1001"
    assert again["outcome"] == "answered"
    assert again["hangup_by"] == "caller"
    assert abs(again["connected_at"] - row["connected_at"]).total_seconds() < 1

    # Reconciling into the database the recorder wrote adds no second copy of any fact.
    await in_database(journal)
    before = await db.fetchval("SELECT count(*) FROM call_events WHERE call_id = $1", call_id)
    await reconciler(journal, stack_dsn).run_once(later)
    await in_database(journal)
    after = await db.fetchval("SELECT count(*) FROM call_events WHERE call_id = $1", call_id)
    assert after == before
    arrived = await db.fetchval(
        "SELECT event_id FROM call_events WHERE call_id = $1 AND kind = 'call_arrived'", call_id
    )
    assert arrived == fact_id(call_id, "arrived")


async def test_nobody_answering_overflows_to_the_partner_centre(
    recorder, stack_config, journal, db, wait, idle_pbx
):
    number = fresh_number()
    # No operator's phone is registered: the queue times out, the partner answers (and talks 3 s).
    caller = Sipp(
        caller_scenario(caller_id=number, delay_ms=500, hold_ms=30000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:
        await caller.wait(timeout=60)
    finally:
        await caller.stop()

    row = await ended_call(db, journal, number, wait, "the overflowed call to end in the records")
    assert {"fallback", "overflow"} <= set(row["flags"])
    assert row["agencies"] == ["overflow"]
    assert row["outcome"] == "fallback"
    assert row["operator_id"] is None
