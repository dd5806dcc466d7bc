"""The words for the codes of the records, the ACD and the audit, as the console shows them.

Every code a person can see goes through `Words` (one per page: the user's language and the
centre's configuration): categories and agencies by their labels in siaga.toml, operators by
name, everything else by its `MESSAGES` entry in supervisor/i18n.py. The vocabularies are the
enums themselves, plus `CALL_FLAGS` for the flags, which are plain strings where they are set;
tests/supervisor/test_console_words.py fails for a member without words in both languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl

from ari_app.call.machine import ON_HOLD
from ari_app.call.states import CallState, HandOffStatus, ListenMode
from ari_app.ivr import UNCLASSIFIED, StepKind
from db.events import (
    FALLBACK_FLAG,
    NODE_LOST,
    RECORDING_FAILED,
    SOURCE_OPERATOR,
    CallbackOutcome,
    EventKind,
    HangupBy,
    Outcome,
    OverflowOutcome,
    RecordOnlyFailure,
    Verdict,
)
from db.reconcile import GONE_WHILE_AWAY, PBX_RESTART, RECONCILED_FLAG
from queues.config import OverflowCondition
from queues.states import CancelReason, OfferFailure, OperatorState, Reason
from siaga.config import Config
from supervisor.accounts import AccountProblem
from supervisor.i18n import MESSAGES, translate
from supervisor.roles import Role
from supervisor.security import CredentialProblem, Limit
from supervisor.store import AuditAction

# Every flag a call can carry in the records (calls.flags, flag_set events), where it is set:
# the IVR, screening, the call machine, the ACD's overflow, the records' writers.
CALL_FLAGS: Final = (
    "silent",
    "spoke",
    "cannot_speak",
    UNCLASSIFIED,
    "repeat",
    "blocked",
    "prank_history",
    "silent_history",
    "overflow",
    "adopted",
    "handed_to_fallback",
    FALLBACK_FLAG,
    RECORDING_FAILED,
    RECONCILED_FLAG,
    PBX_RESTART,
    GONE_WHILE_AWAY,
    *(f"supervisor_{mode.value}" for mode in ListenMode),
    ON_HOLD,  # call controls on the desk
)
# Flags with a value after the colon: agency_requested:<agency code>.
AGENCY_REQUESTED: Final = "agency_requested"

# Why a call ended (call_ended.reason) besides a Q.850 cause.
END_REASONS: Final = ("normal", "gone", "unreachable", PBX_RESTART, GONE_WHILE_AWAY, NODE_LOST)
# Where a caller gave up (call_abandoned.state).
ABANDONED_IN: Final = ("arrived", "ivr", "queue")
CALLBACK_STATUSES: Final = ("pending", "claimed", "done")
# The desk's outcomes, and "unreached" of older records.
CALLBACK_OUTCOMES: Final = (*CallbackOutcome, "unreached")
# Who did an audited action when it was not a console user (cli, feature code, retention).
OTHER_AUDIT_ROLES: Final = ("cli", "phone", "retention")

# The vocabularies and the MESSAGES prefix of their words.
VOCABULARIES: Final[Mapping[str, tuple[str, ...]]] = {
    "event.": tuple(EventKind),
    "outcome.": tuple(Outcome),
    "verdict.": tuple(Verdict),
    "hangup.": tuple(HangupBy),
    "state.": tuple(OperatorState),
    "call.": tuple(CallState),
    "offer.": (*OfferFailure, *RecordOnlyFailure, *CancelReason),
    "acd.": tuple(Reason),
    "overflow.": tuple(OverflowOutcome),
    "rule.": tuple(OverflowCondition),
    "input.": tuple(StepKind),
    "listen.": tuple(ListenMode),
    "audit.action.": tuple(AuditAction),
    "role.": (*Role, *OTHER_AUDIT_ROLES),
    "limit.": tuple(limit.value for limit in Limit),
    "flag.": (*CALL_FLAGS, AGENCY_REQUESTED),
    "end.": END_REASONS,
    "abandoned_in.": ABANDONED_IN,
    "cb.status.": CALLBACK_STATUSES,
    "cb.": CALLBACK_OUTCOMES,
    "source.": (SOURCE_OPERATOR, "phone"),
    # user management: why a change is refused
    "users.problem.": (*CredentialProblem, *AccountProblem),
    # call controls on the desk: how a hand-off goes
    "handoff.": tuple(HandOffStatus),
}

_Q850_PREFIX = "cause."


class Words:
    """The words of one page: its language and the centre's names."""

    def __init__(self, config: Config, lang: str) -> None:
        self.config = config
        self.lang = lang

    def t(self, key: str) -> str:
        return translate(key, self.lang)

    def _known(self, prefix: str, code: str) -> str:
        # A code with no words (a centre's own pause reason, a newer app's code) is shown as
        # it is rather than hidden.
        return self.t(prefix + code) if prefix + code in MESSAGES else code

    def category(self, code: str | None) -> str:
        if not code:
            return "-"
        for category in self.config.categories:
            if category.code == code:
                return category.label_id if self.lang == "id" else category.label_en
        return self._known("category.", code)  # the reports' "unclassified"; a removed one

    def agency(self, code: str) -> str:
        return next((a.name for a in self.config.agencies if a.code == code), code)

    def operator(self, operator_id: str | None) -> str:
        """The name in siaga.toml (an operator since removed keeps their id)."""
        if not operator_id:
            return "-"
        return next((op.name for op in self.config.operators if op.id == operator_id), operator_id)

    def flag(self, code: str) -> str:
        name, _, value = code.partition(":")
        if name == AGENCY_REQUESTED and value:
            return self.t("flag." + AGENCY_REQUESTED).format(agency=self.agency(value))
        return self._known("flag.", code)

    def flags(self, codes: object) -> str:
        if not isinstance(codes, list | tuple):
            return self.flag(str(codes))
        return ", ".join(self.flag(str(code)) for code in codes)

    def event(self, kind: str) -> str:
        return self._known("event.", kind)

    def outcome(self, outcome: str) -> str:
        return self._known("outcome.", outcome)

    def verdict(self, verdict: str | None) -> str:
        return self._known("verdict.", verdict) if verdict else ""

    def hangup(self, side: str | None) -> str:
        return self._known("hangup.", side) if side else "-"

    def cause(self, cause: object) -> str:
        """A Q.850 cause in words with its number; "cause N" for the rare ones."""
        text = str(cause).strip()
        if not text.isdigit():
            return self.end_reason(text)
        number = int(text)
        key = f"{_Q850_PREFIX}{number}"
        if key in MESSAGES:
            return f"{self.t(key)} ({number})"
        return self.t(_Q850_PREFIX + "other").format(cause=number)

    def end_reason(self, reason: str) -> str:
        if reason.strip().isdigit():
            return self.cause(reason)
        return self._known("end.", reason)

    def callback_status(self, status: str) -> str:
        return self._known("cb.status.", status)

    def pause_reason(self, reason: str) -> str:
        return self._known("pause.", reason)

    def audit_action(self, action: str) -> str:
        return self._known("audit.action.", action)

    def role(self, role: str | None) -> str:
        return self._known("role.", role) if role else self.t("audit.system")

    def key(self, key: str, kind: str = "") -> str:
        if kind == EventKind.OPERATOR_STATE and key == "state":
            return self.t("data.status")  # an operator's state, not a call's stage
        return self._known("data.", key)

    def audit_target(self, action: str, target: str | None) -> str:
        """An audited action's target: the operator's name for an action on an operator."""
        if not target:
            return ""
        return self.operator(target) if action.startswith("operator_") else target

    def value(self, kind: str, key: str, value: object) -> str:
        """One value of a timeline event's (or an audit entry's) data, in words."""
        if isinstance(value, bool):
            return self.t("yes" if value else "no")
        if value is None:
            return "-"
        if key == "flags":
            return self.flags(value)
        text = value if isinstance(value, str) else str(value)
        match key:
            case "flag":
                return self.flag(text)
            case "cause":
                return self.cause(text)
            case "hangup_by":
                return self.hangup(text)
            case "category" | "from_category":
                return self.category(text)
            case "verdict":
                return self.verdict(text)
            case "agency":
                return self.agency(text)
            case "owner" | "set_by" | "cleared_by":
                return self.operator(text)
            case "source":
                return self._known("source.", text)
            case "language":
                return self._known("lang.", text)
            case "input":
                return self._known("input.", text)
            case "menu":
                return self._known("menu.", text)
            case "rule":
                return self._known("rule.", text)
            case "status":
                return self.callback_status(text)
            case "limit":
                return self._known("limit.", text)
            case "role":
                return self.role(text)
            case "target":
                return self._target(text)
            case "previous":
                return self._known("state.", text)
            case "state":
                prefix = "abandoned_in." if kind == EventKind.CALL_ABANDONED else "state."
                return self._known(prefix, text)
            case "outcome":
                prefix = "overflow." if kind == EventKind.OVERFLOW_OUTCOME else "cb."
                return self._known(prefix, text)
            case "reason":
                return self._reason(kind, text)
            case "query":
                return self._search(text)
        return text

    def _search(self, query: str) -> str:
        """An exported call log search (its query string) as the search form shows it."""
        shown = []
        for key, value in parse_qsl(query):
            match key:
                case "category":
                    value = self.category(value)
                case "operator":
                    value = self.operator(value)
                case "outcome":
                    value = self.outcome(value)
                case "verdict":
                    value = self.verdict(value)
                case "flag":
                    key = "flags"
                    value = self.flag(value)
            label = self.t("calls." + key) if "calls." + key in MESSAGES else key
            shown.append(f"{label} {value}")
        return ", ".join(shown) or "-"

    def _target(self, target: str) -> str:
        place, _, code = target.partition(":")
        return self.category(code) if place == "category" else (code or target)

    def _reason(self, kind: str, reason: str) -> str:
        if kind == EventKind.CALL_ENDED:
            return self.end_reason(reason)
        if kind == EventKind.OFFER_FAILED:
            return self._known("offer.", reason)
        if kind == EventKind.OPERATOR_STATE:
            prefix = "pause." if "pause." + reason in MESSAGES else "acd."
            return self._known(prefix, reason)
        return self.pause_reason(reason)  # a block's or an audited pause's reason: free text

    def data(self, kind: str, data: Mapping[str, object]) -> list[tuple[str, str]]:
        """An event's data as (key, value) in words, in the order of the keys."""
        return [(self.key(key, kind), self.value(kind, key, data[key])) for key in sorted(data)]
