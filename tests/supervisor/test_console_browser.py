"""The console in a real browser (headless Chromium) on the real stack (Asterisk 22, the ARI
app, PostgreSQL): a supervisor watches a real test call appear on the live board within a
second and connect; the operator sees the screen pop, sets a disposition and finds the call in
the call log. The caller's name is a script: it must show as text and never run."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from console_cdp import Tab, chromium, screenshot
from console_stack import running_console
from console_support import PASSWORD

from ari_app.app import SiagaApp
from ari_app.ari.config import AriConfig
from ari_app.ari.rest import AriRest
from siaga.config import Config, load_config
from supervisor import store
from supervisor.live import ActionUnavailableError, AppCentre, ListenMode
from supervisor.roles import Role
from supervisor.security import hash_password
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

    async def add_users(conn: asyncpg.Connection) -> None:
        hashed = hash_password(PASSWORD)
        # The supervisor's "phone" answers by itself (a simulated party in siaga-test).
        await store.add_user(
            conn, "sup", Role.SUPERVISOR, hashed, phone="Local/operator@siaga-test"
        )
        await store.add_user(conn, "sari", Role.OPERATOR, hashed, operator_id="sim1")

    async with (
        running_console(config, dsn, tmp_path / "journal.jsonl", "console", add_users) as run,
        aiohttp.ClientSession() as session,
    ):
        ast = config.asterisk
        ari = AriRest.from_session(
            session,
            AriConfig(
                username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url
            ),
        )
        yield Stack(run.app, config, ari, run.url, dsn, run.asterisk.recordings_dir)


async def sign_in(tab: Tab, url: str, username: str, landing: str) -> None:
    await tab.goto(f"{url}/login")
    await tab.fill("#username", username)
    await tab.fill("#password", PASSWORD)
    await tab.click("#login-submit")
    await tab.wait_for(f"location.pathname === {landing!r} && document.readyState === 'complete'")


async def test_supervisor_watches_a_real_call_and_the_operator_disposes_of_it(stack, tmp_path):
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
        await desk.arrived("location.search === '?msg=saved'")
        await board.wait_for(
            f"document.querySelector({row!r}).cells[3].textContent === 'tersambung'", timeout=10
        )
        assert await board.text(f"{row} td:nth-child(5)") == "Operator Simulasi"
        assert stack.app.calls[call_id].machine.state.value == "connected"

        # The supervisor listens in: the app rings the supervisor's phone for this call.
        await board.click(f"{row} form[action$='/listen'] button")
        await board.arrived("location.search === '?msg=listening'")
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
        await screenshot(desk, tmp_path / "desk-during-a-call.png", whole_page=True)
        await screenshot(board, tmp_path / "board-during-a-call.png", whole_page=True)

        # The disposition, during the call.
        await desk.click("#verdict-emergency")
        await desk.fill("#disp-notes", "Ibu pingsan, napas ada")
        await desk.fill("#disp-location", "Pasar Baru, los 12")
        await desk.click("#disp-save")
        await desk.arrived("location.search === '?msg=disposition_saved'")

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
        await desk.arrived("location.pathname.startsWith('/calls/')")
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


async def viewport(tab: Tab, width: int, height: int, *, mobile: bool = False) -> None:
    await tab.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


async def test_an_overdue_emergency_call_alarms_within_2_s_and_the_wallboard_fits_a_tv(
    stack, tmp_path
):
    """Nobody is logged in: a medical call waits past its 10 s target. The board alarms within
    2 s (colour, text, title), the supervisor acknowledges it (audited); the wallboard shows it
    at 1920x1080 without scrolling, and the board fits a 400 px phone."""
    target = stack.config.category("medical").target_answer_seconds
    async with chromium() as browser:
        board = await browser.new_tab()
        await sign_in(board, stack.url, "sup", "/board")
        await board.wait_for("document.querySelectorAll('#categories tbody tr').length > 0")
        # The record writer knows the database reachable after its first check (<= 5 s).
        await board.wait_for(
            "document.getElementById('alert-list').children.length === 0", timeout=8
        )

        call_id = f"t-{uuid.uuid4().hex[:12]}"
        await stack.ari.originate_to_dialplan(
            "Local/caller@siaga-test",
            channel_id=call_id,
            context="siaga-local",
            extension=stack.config.asterisk.emergency_number,
            caller_id='"Ibu Ani" <081299990001>',
            variables={"SIAGA_DTMF": "1", "SIAGA_DELAY": "1", "SIAGA_HOLD": "60"},
        )
        loop = asyncio.get_running_loop()
        overdue = asyncio.Event()

        def watch() -> None:  # the moment the app's own queue has the call past its target
            waiting = [
                w for c in stack.app.snapshot().categories for w in c.waiting if c.code == "medical"
            ]
            if any(w.call_id == call_id and w.age_seconds > target for w in waiting):
                overdue.set()
            else:
                loop.call_later(0.005, watch)

        watch()
        await asyncio.wait_for(overdue.wait(), target + 15)
        overdue_at = loop.time()
        item = "#alert-list li[data-key='overdue:medical']"
        await board.wait_for(f"document.querySelector({item!r}) !== null", timeout=2.0)
        assert loop.time() - overdue_at < 2.0, "the alarm is on the board within 2 s"
        assert (await board.text(f"{item} .alert-text") or "").startswith(
            "KRITIS: Medis / ambulans: 1 panggilan darurat melewati target 10 d"
        )
        assert await board.js(f"document.querySelector({item!r}).classList.contains('critical')")
        assert await board.js("document.body.classList.contains('alarm')")
        assert await board.js("document.title.startsWith('(2) ')"), "overdue and no operator"
        assert await board.js("Number(document.body.dataset.beeps) >= 1"), "a beep was played"
        medical = "[...document.querySelectorAll('#categories tbody tr')].find(r =>"
        medical += " r.cells[0].textContent === 'Medis / ambulans')"
        assert await board.js(f"{medical}.className") == "wait-over"

        # The wallboard on a 1920x1080 screen: the call, the alarm, nothing to scroll.
        wall = await browser.new_tab()
        await viewport(wall, 1920, 1080)
        await sign_in(wall, stack.url, "sup", "/board")
        await wall.goto(f"{stack.url}/wallboard")
        await wall.wait_for(
            "document.querySelector(\"#wall-categories tr[data-key='medical'] td.count\")"
            ".textContent === '1'"
        )
        await wall.wait_for(f"document.querySelector({item!r}) !== null")
        assert await wall.js("document.querySelector(\"tr[data-key='medical']\").className") == (
            "wait-over"
        )
        assert await wall.js("document.querySelectorAll('form, button, input, nav').length") == 0
        size = await wall.js(
            "[document.scrollingElement.scrollWidth, document.scrollingElement.scrollHeight]"
        )
        await screenshot(wall, tmp_path / "wallboard-1920x1080.png")
        assert size[0] <= 1920 and size[1] <= 1080, f"the wallboard scrolls: {size}"
        assert (
            await wall.js(
                "parseFloat(getComputedStyle(document.querySelector('#wall-categories')).fontSize)"
            )
            >= 36
        ), "large type"

        # The board on a 400 px phone: nothing cut off sideways.
        phone = await browser.new_tab()
        await viewport(phone, 400, 800, mobile=True)
        await sign_in(phone, stack.url, "sup", "/board")
        await phone.wait_for(f"document.querySelector({item!r}) !== null")
        await phone.wait_for("document.querySelector('#live-calls tbody tr') !== null")
        width = await phone.js("document.scrollingElement.scrollWidth")
        await screenshot(phone, tmp_path / "board-400px.png", whole_page=True)
        assert width <= 400, f"the board is {width} px wide on a 400 px phone"

        # The supervisor acknowledges the alarm: shown as such, and in the audit.
        await board.click(f"{item} form button")
        await board.arrived("location.search === '?msg=alert_acknowledged'")
        await board.wait_for(
            f"document.querySelector({item!r} + '.acknowledged') !== null", timeout=3
        )
        assert "diketahui oleh sup" in (await board.text(f"{item} .alert-meta") or "")
        await wall.wait_for(f"document.querySelector({item!r} + '.acknowledged') !== null")
        conn = await asyncpg.connect(stack.dsn)
        audits = await conn.fetch(
            "SELECT username, target FROM console_audit WHERE action = 'alert_ack'"
        )
        await conn.close()
        assert [tuple(a) for a in audits] == [("sup", "overdue:medical")]
        for tab in (board, wall, phone):
            assert tab.errors == [], "no script error, no CSP violation"
