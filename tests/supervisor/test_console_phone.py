"""The desk's browser phone on the real stack (Asterisk 22, the ARI app, PostgreSQL): an
operator with `webrtc = true` signs in, the page registers, a SIPp 112 caller is offered to it
and answered in the page; the caller's tone reaches the page (getStats) and the page's fake
microphone tone reaches the call (both in the call's recording)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from console_cdp import chromium, screenshot
from console_stack import running_console
from console_support import PASSWORD

from ari_app.app import SiagaApp
from ari_app.call import CallState
from pbx.asterisk import AsteriskInstance
from siaga.config import Config, load_config
from supervisor import store
from supervisor.roles import Role
from supervisor.security import hash_password
from supervisor.views.phone import library_file
from testbed.cluster import PgCluster, create_database
from testbed.sandbox import SIMULATED_SKILLS, sandbox_config
from testbed.sipp import Sipp, caller_scenario
from testbed.tones import tone_pcap, tone_shares, tone_wav

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
BROWSER_HZ = 600  # the operator's fake microphone
CALLER_HZ = 1400  # the SIPp caller
MUTED_SECONDS = 2.5


@dataclasses.dataclass
class Stack:
    app: SiagaApp
    config: Config
    asterisk: AsteriskInstance
    url: str


@pytest.fixture
async def stack(pg_cluster: PgCluster, pg_template: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Asterisk, the app with operator 1001 on the browser phone, the console."""
    name = f"phone_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(pg_cluster, name, pg_template)
    base = sandbox_config(load_config(EXAMPLE), dsn, rtp_base=20000)
    operator = dataclasses.replace(
        base.operators[0], webrtc=True, skills=dict.fromkeys(SIMULATED_SKILLS, 1)
    )
    config = dataclasses.replace(
        base, ivr=dataclasses.replace(base.ivr, timeout_seconds=2.0), operators=(operator,)
    )

    async def add_users(conn: asyncpg.Connection) -> None:
        await store.add_user(
            conn, "op1", Role.OPERATOR, hash_password(PASSWORD), operator_id=operator.id
        )

    async with running_console(config, dsn, tmp_path / "journal.jsonl", "phone", add_users) as run:
        yield Stack(run.app, config, run.asterisk, run.url)


async def until(predicate, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := predicate()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


async def test_a_112_call_is_answered_in_the_browser_with_audio_both_ways(stack, tmp_path):
    assert library_file().is_file(), "make setup bundles JsSIP (supervisor/phone)"
    microphone = tone_wav(BROWSER_HZ, 60, tmp_path / "microphone.wav", pulse=0.5)
    switches = (
        "--disable-quic",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        # Asterisk's media address here is 127.0.0.1, which Chromium leaves out of ICE unless
        # told (a centre's Asterisk is on its LAN address).
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    )
    operator = stack.config.operators[0]
    async with chromium(*switches) as browser:
        desk = await browser.new_tab()
        await desk.send("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False,
        })  # fmt: skip
        await desk.goto(f"{stack.url}/login")
        await desk.fill("#username", "op1")
        await desk.fill("#password", PASSWORD)
        await desk.click("#login-submit")
        await desk.arrived("location.pathname === '/operator'")
        await desk.wait_for(
            "document.getElementById('phone-panel')?.dataset.state === 'registered'", timeout=10
        )
        # The ACD sees the browser's registration like a desk phone's.
        await until(
            lambda: stack.app.acd_core.snapshot().operators[0].registered,
            "the browser phone's registration to reach the ACD",
        )
        await desk.wait_for("document.getElementById('op-state').textContent !== '-'")
        if await desk.text("#op-state") != "siap":
            await desk.click("#btn-ready")
            await desk.arrived("location.search === '?msg=saved'")
            await desk.wait_for(
                "document.getElementById('phone-panel').dataset.state === 'registered'"
            )

        caller_number = f"0813{uuid.uuid4().int % 10**8:08d}"
        caller = Sipp(
            caller_scenario(
                caller_id=caller_number,
                digits="1",
                delay_ms=800,
                hold_ms=40000,
                play_voice=True,
                voice=tone_pcap(CALLER_HZ, 30),
            ),
            stack.config.asterisk.sip_port,
        )
        await caller.start()
        try:
            await desk.wait_for(
                "document.getElementById('phone-panel').dataset.state === 'ringing'", timeout=20
            )
            assert caller_number in (await desk.text("#phone-peer") or "")
            await screenshot(desk, tmp_path / "desk-browser-phone-ringing.png")
            await desk.click("#phone-answer")
            await desk.wait_for(
                "document.getElementById('phone-panel').dataset.state === 'in_call'", timeout=10
            )
            actor = await until(
                lambda: next(
                    (c for c in stack.app.calls.values() if c.machine.state is CallState.CONNECTED),
                    None,
                ),
                "the app to see the call connected to 1001",
            )
            assert actor.machine.operator_id == operator.id
            # The page hears the caller: bytes and a level on the incoming audio (getStats).
            await desk.wait_for(
                "Number(document.getElementById('phone-audio-in').dataset.level) > 0", timeout=10
            )
            incoming = await desk.js("({...document.getElementById('phone-audio-in').dataset})")
            assert int(incoming["bytes"]) > 0
            # Asterisk offers the caller's own codec first: G.711 A-law end to end, no transcoding.
            assert incoming["codec"] == "audio/PCMA"
            await desk.wait_for("!document.getElementById('pop').hidden", timeout=5)
            await screenshot(desk, tmp_path / "desk-browser-phone-in-call.png")
            await asyncio.sleep(3)  # talk: both tones go into the recording
            await desk.click("#phone-mute")
            assert await desk.js("document.getElementById('phone-mute').ariaPressed") == "true"
            await asyncio.sleep(MUTED_SECONDS)
            await desk.click("#phone-mute")
            assert await desk.js("document.getElementById('phone-mute').ariaPressed") == "false"
            await asyncio.sleep(1.5)
            await desk.click("#phone-hangup")
            await desk.wait_for(
                "document.getElementById('phone-panel').dataset.state === 'registered'", timeout=10
            )
            await caller.wait(timeout=20)  # the BYE reached the caller: it ended cleanly
        finally:
            await caller.stop()
        assert desk.errors == [], "no script error, no CSP violation"

    wav = stack.asterisk.recordings_dir / f"{actor.call_id}.wav"

    def closed() -> bool:  # MixMonitor fills in the RIFF size when it closes the file
        head = wav.read_bytes()[:8] if wav.exists() else b""
        return len(head) == 8 and int.from_bytes(head[4:], "little") > 36

    await until(closed, f"the recording {wav.name} to be closed")
    shares = await asyncio.to_thread(tone_shares, wav, (BROWSER_HZ, CALLER_HZ))
    rounded = [(round(a, 2), round(b, 2)) for a, b in shares]
    browser = [a for a, _ in rounded if a > 0.5]
    caller = [b for _, b in rounded if b > 0.5]
    both = [(a, b) for a, b in rounded if a > 0.1 and b > 0.1]
    # 0.1 s windows: each voice for at least a second, and half a second of both at once.
    assert len(browser) >= 10, f"the page's tone in the recording: {rounded}"
    assert len(caller) >= 10, f"the caller's tone in the recording: {rounded}"
    assert len(both) >= 5, f"both voices at once in the recording: {rounded}"
    # Muted: from the page's first tone on, one stretch without it, well over the tone's own
    # 0.5 s pauses, while the caller goes on; and the page's tone back after it.
    answered = next(i for i, (a, _) in enumerate(rounded) if a > 0.5)
    runs, start = [], None
    for i, (a, b) in enumerate(rounded[answered:], answered):
        if a < 0.05 and b > 0.5:
            start = i if start is None else start
        elif start is not None:
            runs.append((start, i))
            start = None
    longest = max(runs, key=lambda run: run[1] - run[0])
    assert longest[1] - longest[0] >= (MUTED_SECONDS - 1) * 10, f"muted: {rounded}"
    assert any(a > 0.5 for a, _ in rounded[longest[1] :]), f"unmuted: {rounded}"
