"""Carrying a call's commands out: one small executor per command type, each a REST request or
an ACD event, some reporting back an event for the machine (`Queued`, `OfferClaimed`).

`CallShell` and `CallRest` are what a call needs from the running app and from Asterisk's REST
interface: narrow, so that the actor runs against fakes in the unit tests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from ari_app.ari.events import ResourceKind
from ari_app.ari.models import Channel
from ari_app.ari.rest import SnoopDirection
from ari_app.call import commands as c
from ari_app.call.adoption import QUEUE_VARIABLE, encode_queue_state
from ari_app.call.events import (
    CallEvent,
    ColleagueClaimed,
    HoldDue,
    OfferClaimed,
    Queued,
    TimerFired,
)
from ari_app.call.machine import CallMachine
from ari_app.metrics import Metrics
from ari_app.router import Router
from db.events import EventKind, Fact
from queues import events as acd
from queues.decisions import Decision, OperatorStateChanged
from queues.errors import AcdError
from queues.states import OperatorState
from siaga.config import Config, OperatorConfig

FALLBACK_CONTEXT = "siaga-fallback"
# The dialplan's stranded-call guard (dialplan/templates/extensions.conf): "0" disarms it.
STRANDED_GUARD = "TIMEOUT(absolute)"
# How long a partner centre rings before the caller goes back into our queue.
PARTNER_RING_SECONDS = 30
_DISPLAY_UNSAFE = re.compile(r"[^0-9A-Za-z+*#]")


class CallRest(Protocol):
    """The REST requests a call makes (`AriRest` is one)."""

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app: str,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
    ) -> object: ...
    async def answer(self, channel_id: str) -> None: ...
    async def hangup(self, channel_id: str) -> None: ...
    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
    ) -> None: ...
    async def start_moh(self, channel_id: str) -> None: ...
    async def stop_moh(self, channel_id: str) -> None: ...
    async def set_variable(self, channel_id: str, variable: str, value: str) -> None: ...
    async def play(
        self, channel_id: str, media: str | Sequence[str], *, playback_id: str
    ) -> object: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def snoop(
        self,
        channel_id: str,
        *,
        app: str,
        snoop_id: str,
        spy: SnoopDirection = ...,
        whisper: SnoopDirection = ...,
        app_args: str | None = None,
    ) -> object: ...
    async def create_bridge(self, bridge_id: str, *, name: str | None = None) -> object: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def add_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None: ...


class CallShell(Protocol):
    """What a call's actor needs from the running app (`SiagaApp` is one)."""

    @property
    def config(self) -> Config: ...
    @property
    def operators(self) -> Mapping[str, OperatorConfig]: ...
    @property
    def router(self) -> Router: ...
    @property
    def metrics(self) -> Metrics: ...
    def rest_for(self, channel_id: str) -> CallRest: ...
    def clock(self) -> float: ...
    def to_acd(self, event: acd.Event) -> list[Decision]: ...
    def offer_answered(self, call_id: str, operator_id: str) -> bool: ...
    def queue_position(self, call_id: str) -> int | None: ...
    def record(self, fact: Fact, *, call_id: str | None, at: datetime | None = None) -> None: ...
    def prompt_uri(self, name: str, language: str) -> str: ...
    def call_finished(self, call_id: str) -> None: ...


class Carrier(Protocol):
    """The call an executor works for (`CallActor` is one)."""

    call_id: str
    bridge_id: str
    channel: Channel  # the caller's, as it entered the app
    arrival: float  # monotonic, at Asterisk's arrival of the call
    started: float  # monotonic, when the app got the call
    machine: CallMachine
    shell: CallShell
    rest: CallRest  # the Asterisk the call is on: every leg of it is made there
    timers: list[asyncio.TimerHandle]

    def post(self, event: object) -> None: ...
    def register(self, kind: ResourceKind, resource_id: str) -> None: ...


def display_number(number: str) -> str:
    """A caller number as the operator's phone shows it: hostile caller ids stay harmless."""
    return _DISPLAY_UNSAFE.sub("", number)[:32] or "unknown"


def arrived_at(carrier: Carrier) -> datetime:
    created = carrier.channel.creationtime
    return created if created is not None else datetime.now(UTC)


async def originate(
    actor: Carrier, dial: str, channel_id: str, args: str, caller_id: str, timeout: int, **more: Any
) -> None:
    """Ring a leg of the call, its id registered first (its events may beat the response)."""
    actor.register(ResourceKind.CHANNEL, channel_id)
    await actor.rest.originate(
        dial,
        channel_id=channel_id,
        app=actor.shell.config.asterisk.app,
        app_args=args,
        caller_id=caller_id,
        timeout=timeout,
        **more,
    )


# ---- executors: one small function per command ---------------------------------------------

Reply = CallEvent | None
Executor = Callable[[Carrier, Any], Awaitable[Reply]]
EXECUTORS: dict[type, Executor] = {}


def _executes(*types: type) -> Callable[[Executor], Executor]:
    def register(executor: Executor) -> Executor:
        for command_type in types:
            EXECUTORS[command_type] = executor
        return executor

    return register


@_executes(Fact)
async def _record(actor: Carrier, fact: Fact) -> Reply:
    at = arrived_at(actor) if fact.kind is EventKind.CALL_ARRIVED else None
    actor.shell.record(fact, call_id=actor.call_id, at=at)
    return None


@_executes(c.Answer)
async def _answer(actor: Carrier, _: c.Answer) -> Reply:
    await actor.rest.answer(actor.call_id)
    # Disarmed once answered: an app that dies between the two still leaves the call to the
    # guard, and so to the fallback's operators, not to the next app's takeover.
    await actor.rest.set_variable(actor.call_id, STRANDED_GUARD, "0")
    actor.shell.metrics.answered(actor.started, actor.shell.clock())
    return None


@_executes(c.CreateBridge)
async def _create_bridge(actor: Carrier, _: c.CreateBridge) -> Reply:
    rest = actor.rest
    await rest.create_bridge(actor.bridge_id, name=f"siaga-{actor.call_id}"[:64])
    await rest.add_channel(actor.bridge_id, actor.call_id)
    return None


@_executes(c.EnableTalkDetect, c.StopTalkDetect)
async def _talk_detect(actor: Carrier, command: c.EnableTalkDetect | c.StopTalkDetect) -> Reply:
    action = "set" if isinstance(command, c.EnableTalkDetect) else "remove"
    await actor.rest.set_variable(actor.call_id, f"TALK_DETECT({action})", "")
    return None


@_executes(c.Play)
async def _play(actor: Carrier, command: c.Play) -> Reply:
    actor.register(ResourceKind.PLAYBACK, command.playback_id)
    language = command.language.value
    media = [actor.shell.prompt_uri(name, language) for name in command.prompts]
    await actor.rest.play(actor.call_id, media, playback_id=command.playback_id)
    return None


@_executes(c.StopPlayback)
async def _stop_playback(actor: Carrier, command: c.StopPlayback) -> Reply:
    await actor.rest.stop_playback(command.playback_id)
    return None


# Music on the caller's channel, not the bridge's: bridge music is an extra "Announcer"
# channel with a thread of its own for every waiting caller.
@_executes(c.StartMoh)
async def _start_moh(actor: Carrier, _: c.StartMoh) -> Reply:
    await actor.rest.start_moh(actor.call_id)
    return None


@_executes(c.StopMoh)
async def _stop_moh(actor: Carrier, _: c.StopMoh) -> Reply:
    await actor.rest.stop_moh(actor.call_id)
    return None


@_executes(c.StartTimer)
async def _start_timer(actor: Carrier, command: c.StartTimer) -> Reply:
    loop = asyncio.get_running_loop()
    fired = TimerFired(command.timer, command.generation)
    actor.timers = [h for h in actor.timers if not h.cancelled()]
    actor.timers.append(loop.call_later(command.seconds, actor.post, fired))
    return None


@_executes(c.DeferHold)
async def _defer_hold(actor: Carrier, _: c.DeferHold) -> Reply:
    actor.post(HoldDue())  # behind the ACD's offer, if it made one while the call was queued
    return None


@_executes(c.Enqueue)
async def _enqueue(actor: Carrier, command: c.Enqueue) -> Reply:
    shell = actor.shell
    queued = acd.CallQueued(
        actor.call_id,
        command.category,
        actor.arrival,
        command.priority,
        command.flags,
        command.tried,
    )
    shell.to_acd(queued)
    return Queued(shell.queue_position(actor.call_id), shell.clock())


@_executes(c.SaveQueueState)
async def _save_queue_state(actor: Carrier, command: c.SaveQueueState) -> Reply:
    value = encode_queue_state(command.category, command.priority, command.flags)
    await actor.rest.set_variable(actor.call_id, QUEUE_VARIABLE, value)
    return None


@_executes(c.ChangePriority)
async def _change_priority(actor: Carrier, command: c.ChangePriority) -> Reply:
    machine, flags = actor.machine, frozenset(actor.machine.flags)
    value = encode_queue_state(machine.category or "", command.priority, flags)
    await actor.rest.set_variable(actor.call_id, QUEUE_VARIABLE, value)
    # The flags (e.g. cannot_speak) go along, for the live board.
    actor.shell.to_acd(acd.CallPriorityChanged(actor.call_id, command.priority, flags))
    return None


@_executes(c.Requeue)
async def _requeue(actor: Carrier, _: c.Requeue) -> Reply:
    machine = actor.machine
    actor.shell.to_acd(acd.CallEnded(actor.call_id))
    category, flags = machine.category or "", frozenset(machine.flags)
    tried = frozenset(machine.overflow_tried)
    queued = acd.CallQueued(actor.call_id, category, actor.arrival, machine.priority, flags, tried)
    actor.shell.to_acd(queued)
    return None


@_executes(c.ResumeConversation)
async def _resume(actor: Carrier, command: c.ResumeConversation) -> Reply:
    adopted = acd.CallAdopted(
        actor.call_id,
        command.category,
        actor.arrival,
        command.operator_id,
        command.priority,
        command.flags,
    )
    actor.shell.to_acd(adopted)
    return None


@_executes(c.LeaveQueue, c.FinishCall, c.ReportOfferFailure)
async def _tell_acd(
    actor: Carrier, command: c.LeaveQueue | c.FinishCall | c.ReportOfferFailure
) -> Reply:
    if isinstance(command, c.ReportOfferFailure):
        actor.shell.to_acd(command.event)
    elif isinstance(command, c.LeaveQueue):
        actor.shell.to_acd(acd.CallHungUp(actor.call_id))
    else:
        actor.shell.to_acd(acd.CallEnded(actor.call_id))  # the operator goes to wrap-up
    return None


@_executes(c.ClaimOffer)
async def _claim_offer(actor: Carrier, command: c.ClaimOffer) -> Reply:
    shell = actor.shell
    won = shell.offer_answered(actor.call_id, command.operator_id)
    if won:
        shell.metrics.reached_human(actor.machine.category, actor.arrival, shell.clock())
    return OfferClaimed(command.channel_id, won, shell.clock())


@_executes(c.ClaimColleague)
async def _claim_colleague(actor: Carrier, command: c.ClaimColleague) -> Reply:
    try:
        decisions = actor.shell.to_acd(acd.OperatorJoined(actor.call_id, command.operator_id))
    except AcdError:
        decisions = []  # logged out, or on another call since their phone rang for this one
    # Not when the ACD no longer holds the call (its end crossed the answer).
    won = any(
        isinstance(d, OperatorStateChanged)
        and d.operator_id == command.operator_id
        and d.new is OperatorState.ON_CALL
        for d in decisions
    )
    return ColleagueClaimed(command.channel_id, won)


@_executes(c.ReleaseOperator)
async def _release_operator(actor: Carrier, command: c.ReleaseOperator) -> Reply:
    actor.shell.to_acd(acd.OperatorLeft(actor.call_id, command.operator_id))
    return None


@_executes(c.BridgeOperator, c.BridgeAgency, c.BridgeSupervisor, c.BridgePartner, c.BridgeColleague)
async def _bridge(
    actor: Carrier,
    command: c.BridgeOperator
    | c.BridgeAgency
    | c.BridgeSupervisor
    | c.BridgePartner
    | c.BridgeColleague,
) -> Reply:
    await actor.rest.add_channel(actor.bridge_id, command.channel_id)
    return None


@_executes(c.Disconnect)
async def _disconnect(actor: Carrier, _: c.Disconnect) -> Reply:
    await actor.rest.hangup(actor.call_id)
    return None


@_executes(c.HangUpLeg)
async def _hang_up_leg(actor: Carrier, command: c.HangUpLeg) -> Reply:
    await actor.rest.hangup(command.channel_id)
    return None


@_executes(c.DestroyBridge, c.DestroyListenBridge)
async def _destroy_bridge(
    actor: Carrier, command: c.DestroyBridge | c.DestroyListenBridge
) -> Reply:
    bridge = command.bridge_id if isinstance(command, c.DestroyListenBridge) else actor.bridge_id
    await actor.rest.destroy_bridge(bridge)
    return None


@_executes(c.ContinueToFallback)
async def _to_fallback(actor: Carrier, _: c.ContinueToFallback) -> Reply:
    rest = actor.rest
    await rest.continue_in_dialplan(
        actor.call_id, context=FALLBACK_CONTEXT, extension="s", priority=1
    )
    return None


@_executes(c.RingOperator)
async def _ring_operator(actor: Carrier, command: c.RingOperator) -> Reply:
    shell, operator_id = actor.shell, command.operator_id
    shell.metrics.rung(operator_id, shell.clock())
    category = (actor.machine.category or "call").upper()
    number = display_number(actor.channel.caller.number)
    await originate(
        actor,
        shell.operators[operator_id].dial_string,
        command.channel_id,
        f"operator,{actor.call_id},{operator_id}",
        f'"{category} {number}" <{number}>',
        int(shell.config.acd.ring_timeout_seconds) + 5,
        variables={"SIAGA_CALL_ID": actor.call_id},
        # The caller's codecs, not "any audio": offered everything, a Local or multi-codec
        # phone picks another format (slin192 for Local) and every frame between the two is
        # translated. It also shares the caller's linkedid.
        originator=actor.call_id,
    )
    return None


@_executes(c.DialAgency)
async def _dial_agency(actor: Carrier, command: c.DialAgency) -> Reply:
    agency = next(a for a in actor.shell.config.agencies if a.code == command.agency)
    number = display_number(actor.channel.caller.number)
    args = f"agency,{actor.call_id},{agency.code}"
    caller_id = f'"112 {number}" <{number}>'
    await originate(
        actor, agency.dial, command.channel_id, args, caller_id, 60, originator=actor.call_id
    )
    return None


@_executes(c.DialPartner)
async def _dial_partner(actor: Carrier, command: c.DialPartner) -> Reply:
    number = display_number(actor.channel.caller.number)
    args = f"partner,{actor.call_id}"
    caller_id = f'"112 {number}" <{number}>'
    await originate(
        actor,
        command.dial,
        command.channel_id,
        args,
        caller_id,
        PARTNER_RING_SECONDS,
        originator=actor.call_id,
    )
    return None


@_executes(c.DialSupervisor)
async def _dial_supervisor(actor: Carrier, command: c.DialSupervisor) -> Reply:
    mode = command.mode.value
    args, caller_id = f"supervisor,{actor.call_id},{mode}", f'"{mode.upper()} 112" <112>'
    await originate(actor, command.dial, command.channel_id, args, caller_id, 30)
    return None


@_executes(c.DialColleague)
async def _dial_colleague(actor: Carrier, command: c.DialColleague) -> Reply:
    # An operator's leg is an operator leg (an app restarted mid-call may keep it as the
    # call's operator); a supervisor's is a supervisor leg (started over after a restart).
    if command.operator_id:
        args = f"operator,{actor.call_id},{command.operator_id}"
    else:
        args = f"supervisor,{actor.call_id},colleague"
    number = display_number(actor.channel.caller.number)
    caller_id = f'"112 {number}" <{number}>'
    await originate(
        actor, command.dial, command.channel_id, args, caller_id, 30, originator=actor.call_id
    )
    return None


@_executes(c.CreateListenBridge)
async def _create_listen_bridge(actor: Carrier, command: c.CreateListenBridge) -> Reply:
    await actor.rest.create_bridge(command.bridge_id, name=f"listen-{actor.call_id}"[:64])
    return None


@_executes(c.Snoop)
async def _snoop(actor: Carrier, command: c.Snoop) -> Reply:
    actor.register(ResourceKind.CHANNEL, command.snoop_id)
    await actor.rest.snoop(
        command.operator_channel,
        app=actor.shell.config.asterisk.app,
        app_args=f"snoop,{actor.call_id}",
        snoop_id=command.snoop_id,
        spy=SnoopDirection.BOTH,
        whisper=SnoopDirection.OUT if command.whisper else SnoopDirection.NONE,
    )
    return None


@_executes(c.JoinListenBridge)
async def _join_listen_bridge(actor: Carrier, command: c.JoinListenBridge) -> Reply:
    await actor.rest.add_channel(command.bridge_id, list(command.channel_ids))
    return None
