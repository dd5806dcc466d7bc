"""How an ARI request reaches Asterisk. Swappable, so that tests of the app can fake it.

A transport sends one request and returns the raw status and body. It knows nothing of
ARI semantics; the only thing it maps is "no answer at all" (connection refused/reset,
timeout), which becomes `AriUnavailable`. HTTP statuses are mapped in `errors.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from ari_app.ari.config import AriConfig
from ari_app.ari.errors import AriUnavailable


def ari_path(*segments: str) -> str:
    """'/channels/<id>/play' with every segment percent-encoded.

    Asterisk splits the path on '/' before decoding each segment, so an endpoint name
    such as 'PJSIP/1001' must travel as 'PJSIP%2F1001' (and ids must never add a level).
    """
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


@dataclass(frozen=True, slots=True)
class AriRequest:
    method: str
    path: str  # already encoded, from ari_path()
    params: Mapping[str, str] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class AriResponse:
    status: int
    body: bytes


class Transport(Protocol):
    async def send(self, request: AriRequest) -> AriResponse:
        """Send the request; raise AriUnavailable if no HTTP answer comes back."""
        ...


class AiohttpTransport:
    """Sends ARI requests over a caller-owned aiohttp session (never closed here)."""

    def __init__(self, session: aiohttp.ClientSession, config: AriConfig) -> None:
        self._session = session
        self._base = config.rest_url
        # Credentials only in the header; the URL we build never carries them.
        self._headers = {"Authorization": config.authorization(), "Accept": "application/json"}

    async def send(self, request: AriRequest) -> AriResponse:
        url = URL(self._base + request.path, encoded=True)
        try:
            async with self._session.request(
                request.method,
                url,
                params=dict(request.params) or None,
                json=request.json,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=request.timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return AriResponse(status=response.status, body=body)
        except TimeoutError as exc:
            raise AriUnavailable(
                request.method, request.path, None, f"timed out after {request.timeout}s"
            ) from exc
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise AriUnavailable(
                request.method, request.path, None, f"{type(exc).__name__}: {exc}"
            ) from exc
