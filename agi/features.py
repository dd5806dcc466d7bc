"""Operator feature codes dialled from the softphone, pure: parse the code, act through the
app's operator API (the one the console uses), and say which prompt confirms it.

    *11    log in                *13    pause (reason "pause")
    *12    log out               *13N   pause with reason N ([acd.pause_reasons])
    *14    ready: unpause, or end wrap-up early

The operator is the PJSIP endpoint that dials (its `sip_user`), never a number typed in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from siaga.config import PAUSE_REASONS, Config

log = structlog.get_logger(__name__)


class OperatorControl(Protocol):
    """What feature codes need of the app (ari_app.app.SiagaApp has exactly these)."""

    def operator_login(self, operator_id: str) -> None: ...

    def operator_logout(self, operator_id: str) -> None: ...

    def operator_pause(self, operator_id: str, reason: str) -> None: ...

    def operator_ready(self, operator_id: str) -> None: ...


class Action(enum.StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    READY = "ready"


class Outcome(enum.StrEnum):
    DONE = "done"
    UNKNOWN_CODE = "unknown_code"
    NOT_AN_OPERATOR = "not_an_operator"
    REFUSED = "refused"  # the ACD refused it (e.g. pause while logged out)
    APP_DOWN = "app_down"  # no app to act on (the AGI server runs without one)


@dataclass(frozen=True, slots=True)
class Feature:
    action: Action
    reason: str | None = None


# Our prompts (dialplan/prompts/prompts.toml), then an Asterisk core sound if ours are missing.
_DONE_PROMPTS: Mapping[Action, tuple[str, str]] = {
    Action.LOGIN: ("op_logged_in", "agent-loginok"),
    Action.LOGOUT: ("op_logged_out", "agent-loggedoff"),
    Action.PAUSE: ("op_paused", "beep"),
    Action.READY: ("op_ready", "beep"),
}
_FAILED_PROMPTS = ("op_refused", "beeperr")


def parse(code: str, pause_reasons: Mapping[str, str] = PAUSE_REASONS) -> Feature | None:
    """`code` is what follows the star: "11", "132"...; `pause_reasons` maps N of *13N."""
    code = code.strip().lstrip("*")
    match code:
        case "11":
            return Feature(Action.LOGIN)
        case "12":
            return Feature(Action.LOGOUT)
        case "13":
            return Feature(Action.PAUSE, "pause")
        case "14":
            return Feature(Action.READY)
    if len(code) == 3 and code.startswith("13") and code[2] in pause_reasons:
        return Feature(Action.PAUSE, pause_reasons[code[2]])
    return None


def operators_by_sip_user(config: Config) -> dict[str, str]:
    return {op.sip_user: op.id for op in config.operators}


def endpoint_of(channel: str, caller_number: str) -> str:
    """The dialling endpoint: `PJSIP/1001-0000002a` -> `1001`. Other channels (Local channels
    of tests and simulations, which only the system itself can originate into the operators'
    context) are known by their caller number."""
    if channel.startswith("PJSIP/"):
        name = channel[len("PJSIP/") :]
        return name.rsplit("-", 1)[0] if "-" in name else name
    return caller_number


def apply(
    control: OperatorControl | None, operator_id: str | None, feature: Feature | None
) -> Outcome:
    if feature is None:
        return Outcome.UNKNOWN_CODE
    if operator_id is None:
        return Outcome.NOT_AN_OPERATOR
    if control is None:
        return Outcome.APP_DOWN
    try:
        match feature.action:
            case Action.LOGIN:
                control.operator_login(operator_id)
            case Action.LOGOUT:
                control.operator_logout(operator_id)
            case Action.PAUSE:
                control.operator_pause(operator_id, feature.reason or "pause")
            case Action.READY:
                control.operator_ready(operator_id)
    except (KeyError, ValueError) as exc:
        # UnknownOperatorError is a KeyError; the ACD's refusals (AcdError) are ValueErrors.
        log.info("feature.refused", operator=operator_id, action=feature.action, error=str(exc))
        return Outcome.REFUSED
    return Outcome.DONE


def prompts(feature: Feature | None, outcome: Outcome) -> tuple[str, str]:
    """(our prompt, Asterisk core sound to play instead when ours is missing)."""
    if outcome is Outcome.DONE and feature is not None:
        return _DONE_PROMPTS[feature.action]
    return _FAILED_PROMPTS
