"""`siaga block`, `siaga unblock`, `siaga blocks` against PostgreSQL: time-limited blocks with a
reason and an author, every change audited in the journal, nothing deleted."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from agi import cli
from agi.records import caller_facts, list_blocks
from agi.screening import ScreeningSettings
from stack.cli import run_command


def run(dsn: str, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="siaga")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub, lambda args: dsn, default_hours=lambda args: 12.0)
    args = parser.parse_args(list(argv))
    return run_command(args)


async def in_thread(dsn: str, *argv: str) -> int:
    # The commands run their own event loop (asyncio.run), as under the real CLI.
    return await asyncio.to_thread(run, dsn, *argv)


async def test_block_list_unblock_with_audit_trail(pg_dsn, capsys):
    assert (
        await in_thread(
            pg_dsn, "block", "+62 812-1111-2222", "--reason", "prank x3", "--by", "sup1"
        )
        == 0
    )
    assert "blocked 081211112222 until" in capsys.readouterr().out

    conn = await asyncpg.connect(pg_dsn)
    try:
        (flag,) = await conn.fetch("SELECT * FROM caller_flags")
        assert flag["number"] == "081211112222" and flag["flag"] == "blocked"
        assert flag["reason"] == "prank x3" and flag["set_by"] == "sup1"
        # The configured default length (12 h here) when --hours is not given.
        assert flag["expires_at"] - flag["set_at"] == timedelta(hours=12)

        # Screening knows the number in the form calls arrive in.
        facts = await caller_facts(conn, "6281211112222", datetime.now(UTC), ScreeningSettings())
        assert facts.block is not None and facts.block.flag_id == flag["flag_id"]

        assert await in_thread(pg_dsn, "blocks", "--json") == 0
        listed = json.loads(capsys.readouterr().out)
        assert [(b["number"], b["status"], b["set_by"]) for b in listed] == [
            ("081211112222", "active", "sup1")
        ]

        assert (
            await in_thread(pg_dsn, "unblock", "081211112222", "--by", "sup2", "--reason", "ok")
            == 0
        )
        assert "unblocked 081211112222" in capsys.readouterr().out
        assert await in_thread(pg_dsn, "unblock", "081211112222") == 1  # nothing left to lift
        assert "no active block" in capsys.readouterr().err

        facts = await caller_facts(conn, "081211112222", datetime.now(UTC), ScreeningSettings())
        assert facts.block is None
        assert await in_thread(pg_dsn, "blocks") == 0
        assert capsys.readouterr().out.strip() == "no blocks"
        assert await in_thread(pg_dsn, "blocks", "--all", "--number", "081211112222") == 0
        table = capsys.readouterr().out
        assert "lifted" in table and "prank x3" in table

        # Audited: both changes are events in the journal, and the flag row is kept.
        kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM call_events ORDER BY seq")]
        assert kinds == ["caller_flag_set", "caller_flag_cleared"]
        (flag,) = await conn.fetch("SELECT * FROM caller_flags")
        assert flag["cleared_by"] == "sup2" and flag["clear_reason"] == "ok"
    finally:
        await conn.close()


async def test_blocks_expire_by_themselves(pg_dsn, capsys):
    assert await in_thread(pg_dsn, "block", "0811", "--hours", "1.5", "--reason", "r") == 0
    capsys.readouterr()
    conn = await asyncpg.connect(pg_dsn)
    try:
        later = datetime.now(UTC) + timedelta(hours=1.5, seconds=1)
        assert (await caller_facts(conn, "0811", later, ScreeningSettings())).block is None
        assert await list_blocks(conn, later) == []
        (gone,) = await list_blocks(conn, later, include_inactive=True)
        assert cli.status(gone, later) == "expired"
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "argv",
    [
        ("block", "0811", "--hours", "0", "--reason", "r"),
        ("block", "0811", "--hours", "-3", "--reason", "r"),
        ("block", "anonymous", "--reason", "r"),
        ("block", "0811"),  # a block needs a reason
    ],
)
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        code = run("postgresql://nowhere/none", *argv)
        raise SystemExit(code)
    assert exc.value.code == 2


def test_database_down_is_an_error_not_a_crash(capsys):
    assert run("postgresql://siaga@127.0.0.1:1/none", "blocks") == 1
    assert "database error" in capsys.readouterr().err
