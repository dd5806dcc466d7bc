"""The rules a console user's account must keep, whoever sets it (`siaga user`, the admin's
users page): an operator has an operator id of siaga.toml, nobody else has one, and a phone for
listen / whisper / barge is one plain dial string. Pure: the callers turn a problem into words."""

from __future__ import annotations

import re
from collections.abc import Collection
from enum import StrEnum

from supervisor.roles import Role

# One channel, as Asterisk dials it: no `&` (several at once) nor options after a `,`.
_PHONE = re.compile(r"^[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,63}$")
MAX_DISPLAY_NAME = 100


class AccountProblem(StrEnum):
    """Why an account's role, operator id or phone is refused (words: `users.problem.<code>`)."""

    OPERATOR_NEEDED = "operator_needed"
    OPERATOR_ONLY = "operator_only"
    OPERATOR_UNKNOWN = "operator_unknown"
    PHONE = "phone"
    # found by the store, not by `account_problem`
    ROLE = "role"  # no such role
    EXISTS = "exists"  # the user name is taken
    LAST_ADMIN = "last_admin"  # the change would leave no enabled admin


def account_problem(
    role: Role,
    operator_id: str | None,
    phone: str | None,
    known_operators: Collection[str] | None,
) -> AccountProblem | None:
    """`known_operators`: the operator ids of siaga.toml (None: not checked)."""
    if role is Role.OPERATOR and not operator_id:
        return AccountProblem.OPERATOR_NEEDED
    if role is not Role.OPERATOR and operator_id:
        return AccountProblem.OPERATOR_ONLY
    if operator_id and known_operators is not None and operator_id not in known_operators:
        return AccountProblem.OPERATOR_UNKNOWN
    if phone and not _PHONE.match(phone):
        return AccountProblem.PHONE
    return None
