"""What the console needs from the running centre, as a small Protocol, and its adapter over
the ARI app (`SiagaApp`).

Pages only ever talk to a `LiveCentre`: with the real app in `siaga run` and the integration
tests, with a centre over the pure ACD core in the console's own tests. Records (dispositions,
blocks, callbacks) go through `record()`, i.e. the app's journal, so the same ingest path
derives the tables whether PostgreSQL is up or the journal is spooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ari_app.app import (
    CallbackUnavailableError,
    ColleagueUnavailableError,
    NotYourCallError,
    SiagaApp,
)
from ari_app.call.states import HandOff
from ari_app.call.states import ListenMode as ListenMode  # the console uses it too
from db.events import RecordEvent
from queues.events import Tick
from queues.snapshot import Snapshot


class ActionUnavailableError(Exception):
    """The running app does not offer this action (or not for this call right now)."""


@dataclass(frozen=True, slots=True)
class LiveCall:
    """A call the app holds right now."""

    call_id: str
    caller_number: str
    caller_name: str
    category: str | None
    state: str  # ari_app.call.CallState value: arrived, ivr, queued, offered, connected...
    operator_id: str | None
    flags: frozenset[str]
    age_seconds: float  # since the arrival at Asterisk
    hand_offs: tuple[HandOff, ...] = ()  # agencies and colleagues conferenced in, and how
    held: bool = False  # the operator put the caller on hold
    joined: tuple[str, ...] = ()  # operator colleagues conferenced in beside `operator_id`


class LiveCentre(Protocol):
    def snapshot(self) -> Snapshot: ...

    def live_calls(self) -> Sequence[LiveCall]: ...

    def operator_login(self, operator_id: str) -> None: ...

    def operator_logout(self, operator_id: str) -> None: ...

    def operator_pause(self, operator_id: str, reason: str) -> None: ...

    def operator_ready(self, operator_id: str) -> None: ...

    def record(self, event: RecordEvent) -> None:
        """Append to the app's journal (never blocks, never raises on an outage)."""
        ...

    async def listen(self, supervisor: str, dial: str, call_id: str, mode: ListenMode) -> None:
        """Ring `dial` (the supervisor's phone) and join it to the call in `mode`."""
        ...

    async def add_agency(self, call_id: str, agency: str, operator_id: str) -> None:
        """Conference or transfer the call to an agency of siaga.toml ([[agencies]])."""
        ...

    async def call_back(self, operator_id: str, number: str, call_id: str) -> None:
        """Ring the operator's phone, then `number` (a callback of abandoned call `call_id`);
        the app records the callback's progress."""
        ...

    # -- the disposition and callback workflow
    def disposition_given(self, operator_id: str, call_id: str) -> None:
        """Tell the ACD the operator gave this call's disposition (the disposition rule)."""
        ...

    # Desk call controls (supervisor/views/controls.py): the connected operator's own call.

    async def hang_up(self, call_id: str, operator_id: str) -> None:
        """End the call: the caller is hung up, recorded as ended by the operator."""
        ...

    async def conference(
        self, call_id: str, operator_id: str, colleague: str, dial: str | None
    ) -> None:
        """Ring a colleague into the call: a ready operator (`dial` None) or a supervisor
        (`colleague` their username, `dial` their phone)."""
        ...

    async def leave(self, call_id: str, operator_id: str) -> None:
        """Leave the call to the colleague who answered."""
        ...

    async def hold(self, call_id: str, operator_id: str, hold: bool) -> None:
        """Put the caller on hold (music, still bridged and recorded), or take them back."""
        ...


def operator_call(centre: LiveCentre, operator_id: str) -> LiveCall | None:
    """The call ringing or connected to this operator, if any; else the connected call they
    were conferenced into beside its operator (`LiveCall.joined`: a colleague's desk shows the
    call before it is theirs)."""
    calls = centre.live_calls()
    for call in calls:
        if call.operator_id == operator_id and call.state in ("offered", "connected"):
            return call
    for call in calls:
        if operator_id in call.joined and call.state == "connected":
            return call
    return None


def joined_only(call: LiveCall, operator_id: str) -> bool:
    """The operator is on the call as a colleague beside its operator, not as its operator."""
    return call.operator_id != operator_id and operator_id in call.joined


class AppCentre:
    """`LiveCentre` over the running `SiagaApp`."""

    def __init__(self, app: SiagaApp) -> None:
        self.app = app

    def snapshot(self) -> Snapshot:
        # The core's clock moves only with its events: without a tick first, a caller waiting
        # in a quiet centre would show (and alarm with) the age of the last event.
        self.app.to_acd(Tick())
        return self.app.snapshot()

    def live_calls(self) -> list[LiveCall]:
        now = self.app.clock()
        return [
            LiveCall(
                call_id=actor.call_id,
                caller_number=actor.channel.caller.number,
                caller_name=actor.channel.caller.name,
                category=actor.machine.category,
                state=actor.machine.state.value,
                operator_id=actor.machine.operator_id,
                flags=frozenset(actor.machine.flags),
                age_seconds=max(0.0, now - actor.arrival),
                hand_offs=actor.machine.hand_offs(),
                held=actor.machine.held,
                joined=actor.machine.joined_operators(),
            )
            for actor in list(self.app.calls.values())
        ]

    def operator_login(self, operator_id: str) -> None:
        self.app.operator_login(operator_id)

    def operator_logout(self, operator_id: str) -> None:
        self.app.operator_logout(operator_id)

    def operator_pause(self, operator_id: str, reason: str) -> None:
        self.app.operator_pause(operator_id, reason)

    def operator_ready(self, operator_id: str) -> None:
        self.app.operator_ready(operator_id)

    def record(self, event: RecordEvent) -> None:
        self.app.journal.write(event)

    async def listen(self, supervisor: str, dial: str, call_id: str, mode: ListenMode) -> None:
        try:
            self.app.listen(call_id, dial, mode)
        except KeyError as exc:  # UnknownCallError: the call ended meanwhile
            raise ActionUnavailableError(f"no live call {call_id}") from exc

    async def add_agency(self, call_id: str, agency: str, operator_id: str) -> None:
        try:
            self.app.add_agency(call_id, agency)
        except KeyError as exc:  # UnknownCallError, or an agency not in siaga.toml
            raise ActionUnavailableError(str(exc)) from exc

    async def call_back(self, operator_id: str, number: str, call_id: str) -> None:
        try:
            self.app.callback(call_id, number, operator_id)
        except (CallbackUnavailableError, KeyError) as exc:
            raise ActionUnavailableError(str(exc)) from exc

    # -- the disposition and callback workflow
    def disposition_given(self, operator_id: str, call_id: str) -> None:
        self.app.disposition_given(operator_id, call_id)

    async def hang_up(self, call_id: str, operator_id: str) -> None:
        try:
            self.app.hang_up(call_id, operator_id)
        except (NotYourCallError, KeyError) as exc:
            raise ActionUnavailableError(str(exc)) from exc

    async def conference(
        self, call_id: str, operator_id: str, colleague: str, dial: str | None
    ) -> None:
        try:
            self.app.conference(call_id, operator_id, colleague, dial)
        except (NotYourCallError, ColleagueUnavailableError, KeyError) as exc:
            raise ActionUnavailableError(str(exc)) from exc

    async def leave(self, call_id: str, operator_id: str) -> None:
        try:
            self.app.leave(call_id, operator_id)
        except (NotYourCallError, KeyError) as exc:
            raise ActionUnavailableError(str(exc)) from exc

    async def hold(self, call_id: str, operator_id: str, hold: bool) -> None:
        try:
            self.app.hold(call_id, operator_id, hold)
        except (NotYourCallError, KeyError) as exc:
            raise ActionUnavailableError(str(exc)) from exc
