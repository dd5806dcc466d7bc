"""Migrations and functions against a real PostgreSQL: from zero, idempotent, refusing a newer
schema; every SQL function live as its file in db/functions says, on a fresh database and an old
one alike."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from db.migrate import (
    MigrationError,
    SchemaTooNewError,
    load_functions,
    load_migrations,
    migrate,
    pending,
)

TABLES = {
    "schema_migrations",
    "call_events",
    "calls",
    "operators",
    "operator_state_changes",
    "dispositions",
    "callbacks",
    "caller_flags",
}


async def _schema_snapshot(dsn: str) -> list[tuple[str, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT 'column', table_name, column_name, data_type,
                   coalesce(datetime_precision, -1)::text
            FROM information_schema.columns WHERE table_schema = 'public'
            UNION ALL
            SELECT 'routine', routine_name, '', '', '' FROM information_schema.routines
            WHERE routine_schema = 'public'
            UNION ALL
            SELECT 'index', tablename, indexname, '', '' FROM pg_indexes WHERE schemaname = 'public'
            UNION ALL
            SELECT 'migration', version::text, name, checksum, applied_at::text
            FROM schema_migrations
            ORDER BY 1, 2, 3
            """
        )
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


async def test_migrations_apply_from_zero_then_change_nothing(pg_empty_dsn: str) -> None:
    names = [m.name for m in load_migrations()]
    assert names == sorted(names) and names[0].startswith("001_")

    assert await pending(pg_empty_dsn) == names
    assert await migrate(pg_empty_dsn) == names
    first = await _schema_snapshot(pg_empty_dsn)

    assert await migrate(pg_empty_dsn) == []
    assert await pending(pg_empty_dsn) == []
    assert await _schema_snapshot(pg_empty_dsn) == first

    tables = {row[1] for row in first if row[0] == "column"}
    assert tables >= TABLES
    # Timestamps are timestamptz with millisecond precision.
    precisions = {
        (row[1], row[2]): row[4]
        for row in first
        if row[0] == "column" and row[3] == "timestamp with time zone"
    }
    assert precisions[("calls", "arrived_at")] == "3"
    assert precisions[("call_events", "at")] == "3"


async def test_concurrent_migrate_runs_apply_once(pg_empty_dsn: str) -> None:
    results = await asyncio.gather(*(migrate(pg_empty_dsn) for _ in range(3)))
    applied = [name for result in results for name in result]
    assert sorted(applied) == [m.name for m in load_migrations()]


async def test_refuses_a_schema_newer_than_the_code(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, $1, 'x')",
            "999_from_the_future.sql",
        )
    finally:
        await conn.close()
    with pytest.raises(SchemaTooNewError, match="newer than this code"):
        await migrate(pg_dsn)
    with pytest.raises(SchemaTooNewError):
        await pending(pg_dsn)


async def test_refuses_an_edited_migration(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(pg_dsn)


async def test_call_events_is_append_only(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO call_events (event_id, kind, at) VALUES (gen_random_uuid(), 'x', now())"
        )
        for statement in (
            "UPDATE call_events SET kind = 'y'",
            "DELETE FROM call_events",
            "TRUNCATE call_events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM call_events WHERE kind = 'x'") == 1
    finally:
        await conn.close()


_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(.*?\bAS \$\$(.*?)\$\$;", re.DOTALL)
_LIVE_FUNCTIONS = """
SELECT p.proname, p.prosrc, pg_get_functiondef(p.oid) AS definition
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
ORDER BY p.proname
"""


async def _functions(dsn: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return {row["proname"]: row for row in await conn.fetch(_LIVE_FUNCTIONS)}
    finally:
        await conn.close()


async def _migrations_alone(dsn: str) -> None:
    """A database as the code before db/functions left it: the migrations and nothing else."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz(3) NOT NULL DEFAULT now())"
        )
        for migration in load_migrations():
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
    finally:
        await conn.close()


def test_function_files_only_create_or_replace() -> None:
    for functions in load_functions():
        assert "CREATE OR REPLACE FUNCTION" in functions.sql, functions.name
        assert not re.search(r"CREATE\s+FUNCTION", functions.sql), functions.name


async def test_every_live_function_is_the_one_its_file_defines(pg_dsn: str) -> None:
    defined = {
        name: body
        for functions in load_functions()
        for name, body in _FUNCTION.findall(functions.sql)
    }
    live = await _functions(pg_dsn)
    assert sorted(live) == sorted(defined)  # no function is left to the migrations alone
    for name, body in defined.items():
        assert live[name]["prosrc"] == body, name


async def test_functions_are_applied_again_on_every_run(pg_dsn: str) -> None:
    before = await _functions(pg_dsn)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION siaga_int(p text) RETURNS integer"
            " LANGUAGE sql IMMUTABLE AS $$ SELECT 0 $$"
        )
        await conn.execute("ALTER FUNCTION refresh_calls(text[]) RESET ALL")
    finally:
        await conn.close()
    assert await _functions(pg_dsn) != before

    assert await migrate(pg_dsn) == []
    assert await _functions(pg_dsn) == before
    assert await migrate(pg_dsn) == []
    assert await _functions(pg_dsn) == before


async def test_an_old_database_gets_the_functions_of_a_fresh_one(
    pg_dsn: str, pg_empty_dsn: str
) -> None:
    await _migrations_alone(pg_empty_dsn)
    assert await migrate(pg_empty_dsn) == []
    old, fresh = await _functions(pg_empty_dsn), await _functions(pg_dsn)
    assert {name: row["definition"] for name, row in old.items()} == {
        name: row["definition"] for name, row in fresh.items()
    }
