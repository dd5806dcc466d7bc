"""The look at each call's recording when the call ends: no recording, or one cut short of the
call, is told to the call's records as the flag `recording_failed`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.events import RECORDING_FAILED, EventKind, Facts, HangupBy, RecordEvent
from stack.recordings import (
    WAV_BYTES_PER_SECOND,
    WAV_HEADER_BYTES,
    RecordingCheck,
    recorded_seconds,
    recording_failed,
)

START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


class Journal:
    def __init__(self) -> None:
        self.events: list[RecordEvent] = []

    def write(self, event: RecordEvent) -> None:
        self.events.append(event)

    def flagged(self) -> list[str | None]:
        return [
            e.call_id
            for e in self.events
            if e.kind is EventKind.FLAG_SET and e.data["flag"] == RECORDING_FAILED
        ]


def wav(folder: Path, call_id: str, seconds: float) -> None:
    size = WAV_HEADER_BYTES + int(seconds * WAV_BYTES_PER_SECOND)
    (folder / f"{call_id}.wav").write_bytes(b"\0" * size)


@pytest.mark.parametrize(
    ("recorded", "lasted", "failed"),
    [
        (None, 30.0, True),  # no file
        (0.0, 30.0, True),  # the header or less: a disk full from the start
        (0.0, None, True),
        (2.0, 8.0, True),  # cut 6 s short: the disk filled during the call
        (30.5, 30.0, False),  # MixMonitor starts before the app hears of the call
        (26.0, 30.0, False),  # a few frames short is no failure
        (0.1, 0.3, False),  # a caller hanging up at once
        (40.0, 60.0, True),
        (2.0, None, False),  # an adopted call: how long it lasted is not known
    ],
)
def test_a_recording_fails_when_missing_empty_or_cut_short(recorded, lasted, failed):
    assert recording_failed(recorded, lasted) is failed


def test_recorded_seconds_from_the_file_size(tmp_path: Path) -> None:
    wav(tmp_path, "a", 2.5)
    (tmp_path / "empty.wav").write_bytes(b"")

    assert recorded_seconds(tmp_path / "a.wav") == 2.5
    assert recorded_seconds(tmp_path / "empty.wav") == 0
    assert recorded_seconds(tmp_path / "missing.wav") is None


def arrived(call_id: str, at: datetime) -> RecordEvent:
    return Facts.call_arrived("0812").stamp(call_id=call_id, at=at)


def ended(call_id: str, at: datetime) -> RecordEvent:
    return Facts.call_ended(HangupBy.CALLER).stamp(call_id=call_id, at=at)


async def test_each_ended_call_is_looked_at_once_and_only_failures_are_flagged(
    tmp_path: Path,
) -> None:
    journal = Journal()
    check = RecordingCheck(journal, tmp_path, after_seconds=0.01)
    wav(tmp_path, "whole", 20)
    wav(tmp_path, "cut", 4)
    (tmp_path / "empty.wav").write_bytes(b"")
    for call_id in ("whole", "cut", "empty", "missing"):
        check.write(arrived(call_id, START))
        check.write(ended(call_id, START + timedelta(seconds=20)))
    check.write(ended("whole", START + timedelta(seconds=21)))  # a second end: no second look
    abandoned = Facts.call_abandoned(position=1).stamp(call_id="gone", at=START)
    check.write(abandoned)  # arrived before this journal started: only "is there audio"

    await check.close()

    assert sorted(c for c in journal.flagged() if c) == ["cut", "empty", "gone", "missing"]
    assert len(journal.events) == 8 + 1 + 1 + 4  # everything went through, then the flags
    assert check.failures == 4  # served at /metrics


async def test_close_waits_for_the_checks_under_way(tmp_path: Path) -> None:
    journal = Journal()
    check = RecordingCheck(journal, tmp_path, after_seconds=0.2)
    check.write(ended("missing", START))

    await check.close()

    assert journal.flagged() == ["missing"]


async def test_arrivals_of_calls_that_never_end_here_are_forgotten_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stack.recordings.MAX_OPEN_CALLS", 2)
    journal = Journal()
    check = RecordingCheck(journal, tmp_path, after_seconds=0.01)
    for call_id in ("first", "second", "third"):
        wav(tmp_path, call_id, 1)
        check.write(arrived(call_id, START))
    for call_id in ("first", "third"):
        check.write(ended(call_id, START + timedelta(seconds=60)))

    await check.close()

    # "first" is forgotten: only "is there audio" is asked of it; "third" lasted 60 s.
    assert journal.flagged() == ["third"]


async def test_a_node_judges_only_its_own_calls_recordings(tmp_path: Path) -> None:
    # Another node's recordings are on that node's disk: missing here is no failure.
    journal = Journal()
    check = RecordingCheck(journal, tmp_path, after_seconds=0.01, node="node_a")
    for call_id in ("node_a-1733212345.1", "node_b-1733212345.1"):
        check.write(ended(call_id, START))

    await check.close()

    assert journal.flagged() == ["node_a-1733212345.1"]
    assert len(journal.events) == 2 + 1  # both ends went through; one flag
