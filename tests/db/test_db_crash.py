"""The writer's process killed (SIGKILL) after spooling, and again half-way through the
replay: the next start replays everything, each event exactly once. Killed with a call's
events in memory, not yet committed: the journal had them all the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from db_support import fetch, fetchval
from db_writer_child import answered_call, event

from db.writer import RecordWriter
from testbed.cluster import free_port

CHILD = Path(__file__).with_name("db_writer_child.py")
ROOT = Path(__file__).resolve().parents[2]
COUNT = 6000


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )


def wait_for_line(child: subprocess.Popen[str], prefix: str) -> str:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"child exited (code {child.wait()}) before printing {prefix!r}")


def kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL


async def test_killed_after_spool_then_killed_mid_replay_loses_nothing(
    pg_dsn: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.jsonl"
    dead = f"postgresql://siaga@127.0.0.1:{free_port()}/siaga"

    # 1. PostgreSQL unreachable: the child spools everything, then dies without a goodbye.
    child = spawn(dead, str(journal), "spool", str(COUNT))
    assert wait_for_line(child, "SPOOLED") == f"SPOOLED {COUNT}"
    kill(child)
    assert len(journal.read_text(encoding="utf-8").splitlines()) == COUNT
    # A crash in the middle of an append leaves a torn last line.
    with journal.open("a", encoding="utf-8") as handle:
        handle.write('{"v":1,"event_id":"0000')

    # 2. PostgreSQL reachable: the next child replays, and is killed half-way.
    child = spawn(pg_dsn, str(journal), "replay")
    wait_for_line(child, "REPLAYED")
    wait_for_line(child, "REPLAYED")
    kill(child)
    halfway = await fetchval(pg_dsn, "SELECT count(*) FROM call_events")
    assert 0 < halfway < COUNT

    # 3. The next start replays the whole journal again; what was in is not doubled.
    writer = RecordWriter(pg_dsn, journal, max_batch=1000)
    await writer.start()
    await writer.wait_replayed(timeout=60)
    await writer.close()

    rows = await fetch(pg_dsn, "SELECT event_id FROM call_events ORDER BY seq")
    assert [r["event_id"] for r in rows] == [event(i).event_id for i in range(COUNT)]
    assert writer.stats().duplicates >= halfway
    assert await fetchval(pg_dsn, "SELECT count(*) FROM calls") == COUNT // 4
    assert journal.stat().st_size == 0
    rejected = journal.with_name("journal.jsonl.rejected").read_text(encoding="utf-8")
    assert "torn last line" in rejected and '{"v":1,"event_id":"0000' in rejected


async def test_a_call_that_ended_just_before_a_kill_is_recorded_whole(
    pg_dsn: str, tmp_path: Path
) -> None:
    # The bug report: answered, hung up, the app SIGKILLed a second later: the call stayed
    # `answered` for good. The child's commits wait a minute, so none happens before the kill.
    journal = tmp_path / "journal.jsonl"
    child = spawn(pg_dsn, str(journal), "call")
    wait_for_line(child, "FLUSHED")
    wait_for_line(child, "ENDED")  # half a second after its last write(), no flush
    kill(child)
    assert await fetchval(pg_dsn, "SELECT count(*) FROM call_events") == 0
    events = answered_call("killed-call")
    assert len(journal.read_text(encoding="utf-8").splitlines()) == len(events)

    writer = RecordWriter(pg_dsn, journal)
    await writer.start()
    await writer.wait_replayed(timeout=30)
    await writer.close()
    assert writer.replayed == len(events)
    (call,) = await fetch(pg_dsn, "SELECT outcome, connected_at, ended_at, events FROM calls")
    assert call["outcome"] == "answered" and call["events"] == len(events)
    assert (call["connected_at"], call["ended_at"]) == (events[3].at, events[4].at)
    assert journal.stat().st_size == 0
