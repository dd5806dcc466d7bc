"""The web server of the stack. For now: `/healthz`, which monitoring and `make run` users poll.

It answers 200 only while ARI is connected and the database reachable: a centre whose app cannot
see Asterisk, or cannot record calls, must show up red on the wall board, not green.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Health:
    ari_connected: bool
    database_reachable: bool

    @property
    def ok(self) -> bool:
        return self.ari_connected and self.database_reachable


HEALTH_KEY: web.AppKey[Callable[[], Health]] = web.AppKey("health")


async def healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH_KEY]()
    body = {
        "status": "ok" if health.ok else "unavailable",
        "ari": "connected" if health.ari_connected else "disconnected",
        "database": "reachable" if health.database_reachable else "unreachable",
    }
    return web.json_response(body, status=200 if health.ok else 503)


def create_app(health: Callable[[], Health]) -> web.Application:
    app = web.Application()
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", healthz)
    return app


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
