"""The console's own tables (010_console.sql): users, sessions, audit. Parameters are always
bound; a session is found by the SHA-256 of its cookie token, never by the token itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import asyncpg

from db.queryable import Queryable
from supervisor.roles import Role
from supervisor.security import token_digest

# last_seen_at is written at most this often per session (not on every request).
_TOUCH_EVERY = timedelta(seconds=60)


class Db(Queryable, Protocol):
    """An asyncpg Connection or Pool, which the console also writes with."""

    async def execute(self, query: str, *args: Any) -> str: ...


class AuditAction(StrEnum):
    """What the audit records; the console shows each in words (supervisor/words.py)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGOUT = "logout"
    CALLS_EXPORT = "calls_export"
    RECORDING_PLAY = "recording_play"
    CALL_CLASSIFY = "call_classify"
    CALL_LISTEN = "call_listen"  # call_<ListenMode>: a supervisor on a call
    CALL_WHISPER = "call_whisper"
    CALL_BARGE = "call_barge"
    OPERATOR_LOGIN = "operator_login"  # operator_<action>: from the board or a feature code
    OPERATOR_LOGOUT = "operator_logout"
    OPERATOR_PAUSE = "operator_pause"
    OPERATOR_READY = "operator_ready"
    NUMBER_BLOCK = "number_block"
    NUMBER_UNBLOCK = "number_unblock"
    USER_ADD = "user_add"
    USER_PASSWD = "user_passwd"
    USER_DISABLE = "user_disable"
    USER_ENABLE = "user_enable"
    RECORDING_DELETED = "recording_deleted"
    RECORDING_HELD = "recording_held"
    RECORDING_RELEASED = "recording_released"
    ALERT_ACK = "alert_ack"
    # user management on the console (supervisor/views/users.py)
    USER_UPDATE = "user_update"  # role, operator id, phone or name changed
    USER_PASSWD_RESET = "user_passwd_reset"  # set by an admin: to be changed at next sign-in
    REPORT_EXPORT = "report_export"  # reports: a report table as CSV or the XLSX workbook


class UserExistsError(Exception):
    pass


class UnknownUserError(Exception):
    pass


class LastAdminError(Exception):
    """Refused: the change would leave the console without an enabled admin."""


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    display_name: str | None
    role: Role
    operator_id: str | None
    phone: str | None
    disabled: bool
    dev_default: bool = False
    must_change_password: bool = False

    @property
    def name(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    audit_id: int
    at: datetime
    username: str | None
    role: str | None
    action: str
    target: str | None
    client: str | None
    detail: dict[str, Any]


_USER_COLUMNS = (
    "u.user_id, u.username, u.display_name, u.role, u.operator_id, u.phone,"
    " u.disabled_at IS NOT NULL AS disabled, u.dev_default, u.must_change_password"
)


def _user(row: Any) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        operator_id=row["operator_id"],
        phone=row["phone"],
        disabled=row["disabled"],
        dev_default=row["dev_default"],
        must_change_password=row["must_change_password"],
    )


async def add_user(
    db: Db,
    username: str,
    role: Role,
    password_hash: str,
    *,
    display_name: str | None = None,
    operator_id: str | None = None,
    phone: str | None = None,
    dev_default: bool = False,
    must_change: bool = False,
) -> User:
    """`must_change`: the user is to replace the password at their first sign-in."""
    try:
        row = await db.fetchrow(
            "INSERT INTO console_users AS u (username, role, password_hash, display_name,"
            " operator_id, phone, dev_default, must_change_password)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_USER_COLUMNS}",
            username,
            Role(role).value,
            password_hash,
            display_name,
            operator_id,
            phone,
            dev_default,
            must_change,
        )
    except asyncpg.UniqueViolationError:
        raise UserExistsError(username) from None
    return _user(row)


async def find_user(db: Db, username: str) -> tuple[User, str] | None:
    """The user and their password hash, whatever their state."""
    row = await db.fetchrow(
        f"SELECT {_USER_COLUMNS}, u.password_hash FROM console_users u"
        " WHERE lower(u.username) = lower($1)",
        username,
    )
    return None if row is None else (_user(row), row["password_hash"])


async def list_users(db: Db) -> list[User]:
    rows = await db.fetch(f"SELECT {_USER_COLUMNS} FROM console_users u ORDER BY u.username")
    return [_user(row) for row in rows]


async def count_users(db: Db) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM console_users")
    return count


async def users_with_dev_password(db: Db) -> list[str]:
    rows = await db.fetch(
        "SELECT username FROM console_users WHERE dev_default AND disabled_at IS NULL"
        " ORDER BY username"
    )
    return [row["username"] for row in rows]


async def set_password(
    db: Db,
    username: str,
    password_hash: str,
    *,
    dev_default: bool = False,
    must_change: bool = False,
) -> None:
    """A new password also ends every open session of the user. `must_change`: the user is
    to replace it at their next sign-in (one an admin set for them)."""
    user_id = await db.fetchval(
        "UPDATE console_users SET password_hash = $2, dev_default = $3,"
        " must_change_password = $4, password_changed_at = now()"
        " WHERE lower(username) = lower($1) RETURNING user_id",
        username,
        password_hash,
        dev_default,
        must_change,
    )
    if user_id is None:
        raise UnknownUserError(username)
    await db.execute("DELETE FROM console_sessions WHERE user_id = $1", user_id)


async def rehash_password(db: Db, user_id: int, password_hash: str) -> None:
    """Same password, stronger hash parameters: sessions stay."""
    await db.execute(
        "UPDATE console_users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash
    )


async def set_disabled(db: Db, username: str, disabled: bool) -> None:
    """Disabling a user also ends every open session of theirs. The last enabled admin cannot
    be disabled (`LastAdminError`)."""
    async with _admins_locked(db) as conn:
        if disabled:
            await _keep_an_admin(conn, username)
        user_id = await conn.fetchval(
            "UPDATE console_users SET disabled_at = CASE WHEN $2"
            " THEN coalesce(disabled_at, now()) END"
            " WHERE lower(username) = lower($1) RETURNING user_id",
            username,
            disabled,
        )
        if user_id is None:
            raise UnknownUserError(username)
        if disabled:
            await conn.execute("DELETE FROM console_sessions WHERE user_id = $1", user_id)


async def update_user(
    db: Db,
    username: str,
    *,
    role: Role,
    operator_id: str | None,
    phone: str | None,
    display_name: str | None,
) -> User:
    """Set a user's role, operator id, phone and name. The last enabled admin keeps their role
    (`LastAdminError`). Sessions stay: each request reads the user's role afresh."""
    async with _admins_locked(db) as conn:
        if Role(role) is not Role.ADMIN:
            await _keep_an_admin(conn, username)
        row = await conn.fetchrow(
            "UPDATE console_users AS u SET role = $2, operator_id = $3, phone = $4,"
            f" display_name = $5 WHERE lower(username) = lower($1) RETURNING {_USER_COLUMNS}",
            username,
            Role(role).value,
            operator_id,
            phone,
            display_name,
        )
        if row is None:
            raise UnknownUserError(username)
        return _user(row)


# Taken by every change that could leave no enabled admin, so that two admins disabling each
# other at the same moment cannot both succeed.
_ADMINS_LOCK = 112_0001


@asynccontextmanager
async def _admins_locked(db: Db) -> AsyncIterator[Db]:
    """A transaction (on a connection of the pool, if `db` is one) holding the admins' lock."""
    acquire = getattr(db, "acquire", None)
    if acquire is not None:
        async with acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ADMINS_LOCK)
            yield conn
    else:
        async with db.transaction():  # type: ignore[attr-defined]
            await db.execute("SELECT pg_advisory_xact_lock($1)", _ADMINS_LOCK)
            yield db


async def _keep_an_admin(conn: Db, username: str) -> None:
    """Refuse when `username` is the only enabled admin (they are about to stop being one)."""
    others = await conn.fetchval(
        "SELECT count(*) FROM console_users WHERE role = 'admin' AND disabled_at IS NULL"
        " AND lower(username) <> lower($1)",
        username,
    )
    is_admin = await conn.fetchval(
        "SELECT role = 'admin' AND disabled_at IS NULL FROM console_users"
        " WHERE lower(username) = lower($1)",
        username,
    )
    if is_admin and others == 0:
        raise LastAdminError(username)


async def create_session(
    db: Db, user_id: int, token: str, csrf_token: str, lifetime: timedelta, client: str
) -> None:
    await db.execute(
        "INSERT INTO console_sessions (token_digest, user_id, csrf_token, expires_at, client)"
        " VALUES ($1, $2, $3, now() + $4::interval, $5)",
        token_digest(token),
        user_id,
        csrf_token,
        lifetime,
        client,
    )
    # Expired sessions of anyone are swept at each login.
    await db.execute("DELETE FROM console_sessions WHERE expires_at < now()")


async def load_session(db: Db, token: str, idle: timedelta) -> Session | None:
    """The live session of this cookie token: not expired, not idle too long, user enabled."""
    row = await db.fetchrow(
        f"SELECT {_USER_COLUMNS}, s.csrf_token, s.expires_at,"
        " s.last_seen_at < now() - $3::interval AS stale"
        " FROM console_sessions s JOIN console_users u USING (user_id)"
        " WHERE s.token_digest = $1 AND s.expires_at > now()"
        " AND s.last_seen_at > now() - $2::interval AND u.disabled_at IS NULL",
        token_digest(token),
        idle,
        _TOUCH_EVERY,
    )
    if row is None:
        return None
    if row["stale"]:
        await db.execute(
            "UPDATE console_sessions SET last_seen_at = now() WHERE token_digest = $1",
            token_digest(token),
        )
    return Session(user=_user(row), csrf_token=row["csrf_token"], expires_at=row["expires_at"])


async def delete_session(db: Db, token: str) -> None:
    await db.execute("DELETE FROM console_sessions WHERE token_digest = $1", token_digest(token))


async def audit(
    db: Db,
    action: AuditAction,
    *,
    username: str | None,
    role: str | None,
    target: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await db.execute(
        "INSERT INTO console_audit (username, role, action, target, client, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        username,
        role,
        AuditAction(action).value,
        target,
        client,
        json.dumps(detail or {}, ensure_ascii=False),
    )


async def audit_entries(
    db: Db, *, limit: int = 200, action: str | None = None, target: str | None = None
) -> list[AuditEntry]:
    rows = await db.fetch(
        "SELECT audit_id, at, username, role, action, target, client, detail::text AS detail"
        " FROM console_audit WHERE ($1::text IS NULL OR action = $1)"
        " AND ($2::text IS NULL OR target = $2) ORDER BY at DESC, audit_id DESC LIMIT $3",
        action,
        target,
        limit,
    )
    return [
        AuditEntry(
            audit_id=row["audit_id"],
            at=row["at"],
            username=row["username"],
            role=row["role"],
            action=row["action"],
            target=row["target"],
            client=row["client"],
            detail=json.loads(row["detail"]),
        )
        for row in rows
    ]
