"""Decisions `Acd.handle` returns, in the order the shell should carry them out."""

from __future__ import annotations

from dataclasses import dataclass

from queues.config import OverflowCondition, OverflowTarget
from queues.states import CancelReason, OperatorState


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring this operator with this call (ring-all: several `Offer`s for one call)."""

    call_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing this operator with this call; the engine has already moved on."""

    call_id: str
    operator_id: str
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell a waiting caller their position (1 = next) and estimated wait, None if unknown."""

    call_id: str
    position: int
    ewt_seconds: float | None


@dataclass(frozen=True, slots=True)
class Overflow:
    """The call leaves `from_category`: to another category (still queued, same arrival) or,
    for route and number targets, out of the engine (the shell takes it there)."""

    call_id: str
    target: OverflowTarget
    condition: OverflowCondition
    from_category: str


@dataclass(frozen=True, slots=True)
class OperatorStateChanged:
    """Every operator state change, for the journal; `reason` is a `Reason` or a pause reason."""

    operator_id: str
    old: OperatorState
    new: OperatorState
    reason: str
    call_id: str | None = None


Decision = Offer | CancelOffer | Announce | Overflow | OperatorStateChanged
