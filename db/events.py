"""Record events: what the app tells the journal.

Every state change of a call or an operator becomes one `RecordEvent`. Events are facts with a
UUID; the tables `calls`, `operators`, `operator_state_changes`, `dispositions`, `callbacks` and
`caller_flags` are derived from them in PostgreSQL, so the same event written twice, or events
arriving out of order, give the same rows.

Kinds and their `data` keys (all optional unless marked *):

- call_arrived: caller_number*, caller_name, channel_id, flags [list of str]
  (a call handled by the dialplan fallback while the app was away carries flag "fallback")
- ivr_step: menu, input, digit, language
- call_classified (operator_id when an operator set it): category*, priority [int], flags
  [list: silent/spoke/cannot_speak/repeat/blocked/fallback...], language, source ("operator":
  set on the console; absent: the IVR)
- call_queued: category, position
- call_announced: position, ewt_seconds
- call_offered (operator_id*): -
- offer_failed (operator_id*): reason* (OfferFailure or RecordOnlyFailure)
- call_connected (operator_id*): - ; the first one is the answer
- call_transferred (operator_id: who left): agency (to an agency), to (to a colleague: the
  operator id, or the supervisor's username, who took the call over) ; agency_added: agency
- call_ended: hangup_by (caller/operator/agency/system), reason (normal/pbx_restart/...),
  cause (Q.850)
- call_abandoned: position, wait_seconds (informative; the table computes its own), state
  (arrived/ivr/queue), cause, category ; it also creates a `callbacks` row
- callback_updated: status (pending/claimed/done), owner, outcome (CallbackOutcome from the
  desk; ari_app.call.callback.Outcome from the app), notes
- flag_set: flag* (a flag on this call); for flag "overflow": target (where the ACD sent the
  call: category:CODE or number:DIAL), rule (the condition that held), from_category; flag
  "recording_failed" (RECORDING_FAILED): the call's recording is missing or holds no audio
  (its file system was full); flag "on_hold": the operator put the caller on hold
- overflow_outcome: partner* (the partner centre's dial string), outcome* (answered/failed),
  rule, cause ; an answered partner is listed in the call's `agencies`
- operator_state (operator_id*): state* (OperatorState), reason, name, previous
- disposition (operator_id): verdict* (Verdict), notes, location [str or object]
- caller_flag_set: number*, flag*, reason, set_by, until [ISO 8601 or null] (a block/watch on
  a caller number, audited: never deleted, only cleared)
- caller_flag_cleared: flag_id* (event id of the caller_flag_set), cleared_by, reason
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from queues.states import OfferFailure, OperatorState

JSON: TypeAlias = str | int | float | bool | list["JSON"] | dict[str, "JSON"] | None

SPOOL_FORMAT = 1

# The event ids of facts written by more than one writer (the app, the fallback recorder, the
# reconciliation from Asterisk's own record, the lost-node closer): derived from the call and
# the fact, so that a fact recorded twice is one row.
_FACT_NAMESPACE = uuid.UUID("5c1a9a11-2b1e-4f0c-9a55-fa11bac0c0de")


def fact_id(call_id: str, fact: str) -> uuid.UUID:
    """The same fact about the same call always gets the same event id."""
    return uuid.uuid5(_FACT_NAMESPACE, f"{call_id}/{fact}")


def flag_fact_id(call_id: str, flag: str) -> uuid.UUID:
    """The fact id of a flag set on a call."""
    return fact_id(call_id, f"flag:{flag}")


class EventKind(StrEnum):
    CALL_ARRIVED = "call_arrived"
    IVR_STEP = "ivr_step"
    CALL_CLASSIFIED = "call_classified"
    CALL_QUEUED = "call_queued"
    CALL_ANNOUNCED = "call_announced"
    CALL_OFFERED = "call_offered"
    OFFER_FAILED = "offer_failed"
    CALL_CONNECTED = "call_connected"
    CALL_TRANSFERRED = "call_transferred"
    AGENCY_ADDED = "agency_added"
    CALL_ENDED = "call_ended"
    CALL_ABANDONED = "call_abandoned"
    CALLBACK_UPDATED = "callback_updated"
    FLAG_SET = "flag_set"
    OVERFLOW_OUTCOME = "overflow_outcome"
    OPERATOR_STATE = "operator_state"
    DISPOSITION = "disposition"
    CALLER_FLAG_SET = "caller_flag_set"
    CALLER_FLAG_CLEARED = "caller_flag_cleared"


# The kinds a call has at most once, and their fact names: whichever writer records one, it
# gets the call's fact id, so that the first to reach the database is the one kept (an app's
# end still in its journal while the reconciler closes the same call, docs/architecture.md).
ONCE_FACTS: dict[EventKind, str] = {
    EventKind.CALL_ARRIVED: "arrived",
    EventKind.CALL_ABANDONED: "abandoned",
    EventKind.CALL_ENDED: "ended",
}


class Verdict(StrEnum):
    EMERGENCY = "emergency"
    NON_EMERGENCY = "non_emergency"
    INFORMATION = "information"
    COMPLAINT = "complaint"
    PRANK = "prank"
    SILENT = "silent"
    MISDIAL = "misdial"


class CallbackOutcome(StrEnum):
    """How an operator closed a callback on the desk (`callback_updated.outcome`); the app's
    own callbacks record `ari_app.call.callback.Outcome` instead."""

    REACHED = "reached"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    NOT_NEEDED = "not_needed"  # e.g. the caller got through since, or help already came


# call_ended.reason of the calls of an Asterisk node the app lost for good (docs/ha.md): its
# media was there, so the calls are taken as cut and their operators freed.
NODE_LOST = "node_lost"


class HangupBy(StrEnum):
    CALLER = "caller"
    OPERATOR = "operator"
    AGENCY = "agency"  # the last agency left a caller whose operator had handed over
    SYSTEM = "system"


class RecordOnlyFailure(StrEnum):
    """`offer_failed` reasons the records know and the ACD does not; the others are the ACD's
    own `OfferFailure`."""

    # Answered and hung up within 2 s: taken back as no answer. The ACD sees the caller
    # requeued, not a failed offer.
    HUNG_UP_AT_ONCE = "hung_up_at_once"


_OFFER_FAILED_REASONS = frozenset(OfferFailure) | frozenset(RecordOnlyFailure)

# The flag of a call the dialplan fallback took (the app was away): the fallback recorder,
# and the reconciliation set it.
FALLBACK_FLAG = "fallback"
# The `flag_set` flag of a call whose recording could not be written (stack/recordings.py).
RECORDING_FAILED = "recording_failed"

# `call_classified.source` of a category an operator set on the console (the IVR's have none).
SOURCE_OPERATOR = "operator"


class OverflowOutcome(StrEnum):
    """What became of a call sent to a partner centre."""

    ANSWERED = "answered"
    FAILED = "failed"  # no answer, busy, unreachable: the caller is back in our queue


class Outcome(StrEnum):
    """The `calls.outcome` column, derived in SQL (see refresh_calls)."""

    ONGOING = "ongoing"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    FALLBACK = "fallback"
    UNANSWERED = "unanswered"  # ended without an operator, not by the caller waiting


@dataclass(frozen=True)
class RecordEvent:
    """One fact for the journal. `at` is normalised to UTC, truncated to the millisecond
    (the precision of the columns), and `data` is checked to be JSON at construction, so a bad
    event fails where it is made, not later in the writer."""

    event_id: uuid.UUID
    kind: EventKind
    call_id: str | None
    operator_id: str | None
    at: datetime
    data: Mapping[str, JSON]
    data_json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("RecordEvent.at must be timezone-aware")
        at = utc_ms(self.at)
        data = _clean_mapping(self.data)
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "call_id", _clean_text(self.call_id))
        object.__setattr__(self, "operator_id", _clean_text(self.operator_id))
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "data_json", json.dumps(data, ensure_ascii=False, allow_nan=False))

    @classmethod
    def new(
        cls,
        kind: EventKind,
        *,
        call_id: str | None = None,
        operator_id: str | None = None,
        at: datetime | None = None,
        event_id: uuid.UUID | None = None,
        **data: JSON,
    ) -> RecordEvent:
        if event_id is None and call_id is not None and kind in ONCE_FACTS:
            event_id = fact_id(call_id, ONCE_FACTS[kind])
        return cls(
            event_id=event_id or uuid.uuid4(),
            kind=kind,
            call_id=call_id,
            operator_id=operator_id,
            at=at or datetime.now(UTC),
            data={key: value for key, value in data.items() if value is not None},
        )

    def to_line(self) -> str:
        """One spool line (no newline): self-describing JSON."""
        fields = [
            f'"v":{SPOOL_FORMAT}',
            f'"event_id":"{self.event_id}"',
            f'"kind":{json.dumps(self.kind.value)}',
            f'"call_id":{json.dumps(self.call_id, ensure_ascii=False)}',
            f'"operator_id":{json.dumps(self.operator_id, ensure_ascii=False)}',
            f'"at":"{self.at.isoformat()}"',
            f'"data":{self.data_json}',
        ]
        return "{" + ",".join(fields) + "}"

    @classmethod
    def from_line(cls, line: str) -> RecordEvent:
        raw: dict[str, Any] = json.loads(line)
        if raw.get("v") != SPOOL_FORMAT:
            raise ValueError(f"unknown spool format {raw.get('v')!r}")
        return cls(
            event_id=uuid.UUID(raw["event_id"]),
            kind=EventKind(raw["kind"]),
            call_id=raw["call_id"],
            operator_id=raw["operator_id"],
            at=datetime.fromisoformat(raw["at"]),
            data=raw["data"],
        )


# -- facts: what the app knows before the journal stamps it --------------------------------


@dataclass(frozen=True, slots=True)
class Fact:
    """A record event before the journal stamps it with its id, its call id and its time.

    Built by the typed constructors of `Facts`, so that a kind and its data keys always agree
    with the list above; None values are left out, as `RecordEvent.new` does."""

    kind: EventKind
    data: Mapping[str, JSON] = field(default_factory=dict)
    operator_id: str | None = None

    def stamp(
        self,
        *,
        call_id: str | None = None,
        at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> RecordEvent:
        return RecordEvent.new(
            self.kind,
            call_id=call_id,
            operator_id=self.operator_id,
            at=at,
            event_id=event_id,
            **self.data,
        )


def _fact(kind: EventKind, operator_id: str | None = None, **data: JSON) -> Fact:
    return Fact(kind, {k: v for k, v in data.items() if v is not None}, operator_id)


class Facts:
    """One typed constructor per kind (the data keys of the list above)."""

    @staticmethod
    def call_arrived(
        caller_number: str,
        *,
        caller_name: str | None = None,
        channel_id: str | None = None,
        flags: Iterable[str] = (),
    ) -> Fact:
        return _fact(
            EventKind.CALL_ARRIVED,
            caller_number=caller_number,
            caller_name=caller_name,
            channel_id=channel_id,
            flags=list(flags),
        )

    @staticmethod
    def ivr_step(
        menu: str,
        *,
        input: str | None = None,
        digit: str | None = None,
        language: str | None = None,
    ) -> Fact:
        return _fact(EventKind.IVR_STEP, menu=menu, input=input, digit=digit, language=language)

    @staticmethod
    def call_classified(
        category: str,
        *,
        priority: int | None = None,
        flags: Iterable[str] = (),
        language: str | None = None,
        operator_id: str | None = None,
        source: str | None = None,
    ) -> Fact:
        return _fact(
            EventKind.CALL_CLASSIFIED,
            operator_id,
            category=category,
            priority=priority,
            flags=list(flags),
            language=language,
            source=source,
        )

    @staticmethod
    def call_queued(*, category: str | None = None, position: int | None = None) -> Fact:
        return _fact(EventKind.CALL_QUEUED, category=category, position=position)

    @staticmethod
    def call_announced(*, position: int | None = None, ewt_seconds: float | None = None) -> Fact:
        return _fact(EventKind.CALL_ANNOUNCED, position=position, ewt_seconds=ewt_seconds)

    @staticmethod
    def call_offered(operator_id: str) -> Fact:
        return _fact(EventKind.CALL_OFFERED, operator_id)

    @staticmethod
    def offer_failed(operator_id: str, reason: str) -> Fact:
        """`reason`: an `OfferFailure`, or why the ACD withdrew the offer (a cancel reason)."""
        return _fact(EventKind.OFFER_FAILED, operator_id, reason=str(reason))

    @staticmethod
    def call_connected(operator_id: str) -> Fact:
        return _fact(EventKind.CALL_CONNECTED, operator_id)

    @staticmethod
    def call_transferred(
        agency: str | None = None, *, to: str | None = None, operator_id: str | None = None
    ) -> Fact:
        return _fact(EventKind.CALL_TRANSFERRED, operator_id, agency=agency, to=to)

    @staticmethod
    def agency_added(agency: str, *, operator_id: str | None = None) -> Fact:
        return _fact(EventKind.AGENCY_ADDED, operator_id, agency=agency)

    @staticmethod
    def call_ended(
        hangup_by: HangupBy,
        *,
        reason: str = "normal",
        cause: str | None = None,
        operator_id: str | None = None,
    ) -> Fact:
        return _fact(
            EventKind.CALL_ENDED,
            operator_id,
            hangup_by=HangupBy(hangup_by).value,
            reason=reason,
            cause=cause,
        )

    @staticmethod
    def call_abandoned(
        *,
        position: int | None = None,
        wait_seconds: float | None = None,
        state: str | None = None,
        cause: str | None = None,
        category: str | None = None,
    ) -> Fact:
        return _fact(
            EventKind.CALL_ABANDONED,
            position=position,
            wait_seconds=wait_seconds,
            state=state,
            cause=cause,
            category=category,
        )

    @staticmethod
    def callback_updated(
        *,
        status: str,
        owner: str | None = None,
        outcome: str | None = None,
        notes: str | None = None,
        operator_id: str | None = None,
    ) -> Fact:
        return _fact(
            EventKind.CALLBACK_UPDATED,
            operator_id,
            status=status,
            owner=owner,
            outcome=outcome,
            notes=notes,
        )

    @staticmethod
    def flag_set(
        flag: str,
        *,
        target: str | None = None,
        rule: str | None = None,
        from_category: str | None = None,
    ) -> Fact:
        return _fact(
            EventKind.FLAG_SET, flag=flag, target=target, rule=rule, from_category=from_category
        )

    @staticmethod
    def overflow_outcome(
        partner: str, outcome: OverflowOutcome, *, rule: str | None = None, cause: str | None = None
    ) -> Fact:
        return _fact(
            EventKind.OVERFLOW_OUTCOME,
            partner=partner,
            outcome=OverflowOutcome(outcome).value,
            rule=rule,
            cause=cause,
        )

    @staticmethod
    def operator_state(
        operator_id: str,
        state: OperatorState,
        *,
        reason: str | None = None,
        name: str | None = None,
        previous: str | None = None,
    ) -> Fact:
        return _fact(
            EventKind.OPERATOR_STATE,
            operator_id,
            state=OperatorState(state).value,
            reason=reason,
            name=name,
            previous=previous,
        )

    @staticmethod
    def disposition(
        operator_id: str | None,
        verdict: Verdict,
        *,
        notes: str | None = None,
        location: JSON = None,
    ) -> Fact:
        return _fact(
            EventKind.DISPOSITION,
            operator_id,
            verdict=Verdict(verdict).value,
            notes=notes,
            location=location,
        )

    @staticmethod
    def caller_flag_set(
        number: str,
        flag: str,
        *,
        reason: str | None = None,
        set_by: str | None = None,
        until: datetime | None = None,
    ) -> Fact:
        if until is not None and until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        return _fact(
            EventKind.CALLER_FLAG_SET,
            number=number,
            flag=flag,
            reason=reason,
            set_by=set_by,
            until=utc_ms(until).isoformat() if until else None,
        )

    @staticmethod
    def caller_flag_cleared(
        flag_id: uuid.UUID, *, cleared_by: str | None = None, reason: str | None = None
    ) -> Fact:
        return _fact(
            EventKind.CALLER_FLAG_CLEARED,
            flag_id=str(flag_id),
            cleared_by=cleared_by,
            reason=reason,
        )


# -- record events with their call id and time (the journal's, the tests' and the AGI's) -----


def call_arrived(
    call_id: str,
    caller_number: str,
    *,
    caller_name: str | None = None,
    channel_id: str | None = None,
    flags: Iterable[str] = (),
    at: datetime | None = None,
) -> RecordEvent:
    fact = Facts.call_arrived(
        caller_number, caller_name=caller_name, channel_id=channel_id, flags=flags
    )
    return fact.stamp(call_id=call_id, at=at)


def ivr_step(
    call_id: str,
    menu: str,
    *,
    input: str | None = None,
    language: str | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    return Facts.ivr_step(menu, input=input, language=language).stamp(call_id=call_id, at=at)


def call_classified(
    call_id: str,
    category: str,
    *,
    priority: int | None = None,
    flags: Iterable[str] = (),
    operator_id: str | None = None,
    source: str | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    fact = Facts.call_classified(
        category, priority=priority, flags=flags, operator_id=operator_id, source=source
    )
    return fact.stamp(call_id=call_id, at=at)


def call_queued(
    call_id: str,
    *,
    category: str | None = None,
    position: int | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    return Facts.call_queued(category=category, position=position).stamp(call_id=call_id, at=at)


def call_announced(
    call_id: str,
    *,
    position: int | None = None,
    ewt_seconds: float | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    fact = Facts.call_announced(position=position, ewt_seconds=ewt_seconds)
    return fact.stamp(call_id=call_id, at=at)


def call_offered(call_id: str, operator_id: str, *, at: datetime | None = None) -> RecordEvent:
    return Facts.call_offered(operator_id).stamp(call_id=call_id, at=at)


def offer_failed(
    call_id: str,
    operator_id: str,
    reason: OfferFailure | RecordOnlyFailure,
    *,
    at: datetime | None = None,
) -> RecordEvent:
    if reason not in _OFFER_FAILED_REASONS:
        raise ValueError(f"{reason!r} is not an offer failure")
    return Facts.offer_failed(operator_id, str(reason)).stamp(call_id=call_id, at=at)


def call_connected(call_id: str, operator_id: str, *, at: datetime | None = None) -> RecordEvent:
    return Facts.call_connected(operator_id).stamp(call_id=call_id, at=at)


def call_transferred(
    call_id: str, agency: str, *, to: str | None = None, at: datetime | None = None
) -> RecordEvent:
    return Facts.call_transferred(agency, to=to).stamp(call_id=call_id, at=at)


def agency_added(call_id: str, agency: str, *, at: datetime | None = None) -> RecordEvent:
    return Facts.agency_added(agency).stamp(call_id=call_id, at=at)


def call_ended(
    call_id: str,
    hangup_by: HangupBy,
    *,
    reason: str = "normal",
    at: datetime | None = None,
) -> RecordEvent:
    return Facts.call_ended(hangup_by, reason=reason).stamp(call_id=call_id, at=at)


def call_abandoned(
    call_id: str,
    *,
    position: int | None = None,
    wait_seconds: float | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    fact = Facts.call_abandoned(position=position, wait_seconds=wait_seconds)
    return fact.stamp(call_id=call_id, at=at)


def callback_updated(
    call_id: str,
    *,
    status: str,
    owner: str | None = None,
    outcome: str | None = None,
    notes: str | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    fact = Facts.callback_updated(status=status, owner=owner, outcome=outcome, notes=notes)
    return fact.stamp(call_id=call_id, at=at)


def flag_set(call_id: str, flag: str, *, at: datetime | None = None) -> RecordEvent:
    return Facts.flag_set(flag).stamp(call_id=call_id, at=at)


def operator_state(
    operator_id: str,
    state: OperatorState,
    *,
    reason: str | None = None,
    name: str | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    return Facts.operator_state(operator_id, state, reason=reason, name=name).stamp(at=at)


def disposition(
    call_id: str,
    operator_id: str | None,
    verdict: Verdict,
    *,
    notes: str | None = None,
    location: JSON = None,
    at: datetime | None = None,
) -> RecordEvent:
    fact = Facts.disposition(operator_id, verdict, notes=notes, location=location)
    return fact.stamp(call_id=call_id, at=at)


def caller_flag_set(
    number: str,
    flag: str,
    *,
    reason: str | None = None,
    set_by: str | None = None,
    until: datetime | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    fact = Facts.caller_flag_set(number, flag, reason=reason, set_by=set_by, until=until)
    return fact.stamp(at=at)


def caller_flag_cleared(
    flag_id: uuid.UUID,
    *,
    cleared_by: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> RecordEvent:
    return Facts.caller_flag_cleared(flag_id, cleared_by=cleared_by, reason=reason).stamp(at=at)


def utc_ms(moment: datetime) -> datetime:
    """In UTC, truncated to the millisecond: the precision of every timestamp column."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


# -- cleaning --------------------------------------------------------------------------------


def _clean_text(value: str | None) -> str | None:
    return None if value is None else _clean_str(value)


def _clean_str(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL, and UTF-8 cannot hold lone surrogates: such
    # characters become U+FFFD rather than costing the whole record.
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


def _clean_mapping(data: Mapping[str, Any]) -> dict[str, JSON]:
    if not isinstance(data, Mapping):
        raise TypeError(f"event data must be a mapping, not {type(data).__name__}")
    return {_clean_key(key): _clean_value(value) for key, value in data.items()}


def _clean_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"event data keys must be str, not {type(key).__name__}")
    return _clean_str(key)


def _clean_value(value: Any) -> JSON:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"event data holds a non-finite number: {value}")
        return value
    if isinstance(value, str):
        return _clean_str(str(value))  # str() turns a StrEnum member into its plain value
    if isinstance(value, Mapping):
        return _clean_mapping(value)
    if isinstance(value, list | tuple):
        return [_clean_value(item) for item in value]
    raise TypeError(f"event data value of type {type(value).__name__} is not JSON")
