"""The stack benchmark's dispatch figure: hang-ups paired with offers (pure, no stack)."""

from __future__ import annotations

from bench.bench_stack import dispatch_latencies, operator_of
from bench.stack_env import AmiEvent

OP = "siaga-bench-op"


def hangup(at: float, operator: str, n: int) -> AmiEvent:
    return AmiEvent("Hangup", at, f"x-{operator}-{n};2", f"Local/{operator}@{OP}-{n:08x};2")


def leg(at: float, call_id: str, operator: str, n: int) -> AmiEvent:
    """Siaga's operator leg: its id is <call id>-opN."""
    return AmiEvent("Newchannel", at, f"{call_id}-op1", f"Local/{operator}@{OP}-{n:08x};1")


def ms(values: list[float]) -> list[float]:
    return [round(v * 1000, 1) for v in values]


def test_operator_of_a_member_channel() -> None:
    assert operator_of(f"Local/17@{OP}-0000001f;2") == "17"


def test_a_stray_hang_up_does_not_shift_the_pairs() -> None:
    events = [
        hangup(9.0, "3", 1),  # the phase before, torn down late: never offered again
        hangup(10.0, "1", 2),
        leg(10.004, "c1", "1", 3),
        hangup(10.5, "2", 4),
        leg(10.507, "c2", "2", 5),
    ]
    latencies, idle = dispatch_latencies(events, after=9.5, queued_at={"c1": 8.0, "c2": 8.0})
    assert ms(latencies) == [4.0, 7.0] and idle == 0


def test_an_operator_nobody_waited_for_is_left_out() -> None:
    events = [hangup(10.0, "1", 1), leg(12.0, "late", "1", 2)]
    latencies, idle = dispatch_latencies(events, after=0.0, queued_at={"late": 11.9})
    assert latencies == [] and idle == 1


def test_app_queue_members_are_matched_to_their_caller_by_dial_begin() -> None:
    member = AmiEvent("Newchannel", 10.8, "m-1;1", f"Local/1@{OP}-00000002;1")
    dial = AmiEvent(
        "DialBegin", 10.8, "caller-1", "Local/x", dest_uniqueid="m-1;1", dest_channel=member.channel
    )
    events = [hangup(10.0, "1", 1), member, dial]
    latencies, idle = dispatch_latencies(events, after=0.0, queued_at={"caller-1": 9.0})
    assert ms(latencies) == [800.0] and idle == 0
    latencies, idle = dispatch_latencies(events, after=0.0, queued_at={"caller-1": 10.5})
    assert latencies == [] and idle == 1
