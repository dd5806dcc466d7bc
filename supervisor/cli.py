"""`siaga user add|passwd|disable|enable|list`: the console's users. Registered on the main
CLI's subparsers by `register(subparsers, get_dsn, get_config)`. Exit codes: 0 done, 1 refused
(a `CommandError`, db/command.py, which `stack/cli.py` prints). Every change is written to the
console's audit."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

import asyncpg

from db.command import CommandError, run_database_command
from siaga.config import Config
from supervisor import store
from supervisor.accounts import AccountProblem, account_problem
from supervisor.roles import Role
from supervisor.security import hash_password, password_problem, username_problem
from supervisor.store import AuditAction

GetDsn = Callable[[argparse.Namespace], str]
GetConfig = Callable[[argparse.Namespace], Config]


def register(subparsers: Any, get_dsn: GetDsn, get_config: GetConfig | None = None) -> None:
    user = subparsers.add_parser("user", help="web console users")
    sub = user.add_subparsers(dest="user_command", required=True)

    add = sub.add_parser("add", help="create a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--operator", help="for --role operator: the operator's id in siaga.toml")
    add.add_argument("--name", help="display name")
    add.add_argument("--phone", help="dial string rung for listen/whisper/barge, e.g. PJSIP/2001")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=lambda args: run_database_command(_add(args, get_dsn(args), get_config)))

    passwd = sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(func=lambda args: run_database_command(_passwd(args, get_dsn(args))))

    disable = sub.add_parser("disable", help="refuse the user's logins and end their sessions")
    disable.add_argument("username")
    disable.set_defaults(
        func=lambda args: run_database_command(_disable(args, get_dsn(args), True))
    )

    enable = sub.add_parser("enable", help="allow a disabled user again")
    enable.add_argument("username")
    enable.set_defaults(
        func=lambda args: run_database_command(_disable(args, get_dsn(args), False))
    )

    listing = sub.add_parser("list", help="list the users")
    listing.set_defaults(func=lambda args: run_database_command(_list(get_dsn(args))))


def read_password(username: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"New password for {username}: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("the passwords differ")
    problem = password_problem(username, password)
    if problem:
        raise CommandError(problem)
    return password


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


async def _audit(conn: Any, action: AuditAction, target: str, **detail: str) -> None:
    await store.audit(conn, action, username=_actor(), role="cli", target=target, detail=detail)


async def _add(args: argparse.Namespace, dsn: str, get_config: GetConfig | None) -> int:
    problem = username_problem(args.username)
    if problem:
        raise CommandError(problem)
    role = Role(args.role)
    operator_id = args.operator
    known = None  # siaga.toml is read only when there is an operator id to look up
    if operator_id and get_config is not None:
        known = [op.id for op in get_config(args).operators]
    wrong = account_problem(role, operator_id, args.phone, known)
    if wrong is AccountProblem.OPERATOR_NEEDED:
        raise CommandError("an operator needs --operator ID (their id in siaga.toml)")
    if wrong is AccountProblem.OPERATOR_ONLY:
        raise CommandError("--operator is only for --role operator")
    if wrong is AccountProblem.OPERATOR_UNKNOWN:
        raise CommandError(
            f"no operator {operator_id!r} in siaga.toml (known: {', '.join(known or [])})"
        )
    if wrong is AccountProblem.PHONE:
        raise CommandError("--phone is one dial string, e.g. PJSIP/2001")
    password = read_password(args.username, args.password_stdin)
    hashed = await asyncio.to_thread(hash_password, password)
    conn = await asyncpg.connect(dsn)
    try:
        try:
            await store.add_user(
                conn,
                args.username,
                role,
                hashed,
                display_name=args.name,
                operator_id=operator_id,
                phone=args.phone,
            )
        except store.UserExistsError:
            raise CommandError(f"user {args.username!r} exists already") from None
        await _audit(conn, AuditAction.USER_ADD, args.username, role=role.value)
    finally:
        await conn.close()
    print(f"user {args.username} added ({role.value})")
    return 0


async def _passwd(args: argparse.Namespace, dsn: str) -> int:
    password = read_password(args.username, args.password_stdin)
    hashed = await asyncio.to_thread(hash_password, password)
    conn = await asyncpg.connect(dsn)
    try:
        try:
            await store.set_password(conn, args.username, hashed)
        except store.UnknownUserError:
            raise CommandError(f"no user {args.username!r}") from None
        await _audit(conn, AuditAction.USER_PASSWD, args.username)
    finally:
        await conn.close()
    print(f"password of {args.username} changed; their sessions are ended")
    return 0


async def _disable(args: argparse.Namespace, dsn: str, disabled: bool) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        try:
            await store.set_disabled(conn, args.username, disabled)
        except store.UnknownUserError:
            raise CommandError(f"no user {args.username!r}") from None
        except store.LastAdminError:
            raise CommandError(f"{args.username} is the last enabled admin") from None
        await _audit(
            conn, AuditAction.USER_DISABLE if disabled else AuditAction.USER_ENABLE, args.username
        )
    finally:
        await conn.close()
    print(f"user {args.username} {'disabled' if disabled else 'enabled'}")
    return 0


async def _list(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        users = await store.list_users(conn)
    finally:
        await conn.close()
    for user in users:
        flags = (("disabled", user.disabled), ("dev-password", user.dev_default))
        notes = [name for name, on in flags if on]
        print(
            f"{user.username}\t{user.role.value}\t{user.operator_id or '-'}\t"
            f"{user.display_name or '-'}\t{' '.join(notes)}"
        )
    return 0
