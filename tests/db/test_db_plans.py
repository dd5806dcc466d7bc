"""How PostgreSQL runs the writer's ingest: plans made once per connection, by index, even
on an empty database (db/functions/refresh_calls.sql). Seen through auto_explain's nested
plans."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import asyncpg
from db_support import fetch

from db import events as ev
from db.events import RecordEvent
from db.ingest import ingest
from testbed.cluster import PgCluster

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _call(call_id: str, start: datetime) -> list[RecordEvent]:
    return [
        ev.call_arrived(call_id, "081200001111", at=start),
        ev.call_classified(call_id, "medical", priority=1, at=start + timedelta(seconds=3)),
    ]


async def test_ingest_plans_are_generic_and_by_index_on_an_empty_database(
    pg_dsn: str, pg_cluster: PgCluster
) -> None:
    # auto_explain is a superuser's module: the app's role may not load it.
    conn = await asyncpg.connect(pg_cluster.admin_dsn_for(pg_dsn.rpartition("/")[2]))
    logged: list[str] = []
    conn.add_log_listener(lambda _conn, message: logged.append(message.message))
    try:
        await conn.execute("LOAD 'auto_explain'")
        await conn.execute(
            "SET auto_explain.log_min_duration = 0;"
            " SET auto_explain.log_nested_statements = on;"
            " SET client_min_messages = log"
        )
        for n in range(3):
            logged.clear()
            await ingest(conn, _call(f"call-{n}", T0 + timedelta(minutes=n)))
    finally:
        await conn.close()

    # The third batch's plans: what every later batch runs on.
    scans = [plan for plan in logged if re.search(r"Scan (using \S+ )?on call_events", plan)]
    refresh = [plan for plan in scans if "Query Text: WITH ghost AS" in plan]
    assert len(scans) >= 5 and len(refresh) == 1
    for plan in scans:
        assert "Seq Scan on call_events" not in plan
        # A generic plan takes the batch as a parameter; a custom one spells its values out.
        assert re.search(r"(event_id|call_id) = ANY \(\$\d+\)", plan)
        assert not re.search(r"(event_id|call_id) = ANY \('", plan)
    assert "Index Scan on call_events_call" in refresh[0]  # the index by call id

    rows = await fetch(pg_dsn, "SELECT call_id, category FROM calls ORDER BY call_id")
    assert [tuple(row) for row in rows] == [(f"call-{n}", "medical") for n in range(3)]


async def test_text_array_of_an_event_field(pg_dsn: str) -> None:
    rows = await fetch(
        pg_dsn,
        """
        SELECT siaga_text_array(v)
        FROM unnest(ARRAY['["a", null, "b"]', '[]', '"a"', '{"a": 1}', 'null', NULL]::jsonb[])
            WITH ORDINALITY AS t(v, n)
        ORDER BY n
        """,
    )
    assert [row[0] for row in rows] == [["a", "b"], [], [], [], [], []]
