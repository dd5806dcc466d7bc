"""The ARI exception tree, and the one place that maps an HTTP answer to it.

    AriError                    any failed ARI call (method, path, status, message)
    ├── AriBadRequest           400: we sent something Asterisk rejects (a bug on our side)
    ├── AriAuthError            401/403: wrong credentials or a read-only ARI user
    ├── AriNotFound             404: channel/bridge/playback is gone (the caller hung up)
    ├── AriNotInStasis          409: the resource is not in our app, or the id is taken
    ├── AriInvalidState         412: e.g. playing to a channel in the wrong state
    ├── AriUnprocessable        422: a referenced resource is invalid (e.g. not in bridge)
    ├── AriBadResponse          2xx whose body is not what the API promises
    └── AriUnavailable          5xx, connection refused, timeout: Asterisk is not answering
        └── AriAllocationFailed 500 {"error": "Allocation failed"}: originating to an
                                endpoint without a registered contact. The operator is
                                unreachable; Asterisk itself is fine.

404, 409 and 422 are normal during a call (docs/architecture.md): callers catch them by class.
"""

from __future__ import annotations

import json
from typing import Any

ALLOCATION_FAILED = "Allocation failed"


class AriError(Exception):
    """A failed ARI request. `status` is None when no HTTP answer came back at all."""

    def __init__(self, method: str, path: str, status: int | None, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"{method} {path} -> {status if status is not None else '-'}: {message}")


class AriBadRequest(AriError):
    """400."""


class AriAuthError(AriError):
    """401 or 403."""


class AriNotFound(AriError):
    """404."""


class AriNotInStasis(AriError):
    """409: not in a Stasis application, or a conflict such as an id already in use."""


class AriInvalidState(AriError):
    """412: the resource is in a state that does not allow the operation."""


class AriUnprocessable(AriError):
    """422."""


class AriBadResponse(AriError):
    """A successful status with a body we cannot read."""


class AriUnavailable(AriError):
    """5xx, or no answer (connection refused/reset, timeout)."""


class AriAllocationFailed(AriUnavailable):
    """500 "Allocation failed": the dialled endpoint could not be reached."""


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriAuthError,
    403: AriAuthError,
    404: AriNotFound,
    409: AriNotInStasis,
    412: AriInvalidState,
    422: AriUnprocessable,
}


def error_message(body: bytes | str) -> str:
    """The human message of an ARI error body.

    Asterisk answers `{"message": "..."}` for API errors but `{"error": "..."}` for
    allocation failures; anything else (a proxy's HTML page) is shown truncated.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(data, dict):
        for key in ("message", "error"):
            value = data.get(key)
            if isinstance(value, str):
                return value
    return text.strip()[:200]


def error_for_status(method: str, path: str, status: int, body: bytes | str) -> AriError:
    """The exception for a non-2xx ARI answer. The only status→exception mapping."""
    message = error_message(body)
    if status == 500 and message == ALLOCATION_FAILED:
        return AriAllocationFailed(method, path, status, message)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = AriUnavailable if status >= 500 else AriError
    return cls(method, path, status, message)
