"""`siaga user add|passwd|disable|enable|list` against a real PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys

import pytest

from stack.cli import run_command
from supervisor import store
from supervisor.cli import register
from supervisor.security import DEV_PASSWORD, verify_password


@pytest.fixture
def user_cli(pg_dsn, console_config, monkeypatch, capsys):
    parser = argparse.ArgumentParser(prog="siaga")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub, lambda args: pg_dsn, lambda args: console_config)

    async def run(*argv: str, password: str | None = None) -> tuple[int, str, str]:
        args = parser.parse_args(list(argv))
        monkeypatch.setattr(sys, "stdin", io.StringIO((password or "") + "\n"))
        code = await asyncio.to_thread(run_command, args)
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_add_passwd_disable_enable(user_cli, db):
    code, out, _ = await user_cli(
        "user",
        "add",
        "sari",
        "--role",
        "operator",
        "--operator",
        "1001",
        "--name",
        "Sari",
        "--password-stdin",
        password="kopi tubruk 112",
    )
    assert code == 0 and "sari added" in out
    found = await store.find_user(db, "SARI")  # names are case-insensitive
    assert found is not None
    user, hashed = found
    assert (user.role.value, user.operator_id, user.display_name) == ("operator", "1001", "Sari")
    assert verify_password(hashed, "kopi tubruk 112")

    code, _, _ = await user_cli(
        "user", "passwd", "sari", "--password-stdin", password="teh manis 112"
    )
    assert code == 0
    _, hashed = await store.find_user(db, "sari")
    assert verify_password(hashed, "teh manis 112")
    assert not verify_password(hashed, "kopi tubruk 112")

    assert (await user_cli("user", "disable", "sari"))[0] == 0
    assert (await store.find_user(db, "sari"))[0].disabled
    assert (await user_cli("user", "enable", "sari"))[0] == 0
    assert not (await store.find_user(db, "sari"))[0].disabled

    code, out, _ = await user_cli("user", "list")
    assert code == 0 and out.startswith("sari\toperator\t1001\tSari")
    actions = [r["action"] for r in await db.fetch("SELECT action FROM console_audit ORDER BY 1")]
    assert sorted(actions) == ["user_add", "user_disable", "user_enable", "user_passwd"]


BAD_INPUT = [
    ("budi", ("--role", "supervisor"), "short", "at least 10 characters"),
    ("budi", ("--role", "supervisor"), DEV_PASSWORD, "development password"),
    ("budi-santoso", ("--role", "supervisor"), "budi-santoso", "must not be the user name"),
    ("budi", ("--role", "operator"), "a good password", "needs --operator"),
    ("budi", ("--role", "operator", "--operator", "9999"), "a good password", "no operator"),
    ("budi", ("--role", "admin", "--operator", "1001"), "a good password", "only for --role"),
    ("<b>", ("--role", "admin"), "a good password", "a user name is"),
    ("budi", ("--role", "supervisor", "--phone", "PJSIP/1&PJSIP/2"), "a good password", "--phone"),
]


async def test_add_refuses_bad_input(user_cli, db):
    for name, argv, password, reason in BAD_INPUT:
        code, _, err = await user_cli(
            "user", "add", name, *argv, "--password-stdin", password=password
        )
        assert code == 1 and reason in err, (name, argv, err)
    assert await store.count_users(db) == 0


async def test_refusals_for_unknown_and_duplicate_users(user_cli):
    args = ("user", "add", "budi", "--role", "admin", "--password-stdin")
    assert (await user_cli(*args, password="a good password"))[0] == 0
    code, _, err = await user_cli(*args, password="a good password")
    assert code == 1 and "exists already" in err
    code, _, err = await user_cli("user", "disable", "nobody")
    assert code == 1 and "no user 'nobody'" in err
    code, _, err = await user_cli("user", "passwd", "nobody", "--password-stdin", password="x" * 12)
    assert code == 1 and "no user 'nobody'" in err


async def test_the_last_enabled_admin_cannot_be_disabled(user_cli, db):
    args = ("user", "add", "budi", "--role", "admin", "--password-stdin")
    assert (await user_cli(*args, password="a good password"))[0] == 0
    code, _, err = await user_cli("user", "disable", "budi")
    assert code == 1 and "last enabled admin" in err
    assert not (await store.find_user(db, "budi"))[0].disabled
