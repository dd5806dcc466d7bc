"""Typed settings of the ARI client: where Asterisk is, who we are, how patient we are."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from yarl import URL


@dataclass(frozen=True, slots=True, kw_only=True)
class AriConfig:
    """Connection settings for one Stasis application on one Asterisk.

    `url` is the root of Asterisk's HTTP server (the ARI lives under `/ari`). It must not
    carry credentials: they travel only in the Authorization header, so that they never
    end up in access logs, proxies or exception messages.
    """

    username: str
    password: str = field(repr=False)
    app: str = "siaga"
    url: str = "http://127.0.0.1:8088"
    # Seconds. REST calls sit on the call path of a live emergency call: fail fast.
    request_timeout: float = 5.0
    connect_timeout: float = 5.0
    # aiohttp pings every `heartbeat` seconds and drops the socket if no pong comes back
    # within half of it, which is how a silently dead Asterisk is noticed.
    heartbeat: float = 10.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0

    def __post_init__(self) -> None:
        parsed = URL(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"ARI url must be http(s)://host[:port], got {self.url!r}")
        if parsed.user is not None or parsed.password is not None:
            raise ValueError("ARI url must not contain credentials; set username/password")
        if not self.app:
            raise ValueError("ARI app name must not be empty")
        if self.request_timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("ARI timeouts must be positive")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")

    @property
    def rest_url(self) -> str:
        """Base of every REST path, e.g. http://127.0.0.1:8088/ari."""
        return self.url.rstrip("/") + "/ari"

    @property
    def events_url(self) -> str:
        """The event websocket, e.g. ws://127.0.0.1:8088/ari/events."""
        base = URL(self.rest_url)
        scheme = "wss" if base.scheme == "https" else "ws"
        return str(base.with_scheme(scheme)) + "/events"

    def authorization(self) -> str:
        """Value of the HTTP Basic Authorization header."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"
