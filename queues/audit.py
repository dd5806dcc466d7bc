"""A full cross-check of the engine's indexes, for tests and health checks (walks everything):
`audit(acd)` lists every inconsistency found, empty when all is well. Not on every event in
production. The engine never imports this module (no cycle)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from queues.states import CallPlace, OperatorState

if TYPE_CHECKING:
    from queues.acd import Acd


# The engine's private indexes are read on purpose: this module exists to check them.
def audit(acd: Acd) -> list[str]:
    """Every inconsistency between the engine's indexes and its calls and operators."""
    problems: list[str] = []
    calls, ops, now = acd._calls, acd._ops, acd._now
    waiting_in = dict.fromkeys(acd._waiting_in, 0)
    for call_id, call in calls.items():
        skill = call.category.skill
        in_line = call.key in acd._lines[skill]
        in_secondary = call.key in acd._secondary_lines[skill]
        if call.key != (call.priority, call.arrival, call.seq, call_id):
            problems.append(f"call {call_id}: key {call.key} out of date")
        if call.place is CallPlace.WAITING:
            waiting_in[call.category.code] += 1
            if not in_line or in_secondary != call.open_to_secondary:
                problems.append(f"call {call_id}: waiting but not in its lines")
            if call.offered_to or call.operator_id:
                problems.append(f"call {call_id}: waiting but offered or connected")
        elif in_line or in_secondary:
            problems.append(f"call {call_id}: {call.place} but in a waiting line")
        if call.place is CallPlace.OFFERED:
            if not call.offered_to:
                problems.append(f"call {call_id}: offered to nobody")
            for operator_id in call.offered_to:
                op = ops[operator_id]
                if op.state is not OperatorState.OFFERED or op.call_id != call_id:
                    problems.append(f"call {call_id}: offered to {operator_id} in {op.state}")
        if call.place is CallPlace.CONNECTED:
            op = ops[call.operator_id or ""]
            if op.state is not OperatorState.ON_CALL or op.call_id != call_id:
                problems.append(f"call {call_id}: connected to {op.operator_id} in {op.state}")
        # A colleague conferenced in (OperatorJoined) is on the call beside its operator.
        for operator_id in call.joined:
            colleague = ops[operator_id]
            if (
                call.place is not CallPlace.CONNECTED
                or operator_id == call.operator_id
                or colleague.state is not OperatorState.ON_CALL
                or colleague.call_id != call_id
            ):
                problems.append(f"call {call_id}: joined by {operator_id} in {colleague.state}")
    if waiting_in != acd._waiting_in:
        problems.append(f"waiting counts {acd._waiting_in} != {waiting_in}")
    for skill in acd._skills:
        for line in (acd._lines[skill], acd._secondary_lines[skill]):
            for key in line:
                call_or_none = calls.get(key[3])
                if call_or_none is None or call_or_none.place is not CallPlace.WAITING:
                    problems.append(f"line {skill}: holds {key[3]} which is not waiting")
    staffed = dict.fromkeys(acd._skills, 0)
    serving = dict.fromkeys(acd._skills, 0)
    for operator_id, op in ops.items():
        # Recomputed here rather than trusted: that is the point of an audit.
        is_staffed = op.state is not OperatorState.LOGGED_OUT and op.registered
        is_serving = is_staffed and op.state is not OperatorState.PAUSED
        for skill, level in op.skills.items():
            if skill in staffed:
                staffed[skill] += is_staffed
                serving[skill] += is_serving and level == 1
        block_after = acd.config.disposition_block_after_seconds
        held = block_after > 0 and bool(op.owed) and min(op.owed.values()) + block_after <= now
        dispatchable = (
            op.state is OperatorState.AVAILABLE
            and op.registered
            and (op.retry_at is None or op.retry_at <= now)
            and not held  # the disposition rule: one owed too long keeps offers away
        )
        if op.pooled != dispatchable:
            problems.append(f"operator {operator_id}: pooled={op.pooled} in {op.state}")
        for skill, level in op.skills.items():
            if skill in acd._pools and (operator_id in acd._pools[skill][level - 1]) != op.pooled:
                problems.append(f"operator {operator_id}: pool {skill}/{level} out of date")
        if op.state in (OperatorState.OFFERED, OperatorState.ON_CALL):
            call_or_none = calls.get(op.call_id or "")
            place = CallPlace.OFFERED if op.state is OperatorState.OFFERED else CallPlace.CONNECTED
            if call_or_none is None or call_or_none.place is not place:
                problems.append(f"operator {operator_id}: {op.state} with call {op.call_id}")
            elif op.state is OperatorState.ON_CALL and operator_id not in (
                call_or_none.operator_id,
                *call_or_none.joined,
            ):
                problems.append(f"operator {operator_id}: on call {op.call_id} without a place")
        elif op.call_id is not None:
            problems.append(f"operator {operator_id}: {op.state} holds call {op.call_id}")
    if staffed != acd._staffed or serving != acd._serving:
        problems.append("staffed/serving counts out of date")
    for skill in acd._skills:
        primary, secondary = acd._pools[skill]
        if acd._held:
            continue  # OffersHeld: calls wait for free operators until released
        if (primary and acd._lines[skill]) or (secondary and acd._secondary_lines[skill]):
            problems.append(f"skill {skill}: a waiting call has an available operator")
    return problems
