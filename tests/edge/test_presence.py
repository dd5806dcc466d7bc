"""Which operators are registered, from Kamailio's ul.dump answer (edge/presence.py).

The fixtures are real answers of Kamailio 5.6.3, captured by tests/integration/
test_ha_presence.py's scenario (which checks they still have the shape Kamailio answers):
1001 registered, its registration expired (still listed until usrloc's timer drops it), and
no registration at all."""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

import pytest
from edge_support import EXAMPLE, PHONES, answer

from edge import presence
from siaga.config import parse_config


def contacts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The first AoR's contacts, as listed in the answer."""
    listed: list[dict[str, Any]] = data["result"]["Domains"][0]["Domain"]["AoRs"][0]["Info"][
        "Contacts"
    ]
    return listed


def first_contact(data: dict[str, Any]) -> dict[str, Any]:
    contact: dict[str, Any] = contacts(data)[0]["Contact"]
    return contact


def test_a_registered_phone_is_its_operator_registered():
    registrations = presence.parse_dump(answer("registered"))
    assert [r.aor for r in registrations] == ["1001"]
    (contact,) = registrations[0].contacts
    assert contact.address.startswith("sip:1001@")
    assert contact.live and registrations[0].live
    assert presence.registered(registrations, PHONES) == {"1001"}


def test_an_expired_registration_still_listed_is_not_registered():
    registrations = presence.parse_dump(answer("expired"))
    assert [r.aor for r in registrations] == ["1001"]  # usrloc has not dropped it yet
    assert not registrations[0].live
    assert presence.registered(registrations, PHONES) == frozenset()


def test_no_registration_at_all():
    assert presence.parse_dump(answer("empty")) == ()
    assert presence.registered((), PHONES) == frozenset()


def test_the_operator_is_found_by_its_sip_user_not_its_id():
    registrations = presence.parse_dump(answer("registered"))
    assert presence.registered(registrations, {"1001": "op-7"}) == {"op-7"}
    # A registered user that is no operator's phone is nobody's presence.
    assert presence.registered(registrations, {"1002": "1002"}) == frozenset()


@pytest.mark.parametrize(
    ("expires", "live"),
    [(299, True), (0, True), ("permanent", True), ("expired", False), ("deleted", False)],
)
def test_each_expiry_kamailio_reports(expires, live):
    data = answer("registered")
    first_contact(data)["Expires"] = expires
    assert presence.parse_dump(data)[0].live is live


def test_one_live_contact_among_expired_ones_is_enough():
    data = answer("expired")
    contacts(data).extend(contacts(answer("registered")))
    (registration,) = presence.parse_dump(data)
    assert [c.live for c in registration.contacts] == [False, True]
    assert presence.registered([registration], PHONES) == {"1001"}


def test_only_the_table_the_edge_saves_into_counts():
    data = answer("registered")
    data["result"]["Domains"][0]["Domain"]["Domain"] = "elsewhere"
    assert presence.parse_dump(data) == ()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(result=None, error={"code": 500, "message": "boom"}),
        lambda d: d.pop("result"),
        lambda d: d["result"].update(Domains=[{"Domain": {"Domain": "location"}}]),
        lambda d: first_contact(d).update(Expires="soon"),
        lambda d: first_contact(d).update(Expires=True),
    ],
)
def test_anything_else_is_refused_not_read_as_nobody_registered(change):
    data = answer("registered")
    change(data)
    with pytest.raises(presence.DumpError):
        presence.parse_dump(data)


def test_changes_name_each_operator_that_came_or_went():
    assert presence.changes(frozenset({"1001", "1003"}), frozenset({"1002", "1003"})) == [
        ("1001", False),
        ("1002", True),
    ]
    assert presence.changes(frozenset({"1001"}), frozenset({"1001"})) == []


def test_the_first_report_names_every_operator():
    assert presence.everything(["1002", "1001", "1003"], frozenset({"1001"})) == [
        ("1001", True),
        ("1002", False),
        ("1003", False),
    ]


def test_the_phones_at_the_edge_are_the_operators_rung_at_their_sip_user():
    data = tomllib.loads(EXAMPLE.read_text())
    data["operators"][0]["sip_user"] = "desk-1"
    data["operators"][1]["dial"] = "Local/1002@siaga-simulated"
    config = parse_config(data, EXAMPLE)
    first = config.operators[0]
    assert presence.edge_phones(config) == {"desk-1": first.id}
    explicit = dataclasses.replace(first, dial="PJSIP/desk-1")
    config = dataclasses.replace(config, operators=(explicit,))
    assert presence.edge_phones(config) == {"desk-1": first.id}
