"""The operator's page: own state, the screen pop of the current call, its category (set by
the operator when the IVR could not), the disposition after it, agency transfer, and the
callback list."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from urllib.parse import quote

from aiohttp import web

from ari_app.ivr import UNCLASSIFIED
from db import calllog, events
from db.events import SOURCE_OPERATOR, CallbackOutcome, Verdict
from siaga.config import Config
from supervisor import queries, store
from supervisor.board import (
    JsonDict,
    PopFacts,
    alerts_json,
    operator_json,
    pop_from_live,
    pop_from_record,
)
from supervisor.console import Console
from supervisor.http import (
    can,
    client_of,
    console_of,
    form_of,
    lang_of,
    redirect,
    render,
    require_session,
    time_formatter,
)
from supervisor.live import ActionUnavailableError, LiveCall, joined_only, operator_call
from supervisor.queries import Classification
from supervisor.roles import Permission
from supervisor.sse import stream
from supervisor.store import AuditAction
from supervisor.views import controls, phone
from supervisor.words import Words

VERDICTS = tuple(v.value for v in Verdict)
CALLBACK_OUTCOMES = tuple(o.value for o in CallbackOutcome)
MAX_NOTES = 2000
MAX_LOCATION = 500
_REREAD_EVERY = 2.0  # seconds between re-reads of what the records say about the shown call


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
        categories=console.config.categories,
        agencies=console.config.agencies,
        callbacks=await queries.open_callbacks(
            console.db, queries.CallbackRules.of(console.config)
        ),
        callback_outcomes=CALLBACK_OUTCOMES,
        can_ack=False,  # operators see the alarms; supervisors acknowledge them
        browser_phone=phone.browser_phone(console, operator_id) is not None,
        colleague_supervisors=await controls.supervisors_with_phone(console.db),
    )


async def pop_facts(console: Console, number: str, call_id: str) -> PopFacts:
    history = await queries.number_history(console.db, number, exclude=call_id) if number else []
    repeat = await queries.repeat_count(console.db, number, exclude=call_id) if number else 0
    blocked = bool(await queries.active_blocks(console.db, number)) if number else False
    return PopFacts(history=history, repeat_count=repeat, blocked=blocked)


def category_fields(
    config: Config, category: str | None, flags: Iterable[str], classified: Classification | None
) -> JsonDict:
    """What the desk's category selector needs: the category's code, and whether the call still
    waits for the operator to choose one (queued unclassified as the no-input category, and
    neither the caller nor anyone on the console has chosen since)."""
    by_operator = classified is not None and classified.by_operator
    return {
        "category_code": category,
        "unclassified": (
            UNCLASSIFIED in flags and category == config.ivr.no_input and not by_operator
        ),
    }


class DeskFeed:
    """The picture of one operator's desk, with the database reads cached per call."""

    def __init__(
        self, console: Console, operator_id: str, lang: str, chosen: str | None = None
    ) -> None:
        self.console = console
        self.operator_id = operator_id
        self.lang = lang
        self.chosen = chosen  # the owed call the operator picked from the list (?call=)
        self._owed: list[queries.OwedDisposition] = []
        self._owed_at = -1e9
        self.words = Words(console.config, lang)
        self.fmt = time_formatter(console)
        self._facts: dict[str, PopFacts] = {}
        self._pending: JsonDict | None = None
        self._pending_key: object = None
        self._pending_at = -1e9
        self._classified: Classification | None = None
        self._classified_key: object = None
        self._classified_at = -1e9

    async def picture(self) -> JsonDict:
        console = self.console
        names = {op.id: op.name for op in console.config.operators}
        snapshot = console.centre.snapshot()
        view = next((o for o in snapshot.operators if o.operator_id == self.operator_id), None)
        call = operator_call(console.centre, self.operator_id)
        pop: JsonDict | None
        if call is not None:
            facts = self._facts.get(call.call_id)
            if facts is None:
                facts = await pop_facts(console, call.caller_number, call.call_id)
                self._facts = {call.call_id: facts}
            classified = await self._classification(call)
            if classified is not None and classified.by_operator:
                # Set on the console: the app does not know it, the records do.
                call = dataclasses.replace(call, category=classified.category)
            pop = pop_from_live(call, facts, console.config, self.lang, self.fmt)
            pop |= category_fields(console.config, call.category, call.flags, classified)
            pop["hand_offs"] = controls.hand_offs_json(call, console.config, self.lang)
            pop["held"] = call.held
            pop["with_operator"] = controls.with_operator(call, self.operator_id, names)
        else:
            pop = await self._awaiting(view.state.value if view else None)
        owed = await self._owed_calls()
        return {
            "operator": operator_json(view, names) if view else None,
            "owed": [self._owed_json(o, pop["call_id"] if pop else None) for o in owed],
            "held": bool(view and view.held_for_disposition),
            "known": console.known_operator(self.operator_id),
            "call": pop,
            "alerts": alerts_json(
                await console.alerts(snapshot), snapshot.now, console.config, self.lang
            ),
            "sound": console.config.alerts.sound,
            "colleagues": controls.ready_colleagues(snapshot, self.operator_id, names),
        }

    async def _classification(self, call: LiveCall) -> Classification | None:
        loop = asyncio.get_running_loop()
        key = (call.call_id, call.category, call.flags)
        if key == self._classified_key and loop.time() - self._classified_at < _REREAD_EVERY:
            return self._classified
        self._classified = await queries.classification(self.console.db, call.call_id)
        self._classified_key, self._classified_at = key, loop.time()
        return self._classified

    async def _awaiting(self, state: str | None) -> JsonDict | None:
        loop = asyncio.get_running_loop()
        if state == self._pending_key and loop.time() - self._pending_at < _REREAD_EVERY:
            return self._pending
        console = self.console
        owed = {o.call_id for o in await self._owed_calls()}
        if self.chosen in owed:
            row = await calllog.get_call(console.db, self.chosen)
        else:
            row = await queries.awaiting_disposition(console.db, self.operator_id)
        if row is None:
            self._pending = None
        else:
            facts = await pop_facts(console, row.caller_number or "", row.call_id)
            classified = await queries.classification(console.db, row.call_id)
            pop = pop_from_record(row, facts, console.config, self.lang, self.fmt)
            pop |= category_fields(console.config, row.category, row.flags, classified)
            self._pending = pop
        self._pending_key, self._pending_at = state, loop.time()
        return self._pending

    async def _owed_calls(self) -> list[queries.OwedDisposition]:
        loop = asyncio.get_running_loop()
        if loop.time() - self._owed_at >= _REREAD_EVERY:
            self._owed = await self._read_owed()
            self._owed_at = loop.time()
        return self._owed

    async def _read_owed(self) -> list[queries.OwedDisposition]:
        """The records' owed list, told which calls go on live without this operator (one
        they joined and left again) and which one they are on now."""
        centre = self.console.centre
        on_call = operator_call(centre, self.operator_id)
        left = [
            c.call_id
            for c in centre.live_calls()
            if c.state == "connected"
            and c.operator_id != self.operator_id
            and self.operator_id not in c.joined
        ]
        return await queries.owed_dispositions(
            self.console.db,
            self.operator_id,
            on_call=on_call.call_id if on_call else None,
            left=left,
        )

    def _owed_json(self, owed: queries.OwedDisposition, shown: str | None) -> JsonDict:
        return {
            "call_id": owed.call_id,
            "number": owed.caller_number or "-",
            "category": self.words.category(owed.category),
            "ended": self.fmt(owed.ended_at),
            "chosen": owed.call_id == shown,  # the call the desk's form is for
        }


async def events_stream(request: web.Request) -> web.StreamResponse:
    chosen = request.query.get("call") or None
    feed = DeskFeed(console_of(request), _operator_id(request), lang_of(request), chosen)
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


async def _is_operators_call(console: Console, call_id: str, operator_id: str) -> bool:
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
    if not await _is_operators_call(console, call_id, operator_id):
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
    console.centre.disposition_given(operator_id, call_id)  # the ACD's disposition rule
    raise redirect("/operator", "disposition_saved")


async def classify(request: web.Request) -> web.StreamResponse:
    """The call's operator (or a supervisor) sets its category: one more `call_classified`,
    after the IVR's, marked as set on the console. The latest one is the call's category; the
    call log's timeline keeps them all. A call answered while unclassified reaches the operator
    as the no-input category, and this is where it gets its real one."""
    console = console_of(request)
    user = require_session(request).user
    call_id = request.match_info["call_id"]
    back = "/operator" if can(request, Permission.DESK) else f"/calls/{quote(call_id, safe='')}"
    live = next((c for c in console.centre.live_calls() if c.call_id == call_id), None)
    row = None if live else await calllog.get_call(console.db, call_id)
    if live is None and row is None:
        raise web.HTTPNotFound()
    any_call = can(request, Permission.CALLS_ALL)
    if not any_call and not (
        user.operator_id and await _is_operators_call(console, call_id, user.operator_id)
    ):
        raise web.HTTPForbidden()
    code = (await form_of(request)).get("category", "")
    category = next((c for c in console.config.categories if c.code == code), None)
    if category is None:
        raise redirect(back, "bad_category")
    flags = live.flags if live else (row.flags if row else ())
    console.centre.record(
        events.call_classified(
            call_id,
            category.code,
            priority=category.priority,
            flags=sorted(flags),
            operator_id=user.operator_id,
            source=SOURCE_OPERATOR,
        )
    )
    if any_call:  # a supervisor's change of someone else's call: who did it is in the audit
        await store.audit(
            console.db,
            AuditAction.CALL_CLASSIFY,
            username=user.username,
            role=user.role.value,
            target=call_id,
            client=client_of(request),
            detail={"category": category.code},
        )
    raise redirect(back, "category_saved")


async def agency(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    operator_id = _operator_id(request)
    form = await form_of(request)
    call_id = form.get("call_id", "")
    code = form.get("agency", "")
    live = operator_call(console.centre, operator_id)
    if (
        live is None
        or live.call_id != call_id
        or live.state != "connected"
        or joined_only(live, operator_id)
    ):
        raise redirect("/operator", "not_your_call")
    if code not in {a.code for a in console.config.agencies}:
        raise redirect("/operator", "invalid")
    try:
        await console.centre.add_agency(call_id, code, operator_id)
    except ActionUnavailableError:
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "agency_added")


async def _open_callback(console: Console, call_id: str) -> queries.OpenCallback:
    entry = await queries.open_callback(
        console.db, queries.CallbackRules.of(console.config), call_id
    )
    if entry is None or entry.caller_number is None:
        raise web.HTTPNotFound()
    return entry


async def callback_claim(request: web.Request) -> web.StreamResponse:
    """The app rings the operator, then the caller, and records the callback's progress. When
    it cannot (no trunk for callbacks configured), the callback is claimed here and the
    operator dials the number shown on the list. One entry stands for every open abandon of
    its number: claimed here, they are all claimed."""
    console = console_of(request)
    operator_id = _operator_id(request)
    entry = await _open_callback(console, request.match_info["call_id"])
    assert entry.caller_number is not None
    try:
        await console.centre.call_back(operator_id, entry.caller_number, entry.call_id)
    except ActionUnavailableError:
        for call_id in entry.call_ids:
            console.centre.record(
                events.callback_updated(call_id, status="claimed", owner=operator_id)
            )
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "callback_claimed")


async def callback_done(request: web.Request) -> web.StreamResponse:
    """The operator closes the number's callback with its outcome: every open abandon of the
    number is done, by this operator, with that outcome."""
    console = console_of(request)
    operator_id = _operator_id(request)
    form = await form_of(request)
    outcome = form.get("outcome", "")
    if outcome not in CALLBACK_OUTCOMES:
        raise redirect("/operator", "invalid")
    entry = await _open_callback(console, request.match_info["call_id"])
    for call_id in entry.call_ids:
        console.centre.record(
            events.callback_updated(call_id, status="done", owner=operator_id, outcome=outcome)
        )
    raise redirect("/operator", "callback_done")
