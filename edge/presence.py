"""Which operators' phones are registered at the Kamailio edge (pure).

Behind the edge the phones REGISTER at Kamailio, not at an Asterisk, so an operator's presence
is read from Kamailio's registrar: the answer of its JSON-RPC `ul.dump` (edge/registrations.py
asks for it; docs/ha.md). An operator is registered while its SIP user has at least one contact
that has not expired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from siaga.config import Config

# The usrloc table the edge saves registrations in (save("location") in kamailio.cfg).
LOCATION = "location"
# What ul.dump says instead of the seconds left: a contact that no longer reaches a phone
# ("expired": its time ran out, waiting for usrloc's timer to drop it; "deleted": removed).
_GONE = frozenset({"expired", "deleted"})
# What ul.dump says of a contact saved without expiry: it stays until removed.
_PERMANENT = "permanent"


class DumpError(ValueError):
    """The answer is not a ul.dump result (a JSON-RPC error, or another shape)."""


@dataclass(frozen=True, slots=True)
class Contact:
    address: str
    live: bool  # reaches a phone now: seconds left, or permanent


@dataclass(frozen=True, slots=True)
class Registration:
    """One address of record (the SIP user, e.g. "1001") and its contacts."""

    aor: str
    contacts: tuple[Contact, ...]

    @property
    def live(self) -> bool:
        return any(contact.live for contact in self.contacts)


def edge_phones(config: Config) -> dict[str, str]:
    """SIP user -> operator id, for the operators whose phone registers at the edge: those rung
    at PJSIP/<sip_user>. The others (a `dial` of their own, e.g. simulated operators) are taken
    as always registered by the app."""
    return {op.sip_user: op.id for op in config.operators if op.dial_string.startswith("PJSIP/")}


def parse_dump(answer: Mapping[str, Any]) -> tuple[Registration, ...]:
    """The registrations of a JSON-RPC `ul.dump` answer (the whole parsed JSON, with
    "result"), from the usrloc table the edge saves into."""
    if "error" in answer:
        raise DumpError(f"ul.dump answered an error: {answer['error']}")
    try:
        domains = answer["result"]["Domains"]
        registrations = []
        for entry in domains:
            domain = entry["Domain"]
            if domain["Domain"] != LOCATION:
                continue
            for record in domain["AoRs"]:
                info = record["Info"]
                contacts = tuple(_contact(item["Contact"]) for item in info["Contacts"])
                registrations.append(Registration(str(info["AoR"]), contacts))
    except (KeyError, TypeError) as exc:
        raise DumpError(f"not a ul.dump answer (missing {exc})") from None
    return tuple(registrations)


def _contact(contact: Mapping[str, Any]) -> Contact:
    expires = contact["Expires"]
    if isinstance(expires, int) and not isinstance(expires, bool):
        live = expires >= 0  # the seconds left
    elif expires == _PERMANENT:
        live = True
    elif expires in _GONE:
        live = False
    else:
        raise DumpError(f"contact {contact.get('Address')!r}: unknown Expires {expires!r}")
    return Contact(str(contact["Address"]), live)


def registered(registrations: Iterable[Registration], phones: Mapping[str, str]) -> frozenset[str]:
    """The ids of the operators (`phones`: SIP user -> operator id) with a live registration;
    registrations of other users are not operators and are left out."""
    return frozenset(phones[r.aor] for r in registrations if r.live and r.aor in phones)


def changes(before: frozenset[str], after: frozenset[str]) -> list[tuple[str, bool]]:
    """(operator id, registered) for every operator whose registration changed, by id."""
    return sorted([(op, True) for op in after - before] + [(op, False) for op in before - after])


def everything(operators: Iterable[str], after: frozenset[str]) -> list[tuple[str, bool]]:
    """(operator id, registered) for every operator: the first report, when nothing is known."""
    return sorted((op, op in after) for op in set(operators))
