"""The schema: plain SQL migrations, then the SQL functions.

- `db/migrations/NNN_name.sql` (tables, indexes, views, triggers, data fixes) are applied once
  each, in order, each in its own transaction together with its row in `schema_migrations`.
  An applied migration is never edited (its checksum is checked).
- `db/functions/*.sql` hold the current definition of every SQL function, one file per concern,
  all `CREATE OR REPLACE`. They are applied again on every run, after the migrations, in name
  order and in one transaction: a function is changed by editing its file, and a fresh database
  and an old one end up with the same functions. A migration runs before them, so it sees the
  functions as they were before the run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# Serialises concurrent `migrate` runs (two app instances starting at once).
_LOCK_KEY = 112_000_112
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz(3) NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The database's migration history does not match this code."""


class SchemaTooNewError(MigrationError):
    """The database was migrated by a newer version of the code."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FunctionFile:
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    folder = resources.files("db").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number: {[m.name for m in found]}")
    return found


def load_functions() -> list[FunctionFile]:
    folder = resources.files("db").joinpath("functions")
    found = [
        FunctionFile(entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda f: f.name)


async def migrate(dsn: str) -> list[str]:
    """Apply the pending migrations and then the functions; return the names of the migrations
    applied (empty when up to date)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate_connection(conn)
    finally:
        await conn.close()


async def migrate_connection(conn: asyncpg.Connection) -> list[str]:
    migrations = load_migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = {
            row["version"]: row
            for row in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        _check_history(migrations, applied)
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration_applied", name=migration.name)
            done.append(migration.name)
        async with conn.transaction():
            for functions in load_functions():
                await conn.execute(functions.sql)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def pending(dsn: str) -> list[str]:
    """Names of migrations not yet applied; raises like `migrate` on a foreign history."""
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        rows = (
            await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            if exists
            else []
        )
    finally:
        await conn.close()
    migrations = load_migrations()
    applied = {row["version"]: row for row in rows}
    _check_history(migrations, applied)
    return [m.name for m in migrations if m.version not in applied]


def _check_history(migrations: list[Migration], applied: dict[int, asyncpg.Record]) -> None:
    known = {m.version: m for m in migrations}
    newest_known = max(known, default=0)
    unknown = sorted(v for v in applied if v not in known)
    if unknown and max(unknown) > newest_known:
        names = ", ".join(applied[v]["name"] for v in unknown)
        raise SchemaTooNewError(
            f"the database schema is newer than this code (applied: {names}); "
            "upgrade siaga before running it against this database"
        )
    if unknown:
        raise MigrationError(f"the database has migrations this code does not know: {unknown}")
    for version, row in applied.items():
        if row["checksum"] != known[version].checksum:
            raise MigrationError(
                f"migration {row['name']} was changed after it was applied; "
                "write a new migration instead of editing an applied one"
            )
