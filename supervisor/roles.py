"""Who may do what in the console: the one table every page and action is checked against.

Operators work their own desk and see the calls they answered; supervisors run the shift (live
board, actions on operators and numbers, listening, the whole call log, recordings, reports);
admins manage the system and read the audit, but neither hear recordings nor listen to live
calls: citizens' voices are for the people who run the floor.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Permission(StrEnum):
    PUBLIC = "public"  # no login needed (login page, static files, health)
    SIGNED_IN = "signed_in"  # any role (home, log out)
    DESK = "desk"  # the operator's own page and actions (needs an operator id)
    CALLS_OWN = "calls_own"  # the call log, restricted to one's own calls
    CALLS_ALL = "calls_all"  # the whole call log
    CLASSIFY = "classify"  # set a call's category: an operator their own calls (CALLS_ALL: any)
    EXPORT = "export"  # CSV export of the call log
    RECORDINGS = "recordings"  # play a call's recording (audited)
    BOARD = "board"  # the live board (read)
    BOARD_ACT = "board_act"  # pause / log out operators, block / unblock numbers
    LISTEN = "listen"  # listen / whisper / barge into a live call
    ALERTS_ACK = "alerts_ack"  # acknowledge an alarm (audited)
    REPORTS = "reports"
    AUDIT = "audit"  # the audit log
    USERS = "users"  # add, disable, re-role users, reset passwords, set phones (audited)


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset(
        {Permission.SIGNED_IN, Permission.DESK, Permission.CALLS_OWN, Permission.CLASSIFY}
    ),
    Role.SUPERVISOR: frozenset(
        {
            Permission.SIGNED_IN,
            Permission.CALLS_OWN,
            Permission.CALLS_ALL,
            Permission.CLASSIFY,
            Permission.EXPORT,
            Permission.RECORDINGS,
            Permission.BOARD,
            Permission.BOARD_ACT,
            Permission.LISTEN,
            Permission.ALERTS_ACK,
            Permission.REPORTS,
        }
    ),
    Role.ADMIN: frozenset(
        {
            Permission.SIGNED_IN,
            Permission.CALLS_OWN,
            Permission.CALLS_ALL,
            Permission.EXPORT,
            Permission.BOARD,
            Permission.ALERTS_ACK,
            Permission.REPORTS,
            Permission.AUDIT,
            Permission.USERS,
        }
    ),
}


def allowed(role: Role | None, permission: Permission) -> bool:
    """True if `role` (None: not signed in) may use something that needs `permission`."""
    if permission is Permission.PUBLIC:
        return True
    return role is not None and permission in GRANTS[role]


def home_path(role: Role) -> str:
    """Where a user lands after signing in."""
    return "/operator" if role is Role.OPERATOR else "/board"
