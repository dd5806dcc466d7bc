"""The fallback recorder's pure part: AMI events of the siaga-fallback queue -> record events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agi.fallback import FallbackTracker
from db.events import fact_id

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
OPS = {"PJSIP/1001": "1001", "PJSIP/1002": "1002"}
CALL = "1772352000.42"


def ev(name: str, **fields: str) -> dict[str, str]:
    return {"Event": name, "Uniqueid": CALL, "Channel": "PJSIP/trunk-00000007", **fields}


def run(tracker, events):
    out = []
    for i, event in enumerate(events):
        out += tracker.handle(event, T0 + timedelta(seconds=i))
    return out


def test_answered_fallback_call():
    tracker = FallbackTracker(OPS)
    out = run(
        tracker,
        [
            ev(
                "UserEvent",
                UserEvent="SiagaFallback",
                Step="arrived",
                Arrived="1772352000.250",
                CallerIDNum="081234",
                CallerIDName="Budi",
            ),
            ev("QueueCallerJoin", Queue="siaga-fallback", Position="1", CallerIDNum="081234"),
            ev("AgentCalled", Queue="siaga-fallback", Interface="PJSIP/1001"),
            ev("AgentCalled", Queue="siaga-fallback", Interface="PJSIP/1002"),
            ev("AgentConnect", Queue="siaga-fallback", Interface="PJSIP/1001", HoldTime="3"),
            ev("AgentComplete", Queue="siaga-fallback", Interface="PJSIP/1001", Reason="agent"),
            ev("Hangup", Cause="16"),
        ],
    )
    kinds = [(e.kind.value, e.operator_id) for e in out]
    assert kinds == [
        ("call_arrived", None),
        ("flag_set", None),
        ("call_queued", None),
        ("call_offered", "1001"),
        ("call_offered", "1002"),
        ("call_connected", "1001"),
        ("call_ended", None),
    ]
    arrived = out[0]
    assert arrived.call_id == CALL
    assert arrived.data["flags"] == ["fallback"]
    assert arrived.data["caller_number"] == "081234"
    assert arrived.at == datetime.fromtimestamp(1772352000.25, UTC)
    assert arrived.event_id == fact_id(CALL, "arrived")
    assert out[-1].data["hangup_by"] == "operator"
    assert tracker.active == frozenset()


def test_queue_timeout_is_no_abandon_and_overflow_answered_is_a_transfer():
    tracker = FallbackTracker(OPS)
    out = run(
        tracker,
        [
            ev("QueueCallerJoin", Queue="siaga-fallback", Position="1", CallerIDNum="0899"),
            # The queue's timeout: app_queue reports it as an abandon, but the call goes on.
            ev("QueueCallerAbandon", Queue="siaga-fallback", Position="1", HoldTime="12"),
            ev("UserEvent", UserEvent="SiagaFallback", Step="overflow", To="PJSIP/112@partner"),
            ev("DialEnd", DialStatus="ANSWER", DestChannel="PJSIP/partner-00000009"),
            ev("Hangup"),
        ],
    )
    assert [e.kind.value for e in out] == [
        "call_arrived",
        "flag_set",  # fallback
        "call_queued",
        "flag_set",  # overflow
        "call_transferred",
        "call_ended",
    ]
    assert out[0].at == T0  # no arrival UserEvent seen: the join is the arrival
    assert out[1].data == {"flag": "fallback"}
    assert out[4].data == {"agency": "overflow", "to": "PJSIP/112@partner"}


def test_overflow_unanswered_then_queue_again_then_caller_gives_up():
    tracker = FallbackTracker(OPS)
    out = run(
        tracker,
        [
            ev("QueueCallerJoin", Queue="siaga-fallback", Position="1", CallerIDNum="0899"),
            ev("QueueCallerAbandon", Queue="siaga-fallback", Position="1", HoldTime="12"),
            ev("UserEvent", UserEvent="SiagaFallback", Step="overflow", To="PJSIP/112@partner"),
            ev("DialEnd", DialStatus="NOANSWER"),
            ev("QueueCallerJoin", Queue="siaga-fallback", Position="1", CallerIDNum="0899"),
            ev("QueueCallerAbandon", Queue="siaga-fallback", Position="1", HoldTime="4"),
            ev("Hangup"),
        ],
    )
    kinds = [e.kind.value for e in out]
    assert kinds == [
        "call_arrived",
        "flag_set",  # fallback
        "call_queued",
        "flag_set",  # overflow
        "call_queued",  # the re-join has the first join's id: the database keeps one
        "call_abandoned",
        "call_ended",
    ]
    assert out[2].event_id == out[4].event_id
    assert out[5].at == T0 + timedelta(seconds=5)  # when the caller left the queue
    assert out[5].data["wait_seconds"] == 4
    assert out[-1].data["hangup_by"] == "caller"


def test_other_queues_and_channels_are_ignored():
    tracker = FallbackTracker(OPS)
    assert tracker.handle(ev("QueueCallerJoin", Queue="other"), T0) == []
    assert tracker.handle(ev("Hangup"), T0) == []
    assert tracker.handle(ev("UserEvent", UserEvent="Else", Step="arrived"), T0) == []
    assert tracker.handle({"Event": "FullyBooted"}, T0) == []


def test_calls_whose_hangup_was_missed_are_forgotten_after_12_hours():
    tracker = FallbackTracker(OPS)
    tracker.handle(ev("QueueCallerJoin", Queue="siaga-fallback", CallerIDNum="0811"), T0)
    later = {**ev("QueueCallerJoin", Queue="siaga-fallback", CallerIDNum="0822"), "Uniqueid": "B"}
    tracker.handle(later, T0 + timedelta(hours=13))
    assert tracker.active == frozenset({"B"})
