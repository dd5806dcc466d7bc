"""RecordWriter against a real PostgreSQL: volume, idempotence, order independence, derived
tables, the journal when the database is unreachable, hostile strings, refused data."""

from __future__ import annotations

import asyncio
import inspect
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from db_support import fetch, fetchval, write_all

from db import events as ev
from db.calllog import CallFilter, active_caller_flags, call_timeline, list_calls
from db.events import Facts, HangupBy, OverflowOutcome, RecordEvent, RecordOnlyFailure, Verdict
from db.writer import BatchPath, BatchReport, RecordWriter
from queues.states import OperatorState
from testbed.cluster import free_port

T0 = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)


def lifecycle(call_id: str, start: datetime, operator: str = "op1") -> list[RecordEvent]:
    """Ten events of an answered call."""
    s = timedelta(seconds=1)
    return [
        ev.call_arrived(call_id, "+628120000" + call_id[-4:], caller_name="Ani", at=start),
        ev.ivr_step(call_id, "main", input="1", language="id", at=start + s),
        ev.call_classified(call_id, "medical", priority=1, flags=["spoke"], at=start + 2 * s),
        ev.call_queued(call_id, category="medical", position=1, at=start + 2 * s),
        ev.call_announced(call_id, position=1, ewt_seconds=5, at=start + 3 * s),
        ev.call_offered(call_id, operator, at=start + 4 * s),
        ev.call_connected(call_id, operator, at=start + 6 * s),
        ev.agency_added(call_id, "ambulance", at=start + 30 * s),
        ev.call_ended(call_id, HangupBy.CALLER, at=start + 66 * s),
        ev.disposition(call_id, operator, Verdict.EMERGENCY, notes="ok", at=start + 70 * s),
    ]


async def test_ten_thousand_events_every_row_present(pg_dsn: str, tmp_path: Path) -> None:
    events = [e for n in range(1000) for e in lifecycle(f"call-{n:04d}", T0 + timedelta(seconds=n))]
    assert len(events) == 10_000
    batches: list[BatchReport] = []
    writer = await write_all(pg_dsn, events, tmp_path / "j.jsonl", on_batch=batches.append)

    stored = await fetch(pg_dsn, "SELECT event_id FROM call_events")
    assert {r["event_id"] for r in stored} == {e.event_id for e in events}
    # Batched, and every event committed once: directly, or (on a loaded machine where the
    # first connection is slow) through the journal and its replay.
    assert writer.written + writer.replayed == 10_000 and writer.stats().duplicates == 0
    assert len(batches) > 1

    calls = await fetch(
        pg_dsn,
        "SELECT outcome, count(*) AS n, min(events) AS lo, max(events) AS hi,"
        " min(wait_seconds) AS w, max(talk_seconds) AS t FROM calls GROUP BY outcome",
    )
    assert [dict(r) for r in calls] == [
        {"outcome": "answered", "n": 1000, "lo": 10, "hi": 10, "w": 6, "t": 60}
    ]
    assert await fetchval(pg_dsn, "SELECT count(*) FROM dispositions") == 1000


async def test_events_coming_one_by_one_are_committed_in_few_batches(
    pg_dsn: str, tmp_path: Path
) -> None:
    # Calls' events trickle in; a commit per event would make PostgreSQL re-plan and
    # re-derive the same calls over and over.
    batches: list[BatchReport] = []
    writer = RecordWriter(pg_dsn, tmp_path / "j.jsonl", gather_ms=300, on_batch=batches.append)
    await writer.start()
    events = [e for n in range(6) for e in lifecycle(f"trickle-{n}", T0)]
    for event in events:
        writer.write(event)
        await asyncio.sleep(0.005)
    await writer.wait_replayed(timeout=10)
    await writer.close()
    batches = [b for b in batches if b.path is BatchPath.DB]  # not the journal's groups
    assert sum(b.size for b in batches) == len(events) == 60
    # About 0.3 s of trickle: 1-2 batches; without gathering it took 58. Room for a slow CI.
    assert len(batches) <= 6, [b.size for b in batches]
    assert await fetchval(pg_dsn, "SELECT count(*) FROM calls WHERE events = 10") == 6


async def test_flush_and_a_full_batch_do_not_wait_for_the_gathering(
    pg_dsn: str, tmp_path: Path
) -> None:
    batches: list[BatchReport] = []
    full = asyncio.Event()

    def seen(report: BatchReport) -> None:
        batches.append(report)
        full.set()

    hour = 3_600_000
    writer = RecordWriter(pg_dsn, tmp_path / "j.jsonl", gather_ms=hour, max_batch=10, on_batch=seen)
    await writer.start()
    try:
        events = lifecycle("hurried", T0)
        writer.write(events[0])
        await writer.flush(timeout=10)  # an hour's gathering would time this out
        assert [b.size for b in batches] == [1]
        full.clear()
        for event in events[1:] + lifecycle("hurried-2", T0)[:1]:
            writer.write(event)
        await asyncio.wait_for(full.wait(), 10)
        assert [b.size for b in batches] == [1, 10]
    finally:
        await writer.close()  # and closing commits what is still gathering
    assert await fetchval(pg_dsn, "SELECT count(*) FROM call_events") == 11


async def test_same_event_twice_is_stored_once(pg_dsn: str, tmp_path: Path) -> None:
    first = lifecycle("dup-1", T0)
    again = [RecordEvent.from_line(e.to_line()) for e in first]  # same ids, new objects
    writer = RecordWriter(pg_dsn, tmp_path / "j.jsonl")
    await writer.start()
    for e in first + first[:3]:  # duplicates inside one batch
        writer.write(e)
    await writer.flush(timeout=10)
    for e in again:  # and in later batches
        writer.write(e)
    await writer.flush(timeout=10)
    await writer.close()
    assert await fetchval(pg_dsn, "SELECT count(*) FROM call_events") == 10
    assert await fetchval(pg_dsn, "SELECT events FROM calls WHERE call_id = 'dup-1'") == 10
    assert await fetchval(pg_dsn, "SELECT count(*) FROM dispositions") == 1
    assert writer.stats().duplicates == 13


async def test_calls_row_does_not_depend_on_arrival_order(pg_dsn: str, tmp_path: Path) -> None:
    rng = random.Random(112)
    ids = [f"perm-{n}" for n in range(25)]
    writer = RecordWriter(pg_dsn, tmp_path / "j.jsonl")
    await writer.start()
    for call_id in ids:
        events = lifecycle(call_id, T0)
        events.append(ev.call_classified(call_id, "fire", priority=2, at=T0 + timedelta(9)))
        events.append(ev.flag_set(call_id, "repeat", at=T0 + timedelta(seconds=50)))
        if call_id != ids[0]:
            rng.shuffle(events)
        for event in events:  # random batch boundaries too
            writer.write(event)
            if rng.random() < 0.3:
                await writer.flush(timeout=10)
    await writer.close()
    rows = await fetch(pg_dsn, "SELECT * FROM calls ORDER BY call_id")
    volatile = {"call_id", "caller_number", "updated_at"}
    shapes = {
        tuple(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in r.items() if k not in volatile
        )
        for r in rows
    }
    assert len(rows) == 25 and len(shapes) == 1
    shape = dict(next(iter(shapes)))
    assert shape["category"] == "fire" and shape["priority"] == 2  # latest classification
    assert shape["flags"] == ("repeat", "spoke")
    assert shape["agencies"] == ("ambulance",)
    assert shape["operator_id"] == "op1" and shape["outcome"] == "answered"
    assert shape["arrived_at"] == T0 and float(shape["wait_seconds"]) == 6.0


async def test_a_phone_that_hung_up_at_once_did_not_answer_the_call(
    pg_dsn: str, tmp_path: Path
) -> None:
    s = timedelta(seconds=1)

    def ghost_then(call_id: str) -> list[RecordEvent]:
        return [
            ev.call_arrived(call_id, "081200001111", at=T0),
            ev.call_classified(call_id, "medical", priority=1, at=T0 + 2 * s),
            ev.call_queued(call_id, category="medical", at=T0 + 2 * s),
            ev.call_offered(call_id, "pocket", at=T0 + 3 * s),
            ev.call_connected(call_id, "pocket", at=T0 + 4 * s),
            ev.offer_failed(call_id, "pocket", RecordOnlyFailure.HUNG_UP_AT_ONCE, at=T0 + 5 * s),
        ]

    answered = [
        *ghost_then("ghost-answered"),
        ev.call_offered("ghost-answered", "real", at=T0 + 8 * s),
        ev.call_connected("ghost-answered", "real", at=T0 + 12 * s),
        ev.call_ended("ghost-answered", HangupBy.CALLER, at=T0 + 60 * s),
    ]
    abandoned = [
        *ghost_then("ghost-abandoned"),
        ev.call_abandoned("ghost-abandoned", position=1, at=T0 + 20 * s),
    ]
    # The same pocket phone answering again later, for real, is an answer.
    again = [
        *ghost_then("ghost-again"),
        ev.call_offered("ghost-again", "pocket", at=T0 + 9 * s),
        ev.call_connected("ghost-again", "pocket", at=T0 + 10 * s),
        ev.call_ended("ghost-again", HangupBy.OPERATOR, at=T0 + 40 * s),
    ]
    await write_all(pg_dsn, [*reversed(answered), *abandoned, *again], tmp_path / "j.jsonl")

    rows = {
        r["call_id"]: r
        for r in await fetch(
            pg_dsn,
            "SELECT call_id, outcome, connected_at, operator_id, wait_seconds, talk_seconds"
            " FROM calls",
        )
    }
    real = rows["ghost-answered"]
    assert (real["outcome"], real["operator_id"]) == ("answered", "real")
    assert real["connected_at"] == T0 + 12 * s
    assert (float(real["wait_seconds"]), float(real["talk_seconds"])) == (12.0, 48.0)
    gone = rows["ghost-abandoned"]
    assert (gone["outcome"], gone["connected_at"], gone["operator_id"]) == ("abandoned", None, None)
    assert float(gone["wait_seconds"]) == 20.0
    later = rows["ghost-again"]
    assert (later["operator_id"], later["connected_at"]) == ("pocket", T0 + 10 * s)


async def test_the_partner_centre_that_answered_an_overflowed_call_is_with_its_agencies(
    pg_dsn: str, tmp_path: Path
) -> None:
    s = timedelta(seconds=1)
    busy, partner = "PJSIP/112@busy", "PJSIP/112@partner"

    def overflowed(call_id: str) -> list[RecordEvent]:
        flag = Facts.flag_set(
            "overflow", target=f"number:{busy}", rule="no_operator", from_category="medical"
        )
        return [
            ev.call_arrived(call_id, "081200002222", at=T0),
            ev.call_classified(call_id, "medical", priority=1, at=T0 + 2 * s),
            flag.stamp(call_id=call_id, at=T0 + 2 * s),
            Facts.overflow_outcome(busy, OverflowOutcome.FAILED, cause="17").stamp(
                call_id=call_id, at=T0 + 4 * s
            ),
        ]

    answered = [
        *overflowed("partner-answered"),
        Facts.overflow_outcome(partner, OverflowOutcome.ANSWERED, rule="max_wait").stamp(
            call_id="partner-answered", at=T0 + 30 * s
        ),
        ev.call_ended("partner-answered", HangupBy.CALLER, at=T0 + 90 * s),
    ]
    abandoned = [
        *overflowed("partner-failed"),
        ev.call_abandoned("partner-failed", position=1, at=T0 + 20 * s),
    ]
    await write_all(pg_dsn, [*reversed(answered), *abandoned], tmp_path / "j.jsonl")

    rows = {
        r["call_id"]: r
        for r in await fetch(pg_dsn, "SELECT call_id, flags, agencies, outcome FROM calls")
    }
    assert rows["partner-answered"]["agencies"] == [partner]  # the busy one never took it
    assert "overflow" in rows["partner-answered"]["flags"]
    assert rows["partner-failed"]["agencies"] == []
    assert rows["partner-failed"]["outcome"] == "abandoned"


async def test_derived_tables(pg_dsn: str, tmp_path: Path) -> None:
    later = T0 + timedelta(minutes=5)
    until = datetime.now(UTC) + timedelta(days=30, microseconds=999)  # ms: truncated
    block = ev.caller_flag_set("0812999", "blocked", reason="prank x5", set_by="sup1", until=until)
    watch = ev.caller_flag_set("0812999", "watch", set_by="sup1", at=T0)
    events = [
        # Out of order on purpose: the clear and the callback update come first.
        ev.caller_flag_cleared(watch.event_id, cleared_by="sup2", reason="resolved", at=later),
        ev.callback_updated("ab-1", status="done", owner="op2", outcome="reached", at=later),
        ev.call_arrived("ab-1", "0812111", at=T0),
        ev.call_abandoned("ab-1", position=3, wait_seconds=40, at=T0 + timedelta(seconds=40)),
        ev.call_arrived("ab-2", "0812222", at=T0),
        ev.call_abandoned("ab-2", position=1, at=T0 + timedelta(seconds=9)),
        ev.operator_state("op1", OperatorState.PAUSED, reason="break", at=later),
        ev.operator_state("op1", OperatorState.AVAILABLE, name="Budi", at=T0),
        block,
        watch,
    ]
    await write_all(pg_dsn, events, tmp_path / "j.jsonl", max_batch=3)

    callbacks = await fetch(pg_dsn, "SELECT * FROM callbacks ORDER BY call_id")
    assert [(r["call_id"], r["status"], r["owner"], r["outcome"], r["position"])
            for r in callbacks] == [("ab-1", "done", "op2", "reached", 3),
                                    ("ab-2", "pending", None, None, 1)]  # fmt: skip
    assert callbacks[0]["abandoned_at"] == T0 + timedelta(seconds=40)

    op = (await fetch(pg_dsn, "SELECT * FROM operators"))[0]
    assert (op["operator_id"], op["name"], op["state"], op["state_reason"]) == (
        "op1", "Budi", "paused", "break",
    )  # fmt: skip
    assert op["state_at"] == later and op["first_seen_at"] == T0
    assert await fetchval(pg_dsn, "SELECT count(*) FROM operator_state_changes") == 2

    conn = await asyncpg.connect(pg_dsn)
    try:
        flags = await active_caller_flags(conn, "0812999")
        cleared = await conn.fetchrow(
            "SELECT * FROM caller_flags WHERE flag_id = $1", watch.event_id
        )
    finally:
        await conn.close()
    assert [(f.flag, f.reason, f.set_by) for f in flags] == [("blocked", "prank x5", "sup1")]
    assert flags[0].expires_at == ev.utc_ms(until)
    assert (cleared["cleared_by"], cleared["clear_reason"]) == ("sup2", "resolved")


HOSTILE = [
    'O\'Brien "quoted" `back`',
    "'; DROP TABLE calls; --",
    "<script>alert('x')</script>",
    "Siti Nurhaliza ☎ 紧急 🚑 العربية",
    "tab\tnew\nline\r\\back\\slash %s %% $1 \\x00",
    "x" * 10_000,
]


async def test_hostile_strings_are_stored_and_read_back_unchanged(
    pg_dsn: str, tmp_path: Path
) -> None:
    events = []
    for n, text in enumerate(HOSTILE):
        call_id = f"h{n}-{text[:20]}"
        events += [
            ev.call_arrived(call_id, text, caller_name=text, at=T0 + timedelta(seconds=n)),
            ev.disposition(call_id, text, Verdict.COMPLAINT, notes=text, location={text: [text]}),
        ]
    await write_all(pg_dsn, events, tmp_path / "j.jsonl")
    assert await fetchval(pg_dsn, "SELECT count(*) FROM calls") == len(HOSTILE)

    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await list_calls(conn, CallFilter())
        for n, text in enumerate(HOSTILE):
            call_id = f"h{n}-{text[:20]}"
            (row,) = [r for r in rows if r.call_id == call_id]
            assert row.caller_number == text and row.caller_name == text
            assert row.verdict == "complaint"
            (found,) = await list_calls(conn, CallFilter(number=text))
            assert found.call_id == call_id
            timeline = await call_timeline(conn, call_id)
            assert timeline[0].data["caller_name"] == text
            assert timeline[1].data["location"] == {text: [text]}
            assert timeline[1].operator_id == text
        notes = {r["notes"] for r in await conn.fetch("SELECT notes FROM dispositions")}
        assert notes == set(HOSTILE)
        assert await conn.fetchval("SELECT to_regclass('calls') IS NOT NULL")
    finally:
        await conn.close()


async def test_unreachable_database_spools_and_write_never_blocks(tmp_path: Path) -> None:
    dead = f"postgresql://siaga@127.0.0.1:{free_port()}/siaga"
    writer = RecordWriter(dead, tmp_path / "j.jsonl", retry_min_s=0.05)
    await writer.start()
    events = lifecycle("offline", T0)
    for event in events:
        writer.write(event)
    # write() only queued them: nothing was attempted before the writer task got a turn.
    assert not inspect.iscoroutinefunction(writer.write)
    assert writer.stats().in_memory == len(events) and writer.spooled == 0
    await writer.flush(timeout=10)
    assert not writer.db_reachable
    assert writer.spooled == len(events) and writer.written == 0
    lines = (tmp_path / "j.jsonl").read_text(encoding="utf-8").splitlines()
    assert [RecordEvent.from_line(line).event_id for line in lines] == [e.event_id for e in events]
    await writer.close()
    assert (tmp_path / "j.jsonl").stat().st_size > 0  # left for the next start


async def test_journal_left_behind_is_replayed_first_and_in_order(
    pg_dsn: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j.jsonl"
    dead = f"postgresql://siaga@127.0.0.1:{free_port()}/siaga"
    old = [e for n in range(30) for e in lifecycle(f"old-{n}", T0)]
    offline = RecordWriter(dead, journal)
    await offline.start()
    for event in old:
        offline.write(event)
    await offline.close()

    new = lifecycle("new-1", T0)
    writer = RecordWriter(pg_dsn, journal, max_batch=50)
    await writer.start()
    for event in new:
        writer.write(event)
    await writer.wait_replayed(timeout=30)
    await writer.close()

    order = [
        r["event_id"] for r in await fetch(pg_dsn, "SELECT event_id FROM call_events ORDER BY seq")
    ]
    assert order == [e.event_id for e in old + new]
    assert writer.replayed == len(old) + len(new)  # the new ones queued behind the journal
    assert journal.stat().st_size == 0


async def test_refused_event_is_isolated_and_kept_aside(pg_dsn: str, tmp_path: Path) -> None:
    # A constraint the code does not know about makes PostgreSQL refuse one event's data.
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "ALTER TABLE call_events ADD CONSTRAINT no_poison CHECK (call_id <> 'poison')"
        )
    finally:
        await conn.close()
    events = lifecycle("good-1", T0) + [ev.call_arrived("poison", "1")] + lifecycle("good-2", T0)
    writer = await write_all(pg_dsn, events, tmp_path / "j.jsonl")
    assert await fetchval(pg_dsn, "SELECT count(*) FROM call_events") == 20
    assert writer.stats().rejected == 1
    rejected = (tmp_path / "j.jsonl.rejected").read_text(encoding="utf-8")
    assert "no_poison" in rejected and '"call_id":"poison"' in rejected
