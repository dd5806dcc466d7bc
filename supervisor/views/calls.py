"""The call log: search, paged and sorted; CSV export of every matching call; a call's page
with its timeline and dispositions, and its recording (supervisors only, every access audited)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from db import calllog as calllog_db
from db.calllog import CallRow, call_timeline
from db.events import Outcome, Verdict
from supervisor import queries, store
from supervisor.calllog import (
    CSV_COLUMNS,
    PAGE_SIZES,
    SearchForm,
    csv_row,
    paging_link,
    parse_paging,
    parse_search,
    sort_link,
    valid_call_id,
)
from supervisor.http import client_of, console_of, render, require_session
from supervisor.queries import FLAG_CHOICES
from supervisor.roles import Permission, allowed
from supervisor.store import AuditAction


def _search(request: web.Request) -> SearchForm:
    console = console_of(request)
    user = require_session(request).user
    own = None if allowed(user.role, Permission.CALLS_ALL) else (user.operator_id or "")
    return parse_search(
        request.query,
        request.query.getall("flag", []),
        console.zone,
        categories=[c.code for c in console.config.categories],
        operator=own,
    )


async def log(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    user = require_session(request).user
    search = _search(request)
    paging = parse_paging(request.query)
    total = await calllog_db.count_calls(console.db, search.where)
    paging = replace(paging, page=min(paging.page, paging.last_page(total)))
    rows = await calllog_db.list_calls(
        console.db,
        search.where,
        limit=paging.size,
        offset=paging.offset,
        sort=paging.sort,
        descending=paging.descending,
    )
    filters = list(request.query.items())
    return render(
        request,
        "calls.html",
        rows=rows,
        search=search,
        own_only=not allowed(user.role, Permission.CALLS_ALL),
        may_export=allowed(user.role, Permission.EXPORT),
        categories=console.config.categories,
        operators=console.config.operators,
        outcomes=[o.value for o in Outcome],
        verdicts=[v.value for v in Verdict],
        flag_choices=FLAG_CHOICES,
        query_string=request.query_string,
        total=total,
        paging=paging,
        page_sizes=PAGE_SIZES,
        last_page=paging.last_page(total),
        page_link=lambda **changes: paging_link(filters, paging, **changes),
        sort_link=lambda sort: sort_link(filters, paging, sort),
    )


async def export(request: web.Request) -> web.StreamResponse:
    """Every matching call, streamed as it is read (no row limit), newest first."""
    console = console_of(request)
    session = require_session(request)
    search = _search(request)
    # Audited before anything is sent: the audit must never miss an export, even a broken one.
    await store.audit(
        console.db,
        AuditAction.CALLS_EXPORT,
        username=session.user.username,
        role=session.user.role.value,
        client=client_of(request),
        detail={
            "query": request.query_string,
            "rows": await calllog_db.count_calls(console.db, search.where),
        },
    )
    stamp = console.now().strftime("%Y%m%d-%H%M%S")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="siaga-calls-{stamp}.csv"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for row in calllog_db.export_calls(console.db, search.where):
        writer.writerow(csv_row(row, console.zone))
        if buffer.tell() > 64_000:
            await response.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode("utf-8"))
    await response.write_eof()
    return response


def recording_path(recordings_dir: Path | None, call_id: str) -> Path | None:
    """The call's recording file if it exists (only for a safe call id)."""
    if recordings_dir is None or not valid_call_id(call_id):
        return None
    path = recordings_dir / f"{call_id}.wav"
    return path if path.is_file() else None


async def _visible_call(request: web.Request, call_id: str) -> CallRow:
    console = console_of(request)
    user = require_session(request).user
    row = await calllog_db.get_call(console.db, call_id) if valid_call_id(call_id) else None
    if row is None:
        raise web.HTTPNotFound()
    if not allowed(user.role, Permission.CALLS_ALL) and (
        user.operator_id is None or row.operator_id != user.operator_id
    ):
        raise web.HTTPForbidden()
    return row


async def detail(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    user = require_session(request).user
    row = await _visible_call(request, request.match_info["call_id"])
    may_listen = allowed(user.role, Permission.RECORDINGS)
    recording = recording_path(console.settings.recordings_dir, row.call_id) if may_listen else None
    return render(
        request,
        "call.html",
        call=row,
        category=next((c for c in console.config.categories if c.code == row.category), None),
        timeline=await call_timeline(console.db, row.call_id),
        dispositions=await queries.dispositions(console.db, row.call_id),
        may_listen=may_listen,
        has_recording=recording is not None,
    )


async def recording(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session = require_session(request)
    row = await _visible_call(request, request.match_info["call_id"])
    path = recording_path(console.settings.recordings_dir, row.call_id)
    # Audited before anything is served, found or not: the audit must never miss a playback.
    await store.audit(
        console.db,
        AuditAction.RECORDING_PLAY,
        username=session.user.username,
        role=session.user.role.value,
        target=row.call_id,
        client=client_of(request),
        detail={"found": path is not None, "range": request.headers.get("Range", "")},
    )
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})
