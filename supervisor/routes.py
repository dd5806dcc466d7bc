"""Every page and action of the console with the permission it needs (supervisor/roles.py).
The guard refuses any route of the app that is not listed here with its permission."""

from __future__ import annotations

from supervisor.http import PASSWORD_PATH, Route
from supervisor.roles import Permission as P
from supervisor.views import auth, board, calls, desk, reports, users

ROUTES: list[Route] = [
    Route("GET", "/static/{name}", auth.static, P.PUBLIC, needs_session=False),
    Route("GET", "/login", auth.login_page, P.PUBLIC),
    Route("POST", "/login", auth.login, P.PUBLIC),
    Route("POST", "/lang", auth.set_language, P.PUBLIC),
    Route("POST", "/logout", auth.logout, P.SIGNED_IN),
    Route("GET", "/", auth.home, P.SIGNED_IN),
    # the operator's desk
    Route("GET", "/operator", desk.page, P.DESK),
    Route("GET", "/operator/events", desk.events_stream, P.DESK),
    Route("POST", "/operator/state", desk.set_state, P.DESK),
    Route("POST", "/operator/disposition", desk.dispose, P.DESK),
    Route("POST", "/operator/agency", desk.agency, P.DESK),
    Route("POST", "/operator/callbacks/{call_id}/claim", desk.callback_claim, P.DESK),
    Route("POST", "/operator/callbacks/{call_id}/done", desk.callback_done, P.DESK),
    # the live board
    Route("GET", "/board", board.page, P.BOARD),
    Route("GET", "/board/events", board.events_stream, P.BOARD),
    Route("POST", "/board/operators/{operator_id}/{action}", board.operator_action, P.BOARD_ACT),
    Route("POST", "/board/calls/{call_id}/listen", board.listen, P.LISTEN),
    Route("POST", "/board/blocks", board.block, P.BOARD_ACT),
    Route("POST", "/board/blocks/{flag_id}/clear", board.unblock, P.BOARD_ACT),
    Route("POST", "/board/alerts/ack", board.acknowledge_alert, P.ALERTS_ACK),
    Route("GET", "/wallboard", board.wallboard, P.BOARD),
    # the call log
    Route("GET", "/calls", calls.log, P.CALLS_OWN),
    Route("GET", "/calls.csv", calls.export, P.EXPORT),
    Route("GET", "/calls/{call_id}", calls.detail, P.CALLS_OWN),
    Route("GET", "/calls/{call_id}/recording", calls.recording, P.RECORDINGS),
    Route("POST", "/calls/{call_id}/category", desk.classify, P.CLASSIFY),
    # reports and audit
    Route("GET", "/reports", reports.page, P.REPORTS),
    Route("GET", "/audit", reports.audit_page, P.AUDIT),
    # user management (admins) and one's own password
    Route("GET", "/admin/users", users.page, P.USERS),
    Route("POST", "/admin/users", users.add, P.USERS),
    Route("POST", "/admin/users/{username}/update", users.update, P.USERS),
    Route("POST", "/admin/users/{username}/password", users.reset_password, P.USERS),
    Route("POST", "/admin/users/{username}/disable", users.disable, P.USERS),
    Route("POST", "/admin/users/{username}/enable", users.enable, P.USERS),
    Route("GET", PASSWORD_PATH, auth.password_page, P.SIGNED_IN),
    Route("POST", PASSWORD_PATH, auth.change_password, P.SIGNED_IN),
    # reports: exports and the shift summary
    Route("GET", "/reports.csv", reports.export_csv, P.EXPORT),
    Route("GET", "/reports.xlsx", reports.export_xlsx, P.EXPORT),
    Route("GET", "/reports/shift", reports.shift_page, P.REPORTS),
]
