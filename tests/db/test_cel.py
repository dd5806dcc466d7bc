"""Asterisk's record read back into calls (db/cel.py): the app's path, the fallback's, and
what a crash or a foreign line leaves in the file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from db.cel import asterisk_calls, event_time, parse_line, parse_lines
from db.events import HangupBy

T0 = 1796298614.0
OPERATORS = {"PJSIP/1001": "op-1001"}


def line(kind, t, uid, chan, **fields):
    record = {
        "eventtype": kind,
        "eventtime": f"{T0 + t:.6f}",
        "uniqueid": uid,
        "linkedid": uid,
        "channame": chan,
        "num": fields.get("num", ""),
        "context": fields.get("context", ""),
        "exten": "",
        "appname": fields.get("app", ""),
        "appdata": fields.get("data", ""),
        "peer": fields.get("peer", ""),
        "eventextra": json.dumps(fields["extra"]) if "extra" in fields else "",
    }
    return json.dumps(record)


def at(t):
    return datetime.fromtimestamp(T0 + t, UTC)


def caller(uid="c1", chan="PJSIP/trunk-00000001", num="0811"):
    return [
        line("CHAN_START", 0, uid, chan, num=num, context="siaga-incoming"),
        line("APP_START", 0.01, uid, chan, app="MixMonitor", context="siaga-incoming"),
        line("APP_START", 0.3, uid, chan, app="Stasis", data="siaga", context="siaga-incoming"),
        line("ANSWER", 0.31, uid, chan),
    ]


def operator_leg(uid, call, start, op="1001", chan="PJSIP/1001-00000002"):
    return [
        line("CHAN_START", start, uid, chan),
        line("APP_START", start, uid, chan, app="Stasis", data=f"siaga,operator,{call},{op}"),
        line("ANSWER", start + 1, uid, chan),
        line("BRIDGE_ENTER", start + 1.01, uid, chan),
    ]


def calls(lines):
    return asterisk_calls(parse_lines(lines), "siaga", OPERATORS)


def test_a_call_the_app_connects_has_its_times_operator_and_the_side_that_hung_up():
    lines = caller() + operator_leg("l1", "c1", 5.0)
    lines += [
        line("HANGUP", 20, "c1", "PJSIP/trunk-00000001", extra={"hangupsource": ""}),
        line("HANGUP", 20.02, "l1", "PJSIP/1001-00000002"),
    ]
    (call,) = calls(lines).values()
    assert call.call_id == "c1"
    assert call.caller_number == "0811"
    assert call.arrived_at == at(0)
    assert call.answered_at == at(0.31)
    assert call.connected_at == at(6.01)
    assert call.operator_id == "1001"
    assert call.ended_at == at(20)
    assert call.hangup_by is HangupBy.CALLER
    assert not call.fallback


def test_the_operator_hung_up_when_their_leg_ended_first():
    lines = caller() + operator_leg("l1", "c1", 5.0)
    lines += [
        line("HANGUP", 20, "l1", "PJSIP/1001-00000002"),
        line("HANGUP", 20.03, "c1", "PJSIP/trunk-00000001"),
    ]
    assert calls(lines)["c1"].hangup_by is HangupBy.OPERATOR


def test_the_first_operator_bridged_is_the_answer_and_unbridged_legs_are_not():
    lines = caller()
    lines += operator_leg("l1", "c1", 5.0, op="1002")[:3]  # rang and answered, never bridged
    lines += operator_leg("l2", "c1", 9.0, op="1003", chan="PJSIP/1003-00000004")
    lines += operator_leg("l3", "c1", 30.0, op="1004", chan="PJSIP/1004-00000005")
    call = calls(lines)["c1"]
    assert call.operator_id == "1003"
    assert call.connected_at == at(10.01)
    assert call.ended_at is None and call.hangup_by is None
    assert call.last_event_at == at(0.31)


def test_a_fallback_call_is_flagged_and_its_member_is_the_operator():
    chan = "PJSIP/trunk-00000001"
    lines = caller()
    lines += [
        line("APP_START", 0.8, "c1", chan, app="Queue", data="siaga-fallback,t,,,15"),
        line("CHAN_START", 0.9, "m1", "PJSIP/1001-00000003"),
        line("ANSWER", 4.0, "m1", "PJSIP/1001-00000003"),
        line("BRIDGE_ENTER", 4.01, "m1", "PJSIP/1001-00000003"),
        line("BRIDGE_ENTER", 4.02, "c1", chan, peer="PJSIP/1001-00000003"),
        line("HANGUP", 12.0, "m1", "PJSIP/1001-00000003"),
        line("HANGUP", 12.01, "c1", chan),
    ]
    call = calls(lines)["c1"]
    assert call.fallback
    assert call.operator_id == "op-1001"
    assert call.connected_at == at(4.02)
    assert call.hangup_by is HangupBy.OPERATOR


def test_the_source_asterisk_names_decides_over_the_order_of_the_hangups():
    chan = "PJSIP/trunk-00000001"
    lines = caller() + operator_leg("l1", "c1", 5.0)
    lines += [  # the caller's BYE, but the operator's leg was taken down first
        line("HANGUP", 20, "l1", "PJSIP/1001-00000002", extra={"hangupsource": chan}),
        line("HANGUP", 20.01, "c1", chan, extra={"hangupsource": chan}),
    ]
    assert calls(lines)["c1"].hangup_by is HangupBy.CALLER
    lines = caller() + operator_leg("l1", "c1", 5.0)
    lines += [
        line("HANGUP", 20, "c1", chan, extra={"hangupsource": "PJSIP/1001-00000002"}),
        line("HANGUP", 20.01, "l1", "PJSIP/1001-00000002", extra={"hangupsource": ""}),
    ]
    assert calls(lines)["c1"].hangup_by is HangupBy.OPERATOR


def test_a_caller_who_hangs_up_unanswered_hung_up_and_a_system_hangup_is_the_systems():
    lines = caller() + [line("HANGUP", 3, "c1", "PJSIP/trunk-00000001", extra={"hangupsource": ""})]
    lines += caller("c2", "PJSIP/trunk-00000009") + [
        line("HANGUP", 3, "c2", "PJSIP/trunk-00000009", extra={"hangupsource": "ari"})
    ]
    lines += caller("c3", "Local/112@siaga-local-00000001;1") + [
        line(
            "HANGUP",
            3,
            "c3",
            "Local/112@siaga-local-00000001;1",
            extra={"hangupsource": "Local/112@siaga-local-00000001;2"},
        )
    ]
    found = calls(lines)
    assert found["c1"].hangup_by is HangupBy.CALLER
    assert found["c2"].hangup_by is HangupBy.SYSTEM
    assert found["c3"].hangup_by is HangupBy.CALLER
    assert found["c1"].connected_at is None and found["c1"].operator_id is None


def test_only_channels_that_reached_the_centre_are_calls():
    lines = caller()
    lines += operator_leg("l1", "c1", 5.0)  # a leg is no call of its own
    lines += [  # a callback the app placed, a screening leg: no MixMonitor in siaga-incoming
        line("CHAN_START", 1, "cb", "PJSIP/trunk-00000007", context="siaga-callback"),
        line("APP_START", 1, "cb", "PJSIP/trunk-00000007", app="Stasis", data="siaga,callback,x"),
        line("CHAN_START", 1, "s1", "Local/screen@siaga-screen-00000001;1", context="siaga-screen"),
    ]
    # A call whose start is older than what was read is not judged.
    lines += [line("HANGUP", 4, "old", "PJSIP/trunk-00000002")]
    assert set(calls(lines)) == {"c1"}


def test_torn_and_foreign_lines_are_skipped_and_times_are_read_cheaply():
    good = caller()
    torn = good[0][: len(good[0]) // 2]
    lines = [torn, "not json", "[1, 2]", json.dumps({"eventtype": "HANGUP"}), *good]
    assert parse_line(torn) is None
    assert list(calls(lines)) == ["c1"]
    assert event_time(good[0]) == at(0)
    assert event_time("garbage") is None
