"""Reconciliation (db/reconcile.py): every call in Asterisk's record gets a true row, once.

The pure plan, case by case; then the shell on a real PostgreSQL with a real record file,
run twice (idempotent) and beside facts the app or the fallback recorder already wrote."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from db_support import fetch, fetchval, write_all
from test_cel import caller, line, operator_leg

from db import events as ev
from db.cel import AsteriskCall
from db.events import NODE_LOST, EventKind, HangupBy, RecordEvent
from db.reconcile import (
    GONE_WHILE_AWAY,
    PBX_RESTART,
    RECONCILED_FLAG,
    LostNodeCloser,
    PbxNow,
    Reconciler,
    RecordedCall,
    close_lost_node_calls,
    ended_as_lost,
    lost_node_ends,
    pbx_now,
    plan,
)
from db.writer import RecordWriter

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def seen(call_id="c1", *, connected=True, ended=True, fallback=False, by=HangupBy.CALLER):
    return AsteriskCall(
        call_id=call_id,
        channel=f"PJSIP/trunk-{call_id}",
        caller_number="0811",
        arrived_at=T0,
        answered_at=T0 + S,
        connected_at=T0 + 5 * S if connected else None,
        operator_id="1001" if connected else None,
        ended_at=T0 + 60 * S if ended else None,
        hangup_by=by if ended else None,
        fallback=fallback,
        last_event_at=T0 + (60 if ended else 5) * S,
    )


def row(call_id="c1", *, connected=False, ended=False, abandoned=False, flags=()):
    return RecordedCall(call_id, True, connected, abandoned, ended, frozenset(flags))


LATER = T0 + 120 * S
RESTART = T0 + 100 * S  # Asterisk started again (killed) after the open calls' last events


def pbx(*live: str, started: datetime = RESTART) -> PbxNow:
    return PbxNow(frozenset(live), started)


def kinds(events: Iterable[RecordEvent]) -> list[str]:
    return [e.kind.value for e in events]


def test_a_call_the_records_lack_gets_arrival_operator_and_end_with_asterisks_times():
    events, settled = plan([seen(fallback=True)], {}, pbx=pbx(), now=LATER)
    assert kinds(events) == ["call_arrived", "call_connected", "call_ended"]
    arrived, connected, ended = events
    assert arrived.at == T0 and arrived.data["caller_number"] == "0811"
    assert arrived.data["flags"] == [RECONCILED_FLAG, "fallback"]
    assert connected.at == T0 + 5 * S and connected.operator_id == "1001"
    assert ended.at == T0 + 60 * S and ended.data["hangup_by"] == "caller"
    assert settled == {"c1"}


def test_an_open_row_asterisk_shows_ended_is_closed_and_flagged():
    events, _ = plan([seen()], {"c1": row(connected=True)}, pbx=pbx(), now=LATER)
    assert kinds(events) == ["flag_set", "call_ended"]
    assert events[0].data == {"flag": RECONCILED_FLAG}
    assert events[1].at == T0 + 60 * S


def test_an_unanswered_caller_who_hung_up_is_abandoned_once():
    events, _ = plan([seen(connected=False)], {}, pbx=None, now=LATER)
    assert kinds(events) == ["call_arrived", "call_abandoned", "call_ended"]
    assert events[1].data["wait_seconds"] == 60.0
    # The app recorded the abandon (it records no end for one): Asterisk's end completes it,
    # not flagged as reconciled, since nothing was lost.
    events, _ = plan([seen(connected=False)], {"c1": row(abandoned=True)}, pbx=None, now=LATER)
    assert kinds(events) == ["call_ended"]
    assert events[0].at == T0 + 60 * S and events[0].data["hangup_by"] == "caller"


def test_a_call_asterisk_lost_is_closed_at_its_last_event_by_the_system():
    lost = seen(ended=False)
    events, settled = plan([lost], {"c1": row(connected=True)}, pbx=pbx("other"), now=LATER)
    assert kinds(events) == ["flag_set", "flag_set", "call_ended"]
    assert {e.data["flag"] for e in events[:2]} == {RECONCILED_FLAG, PBX_RESTART}
    assert events[2].at == lost.last_event_at
    assert events[2].data == {"hangup_by": "system", "reason": PBX_RESTART}
    assert settled == {"c1"}


def test_a_call_missing_from_one_listing_is_not_lost_unless_asterisk_restarted():
    up = seen(ended=False)  # its last event at T0 + 5 s: a quiet wait in a queue
    assert plan([up], {}, pbx=pbx(started=T0 - 60 * S), now=LATER) == ([], set())
    assert plan([up], {}, pbx=PbxNow(frozenset(), None), now=LATER) == ([], set())


def test_nothing_is_judged_too_soon_or_without_knowing_what_is_live():
    up = seen(ended=False)
    assert plan([up], {}, pbx=None, now=LATER) == ([], set())
    assert plan([up], {}, pbx=pbx("c1"), now=LATER) == ([], set())
    just_ended = seen()
    assert plan([just_ended], {}, pbx=pbx(), now=T0 + 62 * S) == ([], set())


def test_a_closed_row_is_left_as_the_app_wrote_it():
    closed = row(connected=True, ended=True)
    events, settled = plan([seen(connected=True)], {"c1": closed}, pbx=pbx(), now=LATER)
    assert events == [] and settled == {"c1"}
    closed = row(ended=True, flags=["fallback"])
    assert plan([seen(connected=False, fallback=True)], {"c1": closed}, pbx=pbx(), now=LATER) == (
        [],
        {"c1"},
    )
    # The app saw the caller hang up before the operator's leg joined the bridge.
    closed = row(ended=True, abandoned=True)
    assert plan([seen()], {"c1": closed}, pbx=pbx(), now=LATER) == ([], {"c1"})


def test_a_closed_row_gets_the_answer_asterisk_shows_and_keeps_its_end():
    # The app was killed just after the operator's leg entered the bridge, before its record of
    # the answer was durable; the next app adopted the conversation (an adoption records no
    # second answer) and recorded its end: the row said unanswered, Asterisk says 1001 answered.
    closed = row(ended=True)
    events, settled = plan([seen(by=HangupBy.OPERATOR)], {"c1": closed}, pbx=pbx(), now=LATER)
    assert kinds(events) == ["flag_set", "call_connected"]
    assert events[0].data == {"flag": RECONCILED_FLAG}
    connected = events[1]
    assert connected.at == T0 + 5 * S and connected.operator_id == "1001"
    assert connected.event_id == ev.fact_id("c1", "connected")
    assert settled == {"c1"}


def test_a_closed_row_gets_the_fallback_flag_asterisk_shows():
    closed = row(ended=True)
    events, _ = plan([seen(connected=False, fallback=True)], {"c1": closed}, pbx=pbx(), now=LATER)
    assert kinds(events) == ["flag_set", "flag_set"]
    assert [e.data["flag"] for e in events] == [RECONCILED_FLAG, "fallback"]


def test_a_pocket_answer_the_app_took_back_stays_taken_back():
    # The app recorded 1001's connection, then took it back (1001 hung up at once: offer_failed
    # hung_up_at_once); Asterisk's record shows 1001's leg bridged all the same.
    took_back = RecordedCall("c1", True, False, False, True, connections=frozenset({"1001"}))
    assert plan([seen()], {"c1": took_back}, pbx=pbx(), now=LATER) == ([], {"c1"})
    still_open = RecordedCall("c1", True, False, False, False, connections=frozenset({"1001"}))
    events, _ = plan([seen()], {"c1": still_open}, pbx=pbx(), now=LATER)
    assert kinds(events) == ["flag_set", "call_abandoned", "call_ended"]


def test_a_closed_row_without_its_arrival_gets_asterisks():
    # Adopted by a new app after the old one was killed before its arrival was durable.
    closed = RecordedCall("c1", False, True, False, True)
    events, settled = plan([seen()], {"c1": closed}, pbx=pbx(), now=LATER)
    assert kinds(events) == ["call_arrived"] and events[0].at == T0
    assert events[0].data["flags"] == [RECONCILED_FLAG]
    assert settled == {"c1"}
    # ... nor its answer (the old app was killed while the operator's leg joined the caller).
    closed = RecordedCall("c1", False, False, False, True)
    events, _ = plan([seen()], {"c1": closed}, pbx=pbx(), now=LATER)
    assert kinds(events) == ["call_arrived", "call_connected"]


def test_an_open_row_unknown_to_asterisk_whose_channel_is_gone_is_closed_now():
    events, _ = plan([], {"x": row("x", connected=True)}, pbx=pbx("y"), now=LATER)
    assert kinds(events) == ["flag_set", "call_ended"]
    assert events[1].at == LATER and events[1].data["reason"] == GONE_WHILE_AWAY
    assert plan([], {"x": row("x")}, pbx=pbx("x"), now=LATER) == ([], set())
    assert plan([], {"x": row("x")}, pbx=None, now=LATER) == ([], set())


def test_a_nodes_pass_judges_only_the_nodes_own_calls():
    # Two Asterisk nodes; node_a's reconciler knows node_a's channels only.
    a_gone, b_live = "node_a-1796316147.5", "node_b-1796316147.6"
    rows = {cid: row(cid, connected=True) for cid in (a_gone, b_live)}
    events, settled = plan([], rows, pbx=pbx("node_a-1796316147.9"), now=LATER, node="node_a")
    assert {e.call_id for e in events} == {a_gone} and settled == {a_gone}
    assert events[-1].data["reason"] == GONE_WHILE_AWAY
    # One box: every open row whose channel is not up is judged, as before.
    _, settled = plan([], rows, pbx=pbx(), now=LATER)
    assert settled == {a_gone, b_live}
    # A call of another node in the file (a copy, a shared folder) is not judged either.
    assert plan([seen(b_live)], {}, pbx=pbx(), now=LATER, node="node_a") == ([], set())


async def test_pbx_now_asks_an_asterisk_over_its_ari():
    @dataclass(frozen=True)
    class Info:
        startup_time: datetime | None

    @dataclass(frozen=True)
    class Channel:
        id: str

    class Rest:
        async def asterisk_info(self) -> Info:
            return Info(RESTART)

        async def list_channels(self) -> list[Channel]:
            return [Channel("node_b-1.1"), Channel("node_b-1.2")]

    assert await pbx_now(Rest()) == PbxNow(frozenset({"node_b-1.1", "node_b-1.2"}), RESTART)


def test_the_same_fact_always_has_the_same_id():
    first, _ = plan([seen()], {}, pbx=pbx(), now=LATER)
    again, _ = plan([seen()], {}, pbx=pbx(), now=LATER + 60 * S)
    assert [e.event_id for e in first] == [e.event_id for e in again]


# -- the shell, on a real PostgreSQL


def shifted(lines: list[str], start: datetime) -> list[str]:
    """The test_cel lines moved to `start` (they are written at a fixed epoch)."""
    out = []
    base = None
    for text in lines:
        record = json.loads(text)
        t = float(record["eventtime"])
        base = t if base is None else base
        record["eventtime"] = f"{start.timestamp() + t - base:.6f}"
        out.append(json.dumps(record))
    return out


async def no_live() -> PbxNow:
    return pbx(started=datetime.now(UTC))


async def test_the_reconciler_fills_the_records_from_the_file_once(pg_dsn: str, tmp_path: Path):
    start = datetime.now(UTC) - timedelta(minutes=5)
    cel = tmp_path / "cel.jsonl"
    chan = "PJSIP/trunk-00000001"
    lines = caller("k1", chan) + operator_leg("k1-op", "k1", 5.0)
    lines += [line("HANGUP", 40, "k1", chan), line("HANGUP", 40.1, "k1-op", "PJSIP/1001-2")]
    lines += caller("k2", "PJSIP/trunk-00000002") + [line("HANGUP", 9, "k2", "PJSIP/trunk-2")]
    lines += caller("k3", "PJSIP/trunk-00000003")  # Asterisk died with it up
    cel.write_text("\n".join(shifted(lines, start)) + "\n")
    # The app had recorded k1's arrival and answer before it was killed.
    known = [
        ev.call_arrived("k1", "0811", at=start),
        ev.call_connected("k1", "1001", at=start + 6 * S),
    ]
    writer = await write_all(pg_dsn, known, tmp_path / "spool.jsonl")

    async def one_pass() -> None:
        writer = RecordWriter(pg_dsn, tmp_path / "spool.jsonl")
        reconciler = Reconciler(
            cel,
            pg_dsn,
            writer,
            app="siaga",
            operators_by_interface={},
            ask_pbx=no_live,
        )
        await writer.start()
        await reconciler.run_once()
        await writer.flush(timeout=10)
        await writer.wait_replayed(timeout=10)
        await writer.close()

    await one_pass()
    rows = {
        r["call_id"]: r for r in await fetch(pg_dsn, "SELECT * FROM calls WHERE call_id LIKE 'k%'")
    }
    assert set(rows) == {"k1", "k2", "k3"}
    k1, k2, k3 = rows["k1"], rows["k2"], rows["k3"]
    assert k1["outcome"] == "answered" and k1["operator_id"] == "1001"
    assert abs(k1["ended_at"] - (start + 40 * S)) < S and k1["hangup_by"] == "caller"
    assert RECONCILED_FLAG in k1["flags"]
    assert k2["outcome"] == "abandoned" and k2["hangup_by"] == "caller"
    assert k3["end_reason"] == PBX_RESTART and PBX_RESTART in k3["flags"]
    counts = await fetch(pg_dsn, "SELECT count(*) AS n FROM call_events WHERE call_id LIKE 'k%'")
    await one_pass()  # a second pass, or a second start, adds nothing
    again = await fetch(pg_dsn, "SELECT count(*) AS n FROM call_events WHERE call_id LIKE 'k%'")
    assert again[0]["n"] == counts[0]["n"]
    ended = await fetch(
        pg_dsn,
        "SELECT call_id, count(*) AS n FROM call_events WHERE kind = $1 AND call_id LIKE 'k%'"
        " GROUP BY call_id",
        EventKind.CALL_ENDED.value,
    )
    assert {r["call_id"]: r["n"] for r in ended} == {"k1": 1, "k2": 1, "k3": 1}
    assert writer.stats().rejected == 0


async def reconcile_once(dsn: str, cel: Path, spool: Path) -> None:
    writer = RecordWriter(dsn, spool)
    reconciler = Reconciler(
        cel, dsn, writer, app="siaga", operators_by_interface={}, ask_pbx=no_live
    )
    await writer.start()
    await reconciler.run_once()
    await writer.flush(timeout=10)
    await writer.wait_replayed(timeout=10)
    await writer.close()


async def test_an_adopted_conversation_the_app_closed_gets_its_answer_from_the_file(
    pg_dsn: str, tmp_path: Path
):
    # The chaos test's call: the app was killed 8 ms after operator 2012's leg joined the
    # caller, before its record of the answer was durable; the next app adopted the
    # conversation and recorded its end. And a pocket answer the app took back, whose caller
    # then hung up while the app was away.
    start = datetime.now(UTC) - timedelta(minutes=5)
    cel = tmp_path / "cel.jsonl"
    adopted, adopted_leg = "PJSIP/trunk-00000011", "PJSIP/2012-00000012"
    pocket, pocket_leg = "PJSIP/trunk-00000013", "PJSIP/1001-00000014"
    lines = caller("ad1", adopted) + operator_leg("ad1-op", "ad1", 2.0, "2012", adopted_leg)
    lines += [
        line("HANGUP", 30, "ad1-op", adopted_leg, extra={"hangupsource": adopted_leg}),
        line("HANGUP", 30.01, "ad1", adopted, extra={"hangupsource": adopted_leg}),
    ]
    lines += caller("pk1", pocket) + operator_leg("pk1-op", "pk1", 4.0, "1001", pocket_leg)
    lines += [
        line("HANGUP", 6.0, "pk1-op", pocket_leg, extra={"hangupsource": pocket_leg}),
        line("HANGUP", 20, "pk1", pocket, extra={"hangupsource": pocket}),
    ]
    cel.write_text("\n".join(shifted(lines, start)) + "\n")
    await write_all(
        pg_dsn,
        [
            ev.call_arrived("ad1", "0811", at=start),
            ev.flag_set("ad1", "adopted", at=start + 8 * S),
            ev.call_ended("ad1", HangupBy.OPERATOR, at=start + 30.5 * S),
            ev.call_arrived("pk1", "0812", at=start),
            ev.call_connected("pk1", "1001", at=start + 5.1 * S),
            ev.offer_failed("pk1", "1001", ev.RecordOnlyFailure.HUNG_UP_AT_ONCE, at=start + 6 * S),
        ],
        tmp_path / "spool.jsonl",
    )
    spool = tmp_path / "reconcile-spool.jsonl"
    await reconcile_once(pg_dsn, cel, spool)
    rows = {
        r["call_id"]: r
        for r in await fetch(pg_dsn, "SELECT * FROM calls WHERE call_id IN ('ad1', 'pk1')")
    }
    ad1, pk1 = rows["ad1"], rows["pk1"]
    assert ad1["outcome"] == "answered" and ad1["operator_id"] == "2012"
    assert abs(ad1["connected_at"] - (start + 3.01 * S)) < S / 100
    # What the app wrote stays: its end, and who hung up.
    assert abs(ad1["ended_at"] - (start + 30.5 * S)) < S / 100 and ad1["hangup_by"] == "operator"
    assert RECONCILED_FLAG in ad1["flags"]
    assert pk1["outcome"] == "abandoned" and pk1["operator_id"] is None
    assert abs(pk1["ended_at"] - (start + 20 * S)) < S / 100
    ends = "SELECT count(*) FROM call_events WHERE call_id = 'ad1' AND kind = 'call_ended'"
    assert await fetchval(pg_dsn, ends) == 1
    count = "SELECT count(*) FROM call_events WHERE call_id IN ('ad1', 'pk1')"
    before = await fetchval(pg_dsn, count)
    await reconcile_once(pg_dsn, cel, spool)  # a second start adds nothing
    assert await fetchval(pg_dsn, count) == before


async def test_a_nodes_reconciler_closes_its_own_orphans_only(pg_dsn: str, tmp_path: Path):
    start = datetime.now(UTC) - timedelta(minutes=5)
    mine, theirs, look_alike = "node_a-1.1", "node_b-1.2", "nodeXa-1.3"  # `_` is LIKE's wildcard
    await write_all(
        pg_dsn,
        [ev.call_arrived(cid, "0811", at=start) for cid in (mine, theirs, look_alike)],
        tmp_path / "spool.jsonl",
    )
    written: list[RecordEvent] = []

    class Journal:
        def write(self, event: RecordEvent) -> None:
            written.append(event)

    reconciler = Reconciler(
        tmp_path / "cel.jsonl",  # node_a's record: nothing in it (off, or lost)
        pg_dsn,
        Journal(),
        app="siaga",
        operators_by_interface={},
        ask_pbx=no_live,  # node_a's Asterisk: no channel up
        node="node_a",
    )
    report = await reconciler.run_once()
    assert report.settled == 1
    assert {e.call_id for e in written} == {mine}
    assert written[-1].data["reason"] == GONE_WHILE_AWAY


async def test_the_reconciler_follows_the_file_and_reads_only_what_is_new(
    pg_dsn: str, tmp_path: Path
):
    start = datetime.now(UTC) - timedelta(minutes=5)
    cel = tmp_path / "cel.jsonl"
    written: list[RecordEvent] = []

    class Journal:
        def write(self, event: RecordEvent) -> None:
            written.append(event)

    live = {"f1"}

    async def live_channels() -> PbxNow:
        return PbxNow(frozenset(live), datetime.now(UTC))

    reconciler = Reconciler(
        cel, pg_dsn, Journal(), app="siaga", operators_by_interface={}, ask_pbx=live_channels
    )
    assert (await reconciler.run_once()).calls == 0  # no file yet: nothing, no error
    first = shifted(caller("f1", "PJSIP/trunk-1"), start)
    cel.write_text("\n".join(first) + "\n" + '{"eventtype": "HANG')  # Asterisk mid-line
    report = await reconciler.run_once()
    assert report.calls == 1 and report.events == 0  # still up
    rest = shifted(
        caller("f1", "PJSIP/trunk-1") + [line("HANGUP", 7, "f1", "PJSIP/trunk-1")], start
    )
    with cel.open("a") as handle:
        handle.write('UP"}\n' + rest[-1] + "\n")
    live.clear()
    report = await reconciler.run_once()
    assert report.settled == 1
    assert kinds(written) == ["call_arrived", "call_abandoned", "call_ended"]
    assert (await reconciler.run_once()).calls == 0  # settled calls are forgotten


async def test_a_call_that_ended_too_recently_is_judged_as_soon_as_it_can_be(
    pg_dsn: str, tmp_path: Path
):
    cel = tmp_path / "cel.jsonl"
    now = datetime.now(UTC)
    hangup = line("HANGUP", 3, "r1", "PJSIP/trunk-1")
    cel.write_text("\n".join(shifted([*caller("r1", "PJSIP/trunk-1"), hangup], now - 3 * S)) + "\n")
    written: list[RecordEvent] = []

    class Journal:
        def write(self, event: RecordEvent) -> None:
            written.append(event)

    reconciler = Reconciler(
        cel,
        pg_dsn,
        Journal(),
        app="siaga",
        operators_by_interface={},
        ask_pbx=no_live,
        interval=3600,
        settle=timedelta(seconds=1),
    )
    reconciler.start()
    try:
        for _ in range(50):
            if written:
                break
            await asyncio.sleep(0.1)
    finally:
        await reconciler.stop()
    assert kinds(written) == ["call_arrived", "call_abandoned", "call_ended"]
    assert reconciler.passes == 2  # not an hour later


async def test_an_abandonment_recorded_after_the_call_was_closed_as_cut_is_not_one(
    pg_dsn: str, tmp_path: Path
):
    # Asterisk was killed: the reconciliation closes the call (pbx_restart); the app, finding
    # the caller's channel gone a few seconds later, takes it for a hang-up.
    start = datetime.now(UTC) - timedelta(minutes=5)
    cut = ev.call_ended("cut1", HangupBy.SYSTEM, reason=PBX_RESTART, at=start + 20 * S)
    late = ev.call_abandoned("cut1", at=start + 26 * S)
    fine = ev.call_abandoned("ab1", at=start + 9 * S)
    await write_all(
        pg_dsn,
        [
            ev.call_arrived("cut1", "0811", at=start),
            cut,
            late,
            ev.call_arrived("ab1", "0812", at=start),
            fine,
            ev.call_ended("ab1", HangupBy.CALLER, at=start + 9 * S),
        ],
        tmp_path / "spool.jsonl",
    )
    rows = {
        r["call_id"]: r
        for r in await fetch(pg_dsn, "SELECT call_id, outcome, abandoned_at FROM calls")
    }
    assert rows["cut1"]["outcome"] == "unanswered" and rows["cut1"]["abandoned_at"] is None
    assert rows["ab1"]["outcome"] == "abandoned"


async def test_a_call_ended_by_the_app_and_by_the_reconciliation_has_one_end_the_first(
    pg_dsn: str, tmp_path: Path
):
    # Asterisk was killed with the call up: the reconciliation closed it as cut while the
    # app's own end (the node lost) was still in its journal. Each once-kind has one id
    # whoever writes it, so the later end is not a second one.
    call = seen("cut2", connected=False, ended=False)
    reconciled, _ = plan([call], {}, pbx=pbx(), now=LATER)
    app_end = ev.call_ended("cut2", HangupBy.SYSTEM, reason=NODE_LOST, at=LATER + 2 * S)
    app_arrival = ev.call_arrived("cut2", "0811", at=T0)
    assert {e.event_id for e in reconciled} >= {app_end.event_id, app_arrival.event_id}
    await write_all(pg_dsn, [*reconciled, app_arrival, app_end], tmp_path / "spool.jsonl")
    counts = await fetch(
        pg_dsn,
        "SELECT kind, count(*) AS n FROM call_events WHERE call_id = 'cut2' GROUP BY kind",
    )
    assert {r["kind"]: r["n"] for r in counts}["call_ended"] == 1
    assert {r["kind"]: r["n"] for r in counts}["call_arrived"] == 1
    reason = await fetchval(pg_dsn, "SELECT end_reason FROM calls WHERE call_id = 'cut2'")
    assert reason == PBX_RESTART


def test_a_lost_nodes_calls_are_ended_by_the_system_once_whoever_closes_them():
    first = lost_node_ends(["node_a-1.1"], LATER)
    again = lost_node_ends(["node_a-1.1"], LATER + 30 * S)  # a retry, or the other app
    assert kinds(first) == ["flag_set", "call_ended"]
    assert first[0].data["flag"] == RECONCILED_FLAG
    assert (first[1].data["hangup_by"], first[1].data["reason"]) == ("system", NODE_LOST)
    assert [e.event_id for e in first] == [e.event_id for e in again]


async def test_the_records_say_which_calls_were_ended_as_their_nodes_loss(
    pg_dsn: str, tmp_path: Path
):
    start = datetime.now(UTC) - timedelta(minutes=5)
    lost, normal, up = "node_a-9.1", "node_a-9.2", "node_a-9.3"
    await write_all(
        pg_dsn,
        [
            *(ev.call_arrived(c, "0811", at=start) for c in (lost, normal, up)),
            ev.call_ended(lost, HangupBy.SYSTEM, reason=NODE_LOST, at=start + 9 * S),
            ev.call_ended(normal, HangupBy.CALLER, at=start + 9 * S),
        ],
        tmp_path / "spool.jsonl",
    )
    assert await ended_as_lost(pg_dsn, [lost, normal, up, "node_a-9.4"]) == {lost}
    assert await ended_as_lost(pg_dsn, []) == set()


def owner_of(call_id: str) -> str:
    """The app's node_of for nodes `node_a`, `node_a-2` and `node_b`: the longest prefix."""
    return max(
        (n for n in ("node_a", "node_a-2", "node_b") if call_id.startswith(f"{n}-")), key=len
    )


async def test_a_lost_nodes_open_rows_from_before_it_went_down_are_closed(
    pg_dsn: str, tmp_path: Path
):
    # The active app died with node_a; the app that took over never held node_a's calls.
    down = datetime.now(UTC) - timedelta(seconds=10)
    cut = "node_a-1.1"
    held = "node_a-1.2"  # adopted before the node was lost: the app ends it itself
    after = "node_a-1.3"  # arrived once node_a was out of reach: its fallback's, if it lives
    done = "node_a-1.4"
    longer = "node_a-2-1.5"  # node_a-2's, not node_a's
    other = "node_b-1.6"
    events = [ev.call_arrived(cid, "0811", at=down - 30 * S) for cid in (cut, held, done)]
    events += [ev.call_arrived(after, "0811", at=down + S)]
    events += [ev.call_arrived(cid, "0811", at=down - 30 * S) for cid in (longer, other)]
    events += [ev.call_ended(done, HangupBy.CALLER, at=down - 5 * S)]
    await write_all(pg_dsn, events, tmp_path / "arrivals.jsonl")
    writer = RecordWriter(pg_dsn, tmp_path / "spool.jsonl")
    await writer.start()
    try:
        closed = await close_lost_node_calls(
            pg_dsn, "node_a", writer, down_since=down, owner=owner_of, keep={held}
        )
        assert closed == [cut]
        await writer.wait_replayed(timeout=30)
        # Closing again (the retry, or a second app) changes nothing; the app is told.
        told: list[list[str]] = []
        closer = LostNodeCloser(pg_dsn, writer, owner_of, on_closed=told.append)
        assert await closer.close("node_a", down, frozenset({held})) == []
        assert told == [[]]
        await writer.wait_replayed(timeout=30)
    finally:
        await writer.close()
    rows = {
        r["call_id"]: r
        for r in await fetch(pg_dsn, "SELECT call_id, ended_at, hangup_by, end_reason FROM calls")
    }
    assert (rows[cut]["hangup_by"], rows[cut]["end_reason"]) == ("system", NODE_LOST)
    assert rows[cut]["ended_at"] is not None
    assert {cid for cid, r in rows.items() if r["ended_at"] is None} == {held, after, longer, other}
    assert (
        await fetchval(
            pg_dsn,
            "SELECT count(*) FROM call_events WHERE call_id = $1 AND kind = 'call_ended'",
            cut,
        )
        == 1
    )


async def test_the_lost_nodes_closer_tries_again_while_the_database_is_away(tmp_path: Path):
    class Journal:
        def write(self, event: RecordEvent) -> None:
            raise AssertionError("nothing to write without the rows")

    closer = LostNodeCloser(
        "postgresql://siaga@127.0.0.1:1/siaga", Journal(), owner_of, retry_seconds=0.01, attempts=3
    )
    assert await closer.close("node_a", datetime.now(UTC), frozenset()) == []
