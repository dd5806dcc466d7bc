"""The app acting on the ACD's overflow decisions (ari_app/app.py), over a fake REST interface
and the real ACD core: to a partner centre (rung, bridged, or the caller back in line) and to
another category; what the journal gets."""

from __future__ import annotations

import dataclasses

from shell_support import (
    CONFIG,
    Centre,
    FakeRest,
    ListJournal,
    destroyed,
    digit,
    stasis_start,
)

from ari_app.app import SiagaApp, acd_config
from ari_app.call.states import CallState
from db.events import EventKind
from queues.acd import Acd
from queues.config import OverflowCondition, OverflowRule, OverflowTarget
from queues.events import OperatorRegistration
from queues.states import CallPlace, OperatorState

PARTNER = "PJSIP/112@partner"


def centre_with(*rules: OverflowRule) -> Centre:
    """The app with these overflow rules and no operator logged in."""
    config = dataclasses.replace(CONFIG, overflow=rules)
    journal = ListJournal()
    app = SiagaApp(config, journal, prompts_dir=None)
    rest = FakeRest()
    app._rests = {"": rest}  # type: ignore[dict-item]
    app._acd_core = Acd(acd_config(config), app.clock())
    return Centre(app, rest, journal)


def to_partner() -> OverflowRule:
    target = OverflowTarget.parse(f"number:{PARTNER}")
    return OverflowRule("medical", OverflowCondition.NO_OPERATOR, target)


async def test_the_config_s_rules_reach_the_acd() -> None:
    config = dataclasses.replace(CONFIG, overflow=(to_partner(),))
    assert acd_config(config).overflow == (to_partner(),)


async def test_nobody_logged_in_rings_the_partner_who_joins_the_caller() -> None:
    c = centre_with(to_partner())
    await c.send(stasis_start("c1"), digit("c1", "1"))
    assert "c1-par1" in c.rest.sent("originate")
    assert c.app.acd_core.call_place("c1") is None  # out of our queue while the partner rings
    (flag,) = c.journal.of("c1", EventKind.FLAG_SET)
    assert dict(flag.data) == {
        "flag": "overflow",
        "target": f"number:{PARTNER}",
        "rule": "no_operator",
        "from_category": "medical",
    }

    await c.send(stasis_start("c1-par1", "partner", "c1"))
    assert "c1-par1" in c.rest.sent("add_channel")  # into the call's bridge
    assert c.app.calls["c1"].machine.state is CallState.CONNECTED
    (outcome,) = c.journal.of("c1", EventKind.OVERFLOW_OUTCOME)
    assert dict(outcome.data) == {"partner": PARTNER, "outcome": "answered", "rule": "no_operator"}


async def test_a_partner_that_fails_puts_the_caller_back_for_the_next_operator() -> None:
    c = centre_with(to_partner())
    await c.send(stasis_start("c1"), digit("c1", "1"))
    await c.send(destroyed("c1-par1", cause=17))  # busy
    (outcome,) = c.journal.of("c1", EventKind.OVERFLOW_OUTCOME)
    assert (outcome.data["outcome"], outcome.data["cause"]) == ("failed", "17")
    assert c.app.acd_core.call_place("c1") is CallPlace.WAITING
    assert c.rest.sent("originate") == ["c1-par1"]  # the partner is not rung again

    c.app.operator_login("1001")
    c.app.to_acd(OperatorRegistration("1001", True))
    await c.send()
    assert c.app.acd_core.operator_state("1001") is OperatorState.OFFERED
    assert "c1-op1" in c.rest.sent("originate")
    assert "c1" not in c.rest.sent("hangup")  # never hung up on


async def test_overflow_to_another_category_is_offered_there() -> None:
    target = OverflowTarget.parse("category:general")
    c = centre_with(OverflowRule("fire", OverflowCondition.NO_OPERATOR, target))
    await c.send(stasis_start("c1"), digit("c1", "2"))  # 2: fire, nobody logged in
    actor = c.app.calls["c1"]
    assert c.app.acd_core.call_category("c1") == "general"
    assert c.app.acd_core.call_place("c1") is CallPlace.WAITING
    assert actor.machine.category == "general"
    assert "overflow" in actor.machine.flags
    (flag,) = c.journal.of("c1", EventKind.FLAG_SET)
    assert (flag.data["target"], flag.data["from_category"]) == ("category:general", "fire")
