"""The rules of one callback, pure: `handle(event) -> list[Command]`.

A callback rings an abandoned caller back (a 112 caller who gave up may be the one who needed
help most). The operator's phone rings first; once the operator answers, the caller is dialled
and both meet in a bridge:

    new -> ringing_operator -> dialling_caller -> connected -> done
                 \\__________________\\______________\\-> done (a leg failed or hung up)

The operator is paused (reason `callback`) from the start, so the ACD offers them nothing else,
and made ready again at the end; the callback record of the original call says who took it and
how it ended. The machine knows nothing of ARI or asyncio: the shell (ari_app/callback.py) turns
ARI events into these events and carries the commands out. See docs/architecture.md.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import structlog

log = structlog.get_logger(__name__)

PAUSE_REASON = "callback"


class CallbackState(enum.StrEnum):
    NEW = "new"
    RINGING_OPERATOR = "ringing_operator"
    DIALLING_CALLER = "dialling_caller"
    CONNECTED = "connected"
    DONE = "done"


class Leg(enum.StrEnum):
    OPERATOR = "operator"
    CALLER = "caller"


class Outcome(enum.StrEnum):
    """How a callback ended, as its record says (the `callbacks.outcome` column)."""

    ANSWERED = "answered"  # the caller answered and talked to the operator
    NO_ANSWER = "no_answer"  # the caller did not answer (or hung up while ringing)
    CALLER_UNREACHABLE = "caller_unreachable"  # Asterisk could not dial the caller
    OPERATOR_NO_ANSWER = "operator_no_answer"
    OPERATOR_UNREACHABLE = "operator_unreachable"  # the operator's phone could not be rung
    OPERATOR_LEFT = "operator_left"  # the operator hung up while the caller was dialled
    FAILED = "failed"  # the bridge could not be set up


class RecordStatus(enum.StrEnum):
    """The callback's status in its record (db/events.py: callback_updated)."""

    CLAIMED = "claimed"
    DONE = "done"


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Begin:
    """The callback was asked for: start ringing the operator."""


@dataclass(frozen=True, slots=True)
class Answered:
    """The leg's channel entered the app: that side picked up."""

    leg: Leg


@dataclass(frozen=True, slots=True)
class Ended:
    """The leg's channel hung up, left the app or was destroyed."""

    leg: Leg


@dataclass(frozen=True, slots=True)
class Unreachable:
    """Asterisk refused to dial the leg (no registered phone, trunk down...)."""

    leg: Leg
    error: str = ""


@dataclass(frozen=True, slots=True)
class Broken:
    """The bridge could not be set up (or the shell failed otherwise): give up cleanly."""

    error: str = ""


CallbackEvent = Begin | Answered | Ended | Unreachable | Broken

# ---- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpdateRecord:
    status: RecordStatus
    owner: str | None = None
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class PauseOperator:
    reason: str = PAUSE_REASON


@dataclass(frozen=True, slots=True)
class ReadyOperator:
    pass


@dataclass(frozen=True, slots=True)
class RingOperator:
    pass


@dataclass(frozen=True, slots=True)
class CreateBridge:
    pass


@dataclass(frozen=True, slots=True)
class AddToBridge:
    leg: Leg


@dataclass(frozen=True, slots=True)
class DialCaller:
    pass


@dataclass(frozen=True, slots=True)
class HangUp:
    leg: Leg


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    pass


@dataclass(frozen=True, slots=True)
class Finished:
    """The callback is over: forget it (its ids, its place among the running callbacks)."""


Command = (
    UpdateRecord
    | PauseOperator
    | ReadyOperator
    | RingOperator
    | CreateBridge
    | AddToBridge
    | DialCaller
    | HangUp
    | DestroyBridge
    | Finished
)

# ---- the rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    to: CallbackState
    outcome: Outcome | None = None  # kept only if no outcome was decided before


_S = CallbackState
Trigger = tuple[CallbackState, type[CallbackEvent], Leg | None]

# Everything that moves a callback on; any other (state, event, leg) is a late or duplicate
# event and changes nothing.
TRANSITIONS: Final[Mapping[Trigger, Transition]] = {
    (_S.NEW, Begin, None): Transition(_S.RINGING_OPERATOR),
    (_S.RINGING_OPERATOR, Answered, Leg.OPERATOR): Transition(_S.DIALLING_CALLER),
    (_S.RINGING_OPERATOR, Ended, Leg.OPERATOR): Transition(_S.DONE, Outcome.OPERATOR_NO_ANSWER),
    (_S.RINGING_OPERATOR, Unreachable, Leg.OPERATOR): Transition(
        _S.DONE, Outcome.OPERATOR_UNREACHABLE
    ),
    (_S.DIALLING_CALLER, Answered, Leg.CALLER): Transition(_S.CONNECTED, Outcome.ANSWERED),
    (_S.DIALLING_CALLER, Ended, Leg.CALLER): Transition(_S.DONE, Outcome.NO_ANSWER),
    (_S.DIALLING_CALLER, Unreachable, Leg.CALLER): Transition(_S.DONE, Outcome.CALLER_UNREACHABLE),
    (_S.DIALLING_CALLER, Ended, Leg.OPERATOR): Transition(_S.DONE, Outcome.OPERATOR_LEFT),
    (_S.CONNECTED, Ended, Leg.OPERATOR): Transition(_S.DONE),
    (_S.CONNECTED, Ended, Leg.CALLER): Transition(_S.DONE),
    (_S.RINGING_OPERATOR, Broken, None): Transition(_S.DONE, Outcome.FAILED),
    (_S.DIALLING_CALLER, Broken, None): Transition(_S.DONE, Outcome.FAILED),
    (_S.CONNECTED, Broken, None): Transition(_S.DONE, Outcome.FAILED),
}


def trigger(state: CallbackState, event: CallbackEvent) -> Trigger:
    match event:
        case Answered(leg=leg) | Ended(leg=leg) | Unreachable(leg=leg):
            return (state, type(event), leg)
        case Begin() | Broken():
            return (state, type(event), None)


@dataclass
class CallbackMachine:
    call_id: str  # the abandoned call this callback belongs to
    operator_id: str
    state: CallbackState = CallbackState.NEW
    outcome: Outcome | None = None
    live: set[Leg] = field(default_factory=set)  # legs dialled and not ended
    bridged: bool = False  # the bridge was asked for

    @property
    def done(self) -> bool:
        return self.state is CallbackState.DONE

    def handle(self, event: CallbackEvent) -> list[Command]:
        if isinstance(event, Ended | Unreachable):
            self.live.discard(event.leg)  # even late: a leg gone needs no hanging up
        transition = TRANSITIONS.get(trigger(self.state, event))
        if transition is None:
            log.debug(
                "callback.ignored",
                call_id=self.call_id,
                operator=self.operator_id,
                state=self.state.value,
                ignored=repr(event),
            )
            return []
        old, self.state = self.state, transition.to
        self.outcome = self.outcome or transition.outcome
        log.info(
            "callback.transition",
            call_id=self.call_id,
            operator=self.operator_id,
            old=old.value,
            new=self.state.value,
            trigger=type(event).__name__,
            outcome=self.outcome.value if self.outcome else None,
        )
        return self._enter(self.state)

    def _enter(self, state: CallbackState) -> list[Command]:
        match state:
            case _S.RINGING_OPERATOR:
                self.live.add(Leg.OPERATOR)
                return [
                    UpdateRecord(RecordStatus.CLAIMED, owner=self.operator_id),
                    PauseOperator(),
                    RingOperator(),
                ]
            case _S.DIALLING_CALLER:
                self.bridged = True
                self.live.add(Leg.CALLER)
                return [CreateBridge(), AddToBridge(Leg.OPERATOR), DialCaller()]
            case _S.CONNECTED:
                return [AddToBridge(Leg.CALLER)]
            case _S.DONE:
                return self._finish()
            case _S.NEW:
                return []

    def _finish(self) -> list[Command]:
        # Whoever is still on the line is hung up: an operator must not stay in a silent
        # channel, a caller must not be left ringing.
        commands: list[Command] = [HangUp(leg) for leg in Leg if leg in self.live]
        self.live.clear()
        if self.bridged:
            commands.append(DestroyBridge())
        return [
            *commands,
            UpdateRecord(RecordStatus.DONE, outcome=self.outcome or Outcome.FAILED),
            ReadyOperator(),
            Finished(),
        ]
