"""The web server of the stack: `/healthz`, which monitoring and `make run` users poll, and the
operator and supervisor console when a `Console` is given.

`/healthz` answers 200 only while ARI is connected and the database reachable: a centre whose
app cannot see Asterisk, or cannot record calls, must show up red on the wall board, not green.
A centre that still takes every call but has lost a safety net (a file system for recordings or
the journal running low, the record journal failing) answers 200 with status `degraded` and
says which: it needs a technician, not the fallback. It never touches the console's database
pool or sessions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import hdrs, web

from supervisor.console import Console
from supervisor.health import Health as Health  # where stack/run.py and tests look
from supervisor.http import install
from supervisor.routes import ROUTES

HEALTH_KEY: web.AppKey[Callable[[], Health]] = web.AppKey("health")


async def healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH_KEY]()
    body = {
        "status": health.status,
        "ari": "connected" if health.ari_connected else "disconnected",
        "database": "reachable" if health.database_reachable else "unreachable",
        "journal": "ok" if health.journal_ok else "failing",
        "disk": [
            {
                "folder": low.folder,
                "path": low.path,
                "free_bytes": low.free_bytes,
                "reason": low.reason,
            }
            for low in health.low_disks
        ],
    }
    return web.json_response(body, status=200 if health.ok else 503)


async def _no_server_header(_: web.Request, response: web.StreamResponse) -> None:
    # aiohttp names itself and its version in every response: of use to an attacker only.
    response.headers.popall(hdrs.SERVER, None)


def create_app(health: Callable[[], Health], console: Console | None = None) -> web.Application:
    """The health endpoint, and the console's pages when `console` is given. The console is
    started with the app (pool, user checks: raises `InsecureConsoleError` outside development
    mode while a user has the development password) and closed with it."""
    app = web.Application()
    app.on_response_prepare.append(_no_server_header)
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", healthz)
    if console is not None:
        console.health = health  # its alarms follow what /healthz says
        install(app, console, ROUTES)

        async def lifetime(_: web.Application) -> AsyncIterator[None]:
            await console.start()
            yield
            await console.close()

        app.cleanup_ctx.append(lifetime)

        async def closing(_: web.Application) -> None:
            console.closing.set()  # live streams end now instead of holding the shutdown

        app.on_shutdown.append(closing)
    return app


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
