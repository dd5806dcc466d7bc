"""Taking calls over after a restart: Asterisk kept them, the app's memory is gone.

The shell lists the channels of our Stasis app (`FoundChannel`); `plan_resync` decides which are
callers to adopt (conversations first, so that their operators are taken before anyone is
offered, then by arrival), which legs to keep and which to hang up; `adopted` reads the place a
waiting caller kept on its channel (`SaveQueueState`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ari_app.call.events import Adopted

# The first Stasis argument of every channel the app originates for a call, then the call id.
LEG_KINDS = ("operator", "agency", "supervisor", "snoop", "callback", "partner")
QUEUE_VARIABLE = "SIAGA_QUEUE"


@dataclass(frozen=True, slots=True)
class FoundChannel:
    id: str
    args: tuple[str, ...]  # its Stasis arguments (after the app's name)
    up: bool
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Adoption:
    call_id: str
    operator_id: str | None = None
    operator_channel: str | None = None


@dataclass(frozen=True, slots=True)
class ResyncPlan:
    gone: list[str] = field(default_factory=list)  # known calls whose channels are gone
    callers: list[Adoption] = field(default_factory=list)  # to adopt, in this order
    hang_up: list[str] = field(default_factory=list)  # legs to start over: ringing, listeners


def plan_resync(
    channels: Sequence[FoundChannel],
    live: Collection[str],
    known: Collection[str],
    operators: Collection[str],
) -> ResyncPlan:
    """`channels`: those in our app; `live`: the ids of every channel; `known`: live calls."""
    plan = ResyncPlan(gone=[call_id for call_id in known if call_id not in live])
    legs: dict[str, list[FoundChannel]] = {}
    callers: list[FoundChannel] = []
    for channel in channels:
        if is_leg(channel.args):
            legs.setdefault(channel.args[1], []).append(channel)
        elif channel.id not in known:
            callers.append(channel)
    adoptions: list[tuple[bool, datetime, Adoption]] = []
    for caller in callers:
        operator: tuple[str, str] | None = None
        for leg in legs.get(caller.id, []):
            args = leg.args
            if (
                operator is None
                and args[0] == "operator"
                and len(args) >= 3
                and leg.up
                and args[2] in operators
            ):
                operator = (args[2], leg.id)
            else:
                plan.hang_up.append(leg.id)
        adoption = Adoption(caller.id, *operator) if operator else Adoption(caller.id)
        adoptions.append((operator is None, caller.created or datetime.now(UTC), adoption))
    adoptions.sort(key=lambda a: (a[0], a[1]))
    plan.callers.extend(a for _, _, a in adoptions)
    return plan


def is_leg(args: Sequence[str]) -> bool:
    return len(args) >= 2 and args[0] in LEG_KINDS


def adopted(adoption: Adoption, queue_state: str) -> Adopted:
    category, priority, flags = decode_queue_state(queue_state)
    return Adopted(category, priority, flags, adoption.operator_id, adoption.operator_channel)


def encode_queue_state(category: str, priority: int, flags: frozenset[str]) -> str:
    return f"{category};{priority};{','.join(sorted(flags))}"


def decode_queue_state(value: str) -> tuple[str | None, int | None, frozenset[str]]:
    """Inverse of encode_queue_state; anything unreadable means "not queued yet"."""
    parts = value.split(";")
    if len(parts) != 3 or not parts[0]:
        return None, None, frozenset()
    try:
        priority = int(parts[1])
    except ValueError:
        return parts[0], None, frozenset()
    return parts[0], priority, frozenset(f for f in parts[2].split(",") if f)
