"""Taking calls over after a restart: Asterisk kept them, the app's memory is gone.

The shell lists the channels of our Stasis app (`FoundChannel`); `plan_resync` decides which are
callers to adopt (conversations first, so that their operators are taken before anyone is
offered, then by arrival), which legs to keep and which to hang up; `adopted` reads the place a
waiting caller kept on its channel (`SaveQueueState`).

A leg nobody owns is hung up at once: an app killed between the caller's hang-up and its own
left the operator's phone in a silent call, busy for the dialplan fallback too. Only three
owners keep a leg: the actor of a call this app knows, the caller adopted now (its answered
operator), and a callback this app is running. A callback's legs carry the abandoned call's id,
never a live caller's: after a restart nobody runs that callback any more (nobody would hang up
the other side, or make the operator ready), so its legs go too; the callback stays claimed in
the records, and can be placed again from the console.
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

    @property
    def kind(self) -> str | None:
        """The leg's kind (`LEG_KINDS`); None for a caller."""
        return self.args[0] if is_leg(self.args) else None

    @property
    def call_id(self) -> str:
        """The call it belongs to: its own id for a caller, the call's for a leg."""
        return self.args[1] if is_leg(self.args) else self.id

    @property
    def operator_id(self) -> str | None:
        """The operator an operator leg rings."""
        return self.args[2] if self.kind == "operator" and len(self.args) >= 3 else None


@dataclass(frozen=True, slots=True)
class Adoption:
    call_id: str
    operator_id: str | None = None
    operator_channel: str | None = None


@dataclass(frozen=True, slots=True)
class ResyncPlan:
    gone: list[str] = field(default_factory=list)  # known calls whose channels are gone
    callers: list[Adoption] = field(default_factory=list)  # to adopt, in this order
    hang_up: list[str] = field(default_factory=list)  # legs to start over or nobody's


def plan_resync(
    channels: Sequence[FoundChannel],
    live: Collection[str],
    known: Collection[str],
    operators: Collection[str],
    callbacks: Collection[str] = (),
    lost: Collection[str] = (),
) -> ResyncPlan:
    """`channels`: those in our app; `live`: the ids of every channel; `known`: live calls;
    `callbacks`: the call ids of the callbacks this app is running; `lost`: calls already
    ended as their node's loss (`node_lost`), hung up if their node shows them again (left up
    by a partition, their callers gone: adopted, they would hold their operators)."""
    plan = ResyncPlan(gone=[call_id for call_id in known if call_id not in live])
    legs: dict[str, list[FoundChannel]] = {}
    callers: list[FoundChannel] = []
    for channel in channels:
        if channel.kind == "callback":
            if channel.call_id not in callbacks:
                plan.hang_up.append(channel.id)  # a callback nobody runs
        elif channel.kind is not None:
            if channel.call_id not in known:  # a known call's actor has its legs
                legs.setdefault(channel.call_id, []).append(channel)
        elif channel.id in lost:
            plan.hang_up.append(channel.id)  # its legs go with the orphans below
        elif channel.id not in known:
            callers.append(channel)
    adoptions: list[tuple[bool, datetime, Adoption]] = []
    for caller in callers:
        operator: tuple[str, str] | None = None
        for leg in legs.pop(caller.id, []):
            answered = leg.operator_id if leg.up else None
            if operator is None and answered is not None and answered in operators:
                operator = (answered, leg.id)
            else:
                plan.hang_up.append(leg.id)
        adoption = Adoption(caller.id, *operator) if operator else Adoption(caller.id)
        adoptions.append((operator is None, caller.created or datetime.now(UTC), adoption))
    adoptions.sort(key=lambda a: (a[0], a[1]))
    plan.callers.extend(a for _, _, a in adoptions)
    # The rest are legs of calls that are gone, or live but not ours (in the dialplan fallback,
    # say): nobody will ever hang them up but us.
    plan.hang_up.extend(leg.id for orphans in legs.values() for leg in orphans)
    return plan


# The app names each bridge it creates after what owns it (executors.py, callback.py): a call's
# own bridge and a listener's bridge belong to a call, a callback's to its callback.
_CALL_BRIDGE_PREFIXES = ("siaga-", "listen-")
_CALLBACK_BRIDGE_PREFIX = "cb-"


def stale_bridges(
    bridges: Sequence[tuple[str, str]], calls: Collection[str], callbacks: Collection[str]
) -> list[str]:
    """The ids of our bridges (id, name) whose call or callback this app no longer has: a crash
    left them behind, and nobody else will ever destroy them. Bridges we did not name (the
    fallback queue's, say) are not ours."""
    stale = []
    for bridge_id, name in bridges:
        if name.startswith(_CALLBACK_BRIDGE_PREFIX):
            owner, owners = name.removeprefix(_CALLBACK_BRIDGE_PREFIX), callbacks
        else:
            prefix = next((p for p in _CALL_BRIDGE_PREFIXES if name.startswith(p)), None)
            if prefix is None:
                continue
            owner, owners = name.removeprefix(prefix), calls
        if owner not in owners:
            stale.append(bridge_id)
    return stale


def is_leg(args: Sequence[str]) -> bool:
    return len(args) >= 2 and args[0] in LEG_KINDS


def adopted(
    adoption: Adoption, queue_state: str, *, answered: bool = True, bridged: bool = True
) -> Adopted:
    category, priority, flags = decode_queue_state(queue_state)
    return Adopted(
        category,
        priority,
        flags,
        adoption.operator_id,
        adoption.operator_channel,
        answered=answered,
        bridged=bridged,
    )


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
