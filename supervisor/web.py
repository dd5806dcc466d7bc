"""The web server of the stack: `/healthz`, which monitoring and `make run` users poll,
`/metrics` for Prometheus when a `CentreCollector` is given, and the operator and supervisor
console when a `Console` is given. `/healthz` and `/metrics` need no login.

`/healthz` answers 200 only while ARI is connected and the database reachable: a centre whose
app cannot see Asterisk, or cannot record calls, must show up red on the wall board, not green.
A centre that still takes every call but has lost a safety net (a file system for recordings or
the journal running low, the record journal failing) answers 200 with status `degraded` and
says which: it needs a technician, not the fallback. It never touches the console's database
pool or sessions.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable

from aiohttp import hdrs, web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from supervisor.console import Console
from supervisor.health import Health as Health  # where stack/run.py and tests look
from supervisor.http import HTTPS_KEY, install
from supervisor.metrics import CentreCollector
from supervisor.routes import ROUTES

HEALTH_KEY: web.AppKey[Callable[[], Health]] = web.AppKey("health")
METRICS_KEY: web.AppKey[CentreCollector] = web.AppKey("metrics")


async def healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH_KEY]()
    body = {
        "status": health.status,
        **({"role": health.role} if health.role is not None else {}),
        "ari": "connected" if health.ari_connected else "disconnected",
        "database": "reachable" if health.database_reachable else "unreachable",
        "journal": "ok" if health.journal_ok else "failing",
        **(
            {"nodes": {name: "connected" if up else "disconnected" for name, up in health.nodes}}
            if health.nodes
            else {}
        ),
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


# A year: a browser that has once reached the console over HTTPS never tries plain HTTP for it
# again, so a stranger on the centre's network cannot downgrade it to read a session cookie.
HSTS = "max-age=31536000"


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS_KEY].scrape()
    # The text format every Prometheus reads (Debian's predates version 1.0.0); the series'
    # names need no escaping, so the body is the same in both.
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_PLAIN_0_0_4})


async def _no_server_header(_: web.Request, response: web.StreamResponse) -> None:
    # aiohttp names itself and its version in every response: of use to an attacker only.
    response.headers.popall(hdrs.SERVER, None)


async def _hsts(_: web.Request, response: web.StreamResponse) -> None:
    response.headers["Strict-Transport-Security"] = HSTS


def create_app(
    health: Callable[[], Health],
    console: Console | None = None,
    metrics_collector: CentreCollector | None = None,
    *,
    https: bool = False,
) -> web.Application:
    """The health endpoint, `/metrics` when a collector is given, and the console's pages when
    `console` is given. The console is
    started with the app (pool, user checks: raises `InsecureConsoleError` outside development
    mode while a user has the development password) and closed with it.

    `https`: browsers reach it over HTTPS (served here, or by a proxy in front of it): every
    response carries HSTS and every cookie is `Secure`."""
    app = web.Application()
    app.on_response_prepare.append(_no_server_header)
    app[HTTPS_KEY] = https
    if https:
        app.on_response_prepare.append(_hsts)
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", healthz)
    if metrics_collector is not None:
        app[METRICS_KEY] = metrics_collector
        app.router.add_get("/metrics", metrics)
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


async def start_site(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Serve `app` on host:port: HTTPS only when `ssl_context` is given (siaga/tls.py)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    return runner
