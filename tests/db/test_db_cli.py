"""`siaga db migrate`, `siaga calls` and `siaga report` through their argparse handlers."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
from pathlib import Path

import db_sample_day as day
import pytest
from db_support import write_all

from db import cli
from stack.cli import run_command


def parser_for(dsn: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siaga")
    parser.add_argument("--dsn", default=dsn)
    cli.register(parser.add_subparsers(dest="command", required=True), lambda args: args.dsn)
    return parser


async def run(dsn: str, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = parser_for(dsn).parse_args(list(argv))
    # Handlers call asyncio.run themselves, as they do under the real CLI: give them a thread.
    code = await asyncio.to_thread(run_command, args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
async def day_dsn(pg_dsn: str, tmp_path: Path) -> str:
    await write_all(pg_dsn, day.all_events(), tmp_path / "journal.jsonl")
    return pg_dsn


async def test_db_migrate(pg_empty_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run(pg_empty_dsn, capsys, "db", "migrate")
    assert code == 0
    # (structlog's default configuration also prints its log lines on stdout)
    assert [line for line in out.splitlines() if not line.startswith("20")] == [
        "applied 001_schema.sql",
        "applied 002_ingest.sql",
        "applied 003_reports.sql",
        "applied 004_ingest_custom_plans.sql",
        "applied 010_console.sql",
        "applied 011_ghost_answers.sql",
        "applied 012_cached_plans.sql",
        "applied 013_report_routes.sql",
        "applied 014_recording_holds.sql",
        "applied 015_console_password_change.sql",
    ]
    code, out, _ = await run(pg_empty_dsn, capsys, "db", "migrate")
    assert (code, out) == (0, "schema up to date\n")


async def test_unreachable_database_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    from testbed.cluster import free_port

    dead = f"postgresql://siaga@127.0.0.1:{free_port()}/siaga"
    code, out, err = await run(dead, capsys, "calls")
    assert code == 1 and out == "" and err.startswith("siaga: database error")


async def test_calls_json_with_filters(day_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run(
        day_dsn, capsys, "calls", "--json", "--since", "2024-05-01", "--until", "2024-05-02",
        "--tz", day.TZ, "--category", "medical", "--outcome", "answered",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert [r["call_id"] for r in rows] == ["A2", "A1"]  # newest first
    assert rows[1] == {
        "call_id": "A1",
        "caller_number": "0812555A1",
        "caller_name": None,
        "arrived_at": "2024-05-01T01:00:00.000+00:00",
        "connected_at": "2024-05-01T01:00:08.000+00:00",
        "abandoned_at": None,
        "ended_at": "2024-05-01T01:01:08.000+00:00",
        "category": "medical",
        "priority": 1,
        "operator_id": "op1",
        "outcome": "answered",
        "wait_seconds": 8.0,
        "talk_seconds": 60.0,
        "hangup_by": "caller",
        "end_reason": "normal",
        "flags": [],
        "agencies": [],
        "verdict": "emergency",
    }

    _, out, _ = await run(day_dsn, capsys, "calls", "--json", "--operator", "op2")
    assert [r["call_id"] for r in json.loads(out)] == ["A4", "A2"]
    _, out, _ = await run(day_dsn, capsys, "calls", "--json", "--number", "0812555")
    assert len(json.loads(out)) == 4 + 2  # A1-A4, X1, X2
    _, out, _ = await run(day_dsn, capsys, "calls", "--json", "--outcome", "abandoned")
    assert [r["call_id"] for r in json.loads(out)] == ["B3", "B2", "B1"]


async def test_calls_table(day_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run(day_dsn, capsys, "calls", "--tz", day.TZ, "--number", "B2")
    assert code == 0
    lines = out.splitlines()
    header = "arrived call number name category operator outcome wait s talk s flags verdict"
    assert lines[0].split() == header.split()
    row = "2024-05-01 10:00:00 B2 0813B2 - police - abandoned 30 - - -"
    assert lines[2].split() == row.split()
    assert lines[-1] == "(1 calls, times in Asia/Jakarta)"
    assert await run(day_dsn, capsys, "calls", "--since", "yesterday-ish") == (
        2, "", "siaga: not a date/time or age: 'yesterday-ish'\n",
    )  # fmt: skip


async def test_report_csv_exact(day_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run(
        day_dsn, capsys, "report", "--day", "2024-05-01", "--tz", day.TZ, "--csv"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "scope,category,bucket,route,received,answered,abandoned,abandoned_short,unanswered,"
        "fallback,ongoing,answered_within_10,answered_within_15,answered_within_20,"
        "service_level_10,service_level_15,service_level_20,asa_seconds,"
        "longest_wait_seconds,disposed,prank,silent,prank_share,silent_share,"
        "to_ring_calls,to_ring_p50,to_ring_p90,to_ring_p99,"
        "to_answer_calls,to_answer_p50,to_answer_p90,to_answer_p99"
    )
    assert lines[1] == (
        "total,,,,10,4,1,2,1,1,1,1,2,3,0.2,0.4,0.6,15.875,30.0,4,1,1,0.25,0.25,"
        "4,10.0,23.5,23.5,4,12.0,25.5,25.5"
    )
    assert "category,unclassified,,,2,0,0,1,0,1,0,0,0,0,,,,,5.0,0,0,0,,,0,,,,0,,," in lines
    assert (
        "hour,,2024-05-01T08:00:00+07:00,,2,2,0,0,0,0,0,1,2,2,0.5,1.0,1.0,10.0,12.0,2,1,0,0.5,"
        "0.0,2,2.0,10.0,10.0,2,8.0,12.0,12.0" in lines
    )
    assert "route,,,no_input,1,0,0,1,0,0,0,0,0,0,,,,,5.0,0,0,0,,,0,,,,0,,," in lines
    assert [line.split(",")[3] for line in lines if line.startswith("route,")] == [
        "fallback",
        "no_input",
        "digit",
    ]
    assert len(lines) == 1 + 1 + 4 + 5 + 3

    _, out, _ = await run(day_dsn, capsys, "report", "--day", "2024-05-01", "--tz", day.TZ,
                          "--csv", "--operators")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["operator_id"] for r in rows] == ["op1", "op2", "op3"]
    assert rows[0]["logged_in_seconds"] == "47400.0"
    assert json.loads(rows[0]["pause_by_reason"]) == {"break": 1800.0, "toilet": 600.0}


async def test_report_json_and_table(day_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run(
        day_dsn, capsys, "report", "--from", "2024-05-01", "--to", "2024-05-02",
        "--tz", day.TZ, "--json", "--sl", "10,20",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["period"] == {
        "start": "2024-05-01T00:00:00+07:00",
        "end": "2024-05-03T00:00:00+07:00",
    }
    assert data["bucket"] == "day" and data["thresholds"] == [10.0, 20.0]
    assert data["total"]["received"] == 11  # X2 arrives on the 2nd
    assert [b["received"] for b in data["by_bucket"]] == [10, 1]
    assert [s["answered_within"] for s in data["total"]["service_levels"]] == [1 + 1, 3 + 1]
    # + X2 (rang after 3 s, answered after 5 s): ring 2, 3, 10, 16, 23.5; answer 5, 8, 12...
    assert data["total"]["to_ring"] == {"calls": 5, "p50": 10.0, "p90": 23.5, "p99": 23.5}
    assert data["total"]["to_answer"] == {"calls": 5, "p50": 12.0, "p90": 25.5, "p99": 25.5}
    assert [(r["scope"], r["route"], r["received"]) for r in data["by_route"]] == [
        ("route", "fallback", 1),
        ("route", "no_input", 1),
        ("route", "digit", 9),
    ]

    code, out, _ = await run(day_dsn, capsys, "report", "--day", "2024-05-01", "--tz", day.TZ)
    assert code == 0
    assert out.startswith("Calls 2024-05-01 00:00:00 to 2024-05-02 00:00:00 (Asia/Jakarta)\n")
    total = next(line for line in out.splitlines() if line.startswith("total"))
    expected = "total - 10 4 1 2 1 1 1 20.0% 40.0% 60.0% 15.875 30 1 (25.0%) 1 (25.0%)"
    assert total.split() == expected.split()
    assert "op1" in out and "13:10:00" in out  # op1 logged in 13:10:00 in total
    rows = [" ".join(line.split()) for line in out.splitlines()]  # columns one space apart
    assert "route no_input 1 0 0 1 0 0 0 - - - - 5 0 0" in rows
    human = rows.index("Time to a human, seconds from arrival")
    assert rows[human + 1] == (
        "scope category offered ring p50 ring p90 ring p99 answered answer p50 answer p90 "
        "answer p99"
    )
    assert rows[human + 3] == "total - 4 10 23.5 23.5 4 12 25.5 25.5"
    assert "category police 0 - - - 0 - - -" in rows
