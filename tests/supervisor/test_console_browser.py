"""The console in a real browser (headless Chromium) on the real stack (Asterisk 22, the ARI
app, PostgreSQL): a supervisor watches a real test call appear on the live board within a
second and connect; the operator sees the screen pop, sets a disposition and finds the call in
the call log. The caller's name is a script: it must show as text and never run."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from console_cdp import Tab, chromium
from console_support import PASSWORD

from ari_app.app import SiagaApp
from ari_app.ari.config import AriConfig
from ari_app.ari.rest import AriRest
from db.writer import RecordWriter
from pbx.asterisk import AsteriskInstance
from pbx.provision import ensure_asterisk_root, render_prompts
from siaga.config import Config, load_config
from supervisor import store
from supervisor.console import Console, ConsoleSettings
from supervisor.live import ActionUnavailableError, AppCentre, ListenMode
from supervisor.roles import Role
from supervisor.security import hash_password
from supervisor.web import Health, create_app, start_site
from testbed.cluster import PgCluster, create_database
from testbed.sandbox import sandbox_config, simulated_operator

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
XSS = "<script>alert(1)</script>"


@dataclasses.dataclass
class Stack:
    app: SiagaApp
    config: Config
    ari: AriRest
    url: str
    dsn: str
    recordings: Path


@pytest.fixture
async def stack(pg_cluster: PgCluster, pg_template: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Asterisk, the app with one simulated operator (logged out at start), the console."""
    name = f"console_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(pg_cluster, name, pg_template)

    # A second Asterisk beside the integration tests' own: RTP ports of its own too.
    base = sandbox_config(load_config(EXAMPLE), dsn, rtp_base=50000)
    config = dataclasses.replace(
        base,
        ivr=dataclasses.replace(base.ivr, timeout_seconds=2.0),
        acd=dataclasses.replace(base.acd, login_on_start=False),
        operators=(
            dataclasses.replace(
                simulated_operator("sim1", "Local/operator@siaga-test"), name="Operator Simulasi"
            ),
        ),
    )
    root = await asyncio.to_thread(ensure_asterisk_root)
    prompts = await asyncio.to_thread(render_prompts)
    asterisk = AsteriskInstance(root, f"console-{os.getpid()}-{uuid.uuid4().hex[:4]}", config)
    await asyncio.to_thread(asterisk.prepare, prompts)
    await asyncio.to_thread(asterisk.start)
    writer = RecordWriter(dsn, tmp_path / "journal.jsonl")
    await writer.start()
    app = SiagaApp(config, writer, prompts_dir=asterisk.prompts_dir)
    runner = None
    try:
        await app.start()
        await app.wait_connected(10)
        conn = await asyncpg.connect(dsn)
        hashed = hash_password(PASSWORD)
        # The supervisor's "phone" answers by itself (a simulated party in siaga-test).
        await store.add_user(
            conn, "sup", Role.SUPERVISOR, hashed, phone="Local/operator@siaga-test"
        )
        await store.add_user(conn, "sari", Role.OPERATOR, hashed, operator_id="sim1")
        await conn.close()
        console = Console(
            ConsoleSettings(dsn=dsn, recordings_dir=asterisk.recordings_dir),
            config,
            AppCentre(app),
        )
        site = create_app(lambda: Health(app.connected, writer.db_reachable), console)
        runner = await start_site(site, "127.0.0.1", config.web.port)
        ast = config.asterisk
        async with aiohttp.ClientSession() as session:
            ari = AriRest.from_session(
                session,
                AriConfig(
                    username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url
                ),
            )
            url = f"http://127.0.0.1:{config.web.port}"
            yield Stack(app, config, ari, url, dsn, asterisk.recordings_dir)
    finally:
        if runner is not None:
            await runner.cleanup()
        await asyncio.to_thread(asterisk.cli, "channel request hangup all")
        await app.stop()
        await writer.close()
        await asyncio.to_thread(asterisk.stop)
        shutil.rmtree(asterisk.outside(asterisk.layout.base), ignore_errors=True)


async def sign_in(tab: Tab, url: str, username: str, landing: str) -> None:
    await tab.goto(f"{url}/login")
    await tab.fill("#username", username)
    await tab.fill("#password", PASSWORD)
    await tab.click("#login-submit")
    await tab.wait_for(f"location.pathname === {landing!r} && document.readyState === 'complete'")


async def test_supervisor_watches_a_real_call_and_the_operator_disposes_of_it(stack):
    number = f"0813{uuid.uuid4().int % 10**8:08d}"
    async with chromium() as browser:
        board = await browser.new_tab()
        await sign_in(board, stack.url, "sup", "/board")
        await board.wait_for("document.querySelectorAll('#categories tbody tr').length > 0")
        await board.wait_for("document.querySelector('#operators tbody tr') !== null")

        # A real caller dials 112 and presses 1 (medical).
        call_id = f"t-{uuid.uuid4().hex[:12]}"
        await stack.ari.originate_to_dialplan(
            "Local/caller@siaga-test",
            channel_id=call_id,
            context="siaga-local",
            extension=stack.config.asterisk.emergency_number,
            caller_id=f'"{XSS}" <{number}>',
            variables={"SIAGA_DTMF": "1", "SIAGA_DELAY": "1", "SIAGA_HOLD": "60"},
        )
        loop = asyncio.get_running_loop()
        known = asyncio.Event()

        def watch() -> None:  # the moment the app knows the call, to the loop's tick
            if call_id in stack.app.calls:
                known.set()
            else:
                loop.call_later(0.005, watch)

        watch()
        await asyncio.wait_for(known.wait(), 10)
        known_at = loop.time()
        row = f"#live-calls tr[data-key={call_id!r}]"
        await board.wait_for(f"document.querySelector({row!r}) !== null", timeout=1.0)
        assert loop.time() - known_at < 1.0, "the call is on the board within a second"
        assert await board.text(f"{row} td:nth-child(1)") == number
        assert await board.text(f"{row} td:nth-child(2)") == XSS, "the name is shown as text"

        # After the menu it waits in the medical queue, its age ticking.
        await board.wait_for(
            f"document.querySelector({row!r} + '').cells[3].textContent === 'menunggu'",
            timeout=8,
        )
        await board.wait_for(
            "[...document.querySelectorAll('#categories tbody tr')].some(r =>"
            " r.cells[0].textContent === 'Medis / ambulans' && r.cells[1].textContent === '1')"
        )
        # The headline shows it as the oldest waiting call.
        await board.wait_for(
            "document.getElementById('oldest-category').textContent === 'Medis / ambulans'"
            " && /^[0-9]+:[0-9]{2}$/.test(document.getElementById('oldest-age').textContent)",
            timeout=3,
        )
        assert (await board.text("#service-goal") or "").startswith("Tingkat layanan hari ini 15 d")

        # The operator signs in to the desk and makes herself ready: the call is hers.
        desk = await browser.new_tab()
        await sign_in(desk, stack.url, "sari", "/operator")
        await desk.wait_for("document.getElementById('op-state').textContent === 'keluar'")
        await desk.click("#btn-ready")
        await desk.wait_for("location.search === '?msg=saved'")
        await board.wait_for(
            f"document.querySelector({row!r}).cells[3].textContent === 'tersambung'", timeout=10
        )
        assert await board.text(f"{row} td:nth-child(5)") == "Operator Simulasi"
        assert stack.app.calls[call_id].machine.state.value == "connected"

        # The supervisor listens in: the app rings the supervisor's phone for this call.
        await board.click(f"{row} form[action$='/listen'] button")
        await board.wait_for("location.search === '?msg=listening'")
        side = f"{call_id}-sup1"

        async def listening() -> bool:
            return side in {c.id for c in await stack.ari.list_channels()}

        for _ in range(100):
            if await listening():
                break
            await asyncio.sleep(0.05)
        assert await listening(), "the supervisor's phone was rung into the call"

        # The screen pop.
        await desk.wait_for("!document.getElementById('pop').hidden", timeout=3)
        assert await desk.text("#pop-number") == number
        assert await desk.text("#pop-name") == XSS
        assert await desk.text("#pop-category") == "Medis / ambulans"
        assert await desk.text("#op-state") == "dalam panggilan"
        assert await desk.js("document.querySelectorAll('#pop script').length") == 0

        # The disposition, during the call.
        await desk.click("#verdict-emergency")
        await desk.fill("#disp-notes", "Ibu pingsan, napas ada")
        await desk.fill("#disp-location", "Pasar Baru, los 12")
        await desk.click("#disp-save")
        await desk.wait_for("location.search === '?msg=disposition_saved'")

        # ... and the call in the operator's call log, with its verdict (the journal commits
        # within a few tens of milliseconds: the log is reloaded until it shows).
        log_row = f"#call-log tr[data-call-id={call_id!r}]"
        for _ in range(50):
            await desk.goto(f"{stack.url}/calls")
            if await desk.text(f"{log_row} td.verdict") == "darurat":
                break
            await asyncio.sleep(0.1)
        assert await desk.text(f"{log_row} td.verdict") == "darurat"
        await desk.click(f"{log_row} a")
        await desk.wait_for("location.pathname.startsWith('/calls/')")
        await desk.wait_for("document.readyState === 'complete'")
        assert await desk.text("#call-name") == XSS
        assert await desk.text("#dispositions td.notes") == "Ibu pingsan, napas ada"

        # The caller hangs up; the supervisor plays the call's recording in the browser.
        await stack.ari.hangup(call_id)
        recording = stack.recordings / f"{call_id}.wav"
        for _ in range(100):
            if call_id not in stack.app.calls and recording.exists():
                break
            await asyncio.sleep(0.05)
        await board.goto(f"{stack.url}/calls/{call_id}")
        await board.wait_for("document.getElementById('recording') !== null")
        await board.js("document.getElementById('recording').load()")
        await board.wait_for("document.getElementById('recording').readyState >= 1", timeout=5)
        assert await board.js("document.getElementById('recording').duration") > 0
        conn = await asyncpg.connect(stack.dsn)
        audits = await conn.fetch(
            "SELECT username, target FROM console_audit WHERE action = 'recording_play'"
        )
        await conn.close()
        assert audits and all(tuple(a) == ("sup", call_id) for a in audits)
        # ... which the operator may not.
        status = await desk.js(f"fetch('/calls/{call_id}/recording').then(r => r.status)")
        assert status == 403

        for tab in (board, desk):
            assert tab.dialogs == [], "no injected script ran"
            errors = [e for e in tab.errors if "403" not in e]  # the operator's refused fetch
            assert errors == [], "no script error, no CSP violation"

    # Actions on a call that is gone are refused, not crashes.
    centre = AppCentre(stack.app)
    with pytest.raises(ActionUnavailableError):
        await centre.listen("sup", "PJSIP/2001", "gone", ListenMode.LISTEN)
    with pytest.raises(ActionUnavailableError):
        await centre.add_agency("gone", "police", "sim1")
    with pytest.raises(ActionUnavailableError):  # no callback trunk in this siaga.toml
        await centre.call_back("sim1", number, call_id)
