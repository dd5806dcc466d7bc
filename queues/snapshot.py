"""A read-only picture of the engine for the live board."""

from __future__ import annotations

from dataclasses import dataclass, replace

from queues.states import OperatorState


@dataclass(frozen=True, slots=True)
class WaitingCall:
    call_id: str
    age_seconds: float  # since the original arrival at Asterisk
    priority: int
    position: int  # in the line of its skill, 1 = next
    open_to_secondary: bool  # secondary (level 2) operators may take it now
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class CategoryView:
    code: str
    skill: str
    target_answer_seconds: float
    waiting: tuple[WaitingCall, ...]  # in dispatch order
    offered: int
    connected: int


@dataclass(frozen=True, slots=True)
class OperatorView:
    operator_id: str
    state: OperatorState
    reason: str
    seconds_in_state: float
    call_id: str | None  # the call ringing or connected
    registered: bool
    skills: tuple[tuple[str, int], ...]
    calls_offered: int
    calls_answered: int
    consecutive_misses: int
    pending: str | None  # "logout" or "pause:<reason>" after the current call
    # The disposition rule (off: 0 and False): dispositions owed, and whether one is owed too
    # long, so that no call is offered whatever the state says.
    dispositions_owed: int = 0
    held_for_disposition: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    categories: tuple[CategoryView, ...]
    operators: tuple[OperatorView, ...]

    def as_of(self, now: float) -> Snapshot:
        """The same picture with the waits and the times in state counted up to `now`: the
        engine's clock moves only with its events, and a call waiting between two of them must
        not look younger than it is."""
        late = now - self.now
        if late <= 0:
            return self
        categories = tuple(
            replace(
                view,
                waiting=tuple(replace(w, age_seconds=w.age_seconds + late) for w in view.waiting),
            )
            for view in self.categories
        )
        operators = tuple(
            replace(op, seconds_in_state=op.seconds_in_state + late) for op in self.operators
        )
        return Snapshot(now, categories, operators)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    position: int
    ewt_seconds: float | None
