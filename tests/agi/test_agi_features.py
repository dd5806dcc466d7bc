"""Feature codes, pure: parsing, the operator behind the dialling channel, and what each outcome
asks of the app (a recording fake of the app's operator API stands in for it here; the real app
is driven in test_agi_features_stack.py)."""

from __future__ import annotations

import pytest

from agi import features
from agi.features import Action, Feature, Outcome


class FakeControl:
    def __init__(self, refuse: Exception | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.refuse = refuse

    def _do(self, *call: str) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.calls.append(call)

    def operator_login(self, operator_id: str) -> None:
        self._do("login", operator_id)

    def operator_logout(self, operator_id: str) -> None:
        self._do("logout", operator_id)

    def operator_pause(self, operator_id: str, reason: str) -> None:
        self._do("pause", operator_id, reason)

    def operator_ready(self, operator_id: str) -> None:
        self._do("ready", operator_id)


@pytest.mark.parametrize(
    ("code", "feature"),
    [
        ("11", Feature(Action.LOGIN)),
        ("*12", Feature(Action.LOGOUT)),
        ("13", Feature(Action.PAUSE, "pause")),
        ("131", Feature(Action.PAUSE, "break")),
        ("132", Feature(Action.PAUSE, "meal")),
        ("14", Feature(Action.READY)),
        ("10", None),
        ("133", Feature(Action.PAUSE, "prayer")),
        ("138", Feature(Action.PAUSE, "briefing")),
        ("130", None),  # no reason 0
        ("1411", None),
        ("", None),
    ],
)
def test_parse(code, feature):
    assert features.parse(code) == feature


def test_pause_digits_follow_the_centres_own_reasons():
    reasons = {"1": "radio_check", "5": "prayer"}
    assert features.parse("131", reasons) == Feature(Action.PAUSE, "radio_check")
    assert features.parse("135", reasons) == Feature(Action.PAUSE, "prayer")
    assert features.parse("132", reasons) is None


def test_endpoint_of_pjsip_channel_and_local_channel():
    assert features.endpoint_of("PJSIP/1001-0000002a", "whatever") == "1001"
    assert features.endpoint_of("PJSIP/op-7-0000002a", "") == "op-7"
    assert features.endpoint_of("Local/caller@siaga-test-00000003;1", "sim1") == "sim1"


def test_apply_calls_the_operator_api():
    control = FakeControl()
    for code in ("12", "11", "133", "14"):
        assert features.apply(control, "1001", features.parse(code)) is Outcome.DONE
    assert control.calls == [
        ("logout", "1001"),
        ("login", "1001"),
        ("pause", "1001", "prayer"),
        ("ready", "1001"),
    ]


def test_apply_refusals_are_outcomes_not_crashes():
    assert features.apply(FakeControl(), "1001", None) is Outcome.UNKNOWN_CODE
    assert features.apply(FakeControl(), None, features.parse("11")) is Outcome.NOT_AN_OPERATOR
    assert features.apply(None, "1001", features.parse("11")) is Outcome.APP_DOWN
    refusing = FakeControl(refuse=ValueError("operator 1001 cannot pause: logged out"))
    assert features.apply(refusing, "1001", features.parse("13")) is Outcome.REFUSED
    unknown = FakeControl(refuse=KeyError("1009"))
    assert features.apply(unknown, "1009", features.parse("11")) is Outcome.REFUSED


def test_prompts_confirm_each_action_and_fall_back_to_core_sounds():
    login = features.parse("11")
    assert features.prompts(login, Outcome.DONE) == ("op_logged_in", "agent-loginok")
    assert features.prompts(login, Outcome.REFUSED) == ("op_refused", "beeperr")
    assert features.prompts(None, Outcome.UNKNOWN_CODE) == ("op_refused", "beeperr")
