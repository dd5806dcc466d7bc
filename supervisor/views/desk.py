"""The operator's page: own state, the screen pop of the current call, the disposition after
it, agency transfer, and the callback list."""

from __future__ import annotations

import asyncio

from aiohttp import web

from db import events
from db.events import Verdict
from supervisor import queries
from supervisor.board import JsonDict, PopFacts, operator_json, pop_from_live, pop_from_record
from supervisor.console import Console
from supervisor.http import (
    console_of,
    form_of,
    lang_of,
    redirect,
    render,
    require_session,
    time_formatter,
)
from supervisor.live import ActionUnavailableError, operator_call
from supervisor.sse import stream

VERDICTS = tuple(v.value for v in Verdict)
MAX_NOTES = 2000
MAX_LOCATION = 500
_PENDING_EVERY = 2.0  # seconds between re-reads of the call awaiting a disposition


def _operator_id(request: web.Request) -> str:
    operator_id = require_session(request).user.operator_id
    if not operator_id:
        raise web.HTTPForbidden()
    return operator_id


async def page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    operator_id = _operator_id(request)
    return render(
        request,
        "operator.html",
        operator_id=operator_id,
        operator_name=console.operator_name(operator_id),
        known=console.known_operator(operator_id),
        verdicts=VERDICTS,
        pause_reasons=tuple(console.config.acd.pause_reasons.values()),
        agencies=console.config.agencies,
        callbacks=await queries.callbacks(console.db),
    )


async def pop_facts(console: Console, number: str, call_id: str) -> PopFacts:
    history = await queries.number_history(console.db, number, exclude=call_id) if number else []
    repeat = await queries.repeat_count(console.db, number, exclude=call_id) if number else 0
    blocked = bool(await queries.active_blocks(console.db, number)) if number else False
    return PopFacts(history=history, repeat_count=repeat, blocked=blocked)


class DeskFeed:
    """The picture of one operator's desk, with the database reads cached per call."""

    def __init__(self, console: Console, operator_id: str, lang: str) -> None:
        self.console = console
        self.operator_id = operator_id
        self.lang = lang
        self.fmt = time_formatter(console)
        self._facts: dict[str, PopFacts] = {}
        self._pending: JsonDict | None = None
        self._pending_key: object = None
        self._pending_at = -1e9

    async def picture(self) -> JsonDict:
        console = self.console
        names = {op.id: op.name for op in console.config.operators}
        view = next(
            (o for o in console.centre.snapshot().operators if o.operator_id == self.operator_id),
            None,
        )
        call = operator_call(console.centre, self.operator_id)
        pop: JsonDict | None
        if call is not None:
            facts = self._facts.get(call.call_id)
            if facts is None:
                facts = await pop_facts(console, call.caller_number, call.call_id)
                self._facts = {call.call_id: facts}
            pop = pop_from_live(call, facts, console.config, self.lang, self.fmt)
        else:
            pop = await self._awaiting(view.state.value if view else None)
        return {
            "operator": operator_json(view, names) if view else None,
            "known": console.known_operator(self.operator_id),
            "call": pop,
        }

    async def _awaiting(self, state: str | None) -> JsonDict | None:
        loop = asyncio.get_running_loop()
        if state == self._pending_key and loop.time() - self._pending_at < _PENDING_EVERY:
            return self._pending
        row = await queries.awaiting_disposition(self.console.db, self.operator_id)
        if row is None:
            self._pending = None
        else:
            facts = await pop_facts(self.console, row.caller_number or "", row.call_id)
            self._pending = pop_from_record(row, facts, self.console.config, self.lang, self.fmt)
        self._pending_key, self._pending_at = state, loop.time()
        return self._pending


async def events_stream(request: web.Request) -> web.StreamResponse:
    feed = DeskFeed(console_of(request), _operator_id(request), lang_of(request))
    return await stream(request, feed.picture)


async def set_state(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    operator_id = _operator_id(request)
    form = await form_of(request)
    action = form.get("action", "")
    centre = console.centre
    try:
        if action == "ready":
            view = next(
                (o for o in centre.snapshot().operators if o.operator_id == operator_id), None
            )
            if view is None or view.state.value == "logged_out":
                centre.operator_login(operator_id)
            else:
                centre.operator_ready(operator_id)
        elif action == "pause":
            reason = form.get("reason", "")
            if reason not in console.config.acd.pause_reasons.values():
                raise redirect("/operator", "invalid")
            centre.operator_pause(operator_id, reason)
        elif action == "logout":
            centre.operator_logout(operator_id)
        else:
            raise redirect("/operator", "invalid")
    except KeyError:
        raise redirect("/operator", "no_operator") from None
    raise redirect("/operator", "saved")


async def _may_dispose(console: Console, call_id: str, operator_id: str) -> bool:
    live = operator_call(console.centre, operator_id)
    if live is not None and live.call_id == call_id:
        return True
    return await queries.operator_handled(console.db, call_id, operator_id)


async def dispose(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    operator_id = _operator_id(request)
    form = await form_of(request)
    call_id = form.get("call_id", "")
    verdict = form.get("verdict", "")
    notes = form.get("notes", "").strip()
    location = form.get("location", "").strip()
    if (
        not call_id
        or verdict not in VERDICTS
        or len(notes) > MAX_NOTES
        or len(location) > MAX_LOCATION
    ):
        raise redirect("/operator", "invalid")
    if not await _may_dispose(console, call_id, operator_id):
        raise redirect("/operator", "not_your_call")
    console.centre.record(
        events.disposition(
            call_id,
            operator_id,
            Verdict(verdict),
            notes=notes or None,
            location=location or None,
        )
    )
    raise redirect("/operator", "disposition_saved")


async def agency(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    operator_id = _operator_id(request)
    form = await form_of(request)
    call_id = form.get("call_id", "")
    code = form.get("agency", "")
    live = operator_call(console.centre, operator_id)
    if live is None or live.call_id != call_id or live.state != "connected":
        raise redirect("/operator", "not_your_call")
    if code not in {a.code for a in console.config.agencies}:
        raise redirect("/operator", "invalid")
    try:
        await console.centre.add_agency(call_id, code, operator_id)
    except ActionUnavailableError:
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "agency_added")


async def callback_claim(request: web.Request) -> web.StreamResponse:
    """The app rings the operator, then the caller, and records the callback's progress. When
    it cannot (no trunk for callbacks configured), the callback is claimed here and the
    operator dials the number shown on the list."""
    console = console_of(request)
    operator_id = _operator_id(request)
    call_id = request.match_info["call_id"]
    number = await queries.callback_number(console.db, call_id)
    if number is None:
        raise web.HTTPNotFound()
    try:
        await console.centre.call_back(operator_id, number, call_id)
    except ActionUnavailableError:
        console.centre.record(events.callback_updated(call_id, status="claimed", owner=operator_id))
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "callback_claimed")


async def callback_done(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    operator_id = _operator_id(request)
    call_id = request.match_info["call_id"]
    form = await form_of(request)
    outcome = form.get("outcome", "")
    if outcome not in ("reached", "unreached"):
        raise redirect("/operator", "invalid")
    if await queries.callback_number(console.db, call_id) is None:
        raise web.HTTPNotFound()
    console.centre.record(
        events.callback_updated(call_id, status="done", owner=operator_id, outcome=outcome)
    )
    raise redirect("/operator", "callback_done")
