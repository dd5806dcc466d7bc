"""Call controls on the operator's desk over the console's in-memory centre: hang up, hold,
conference a ready operator or a supervisor's phone, leave the call to them once they answer,
the live status of every hand-off pushed on the desk's stream, and the keyboard shortcuts
(Chromium)."""

from __future__ import annotations

from dataclasses import replace

from console_cdp import Tab, chromium, screenshot
from console_support import PASSWORD, first_event

from ari_app.call.states import HandOff, HandOffStatus, SideKind
from queues.states import OperatorState

# The page is loaded and its script has drawn the call (a navigation is over).
DESK_READY = (
    "document.readyState === 'complete' && !document.getElementById('call-controls').hidden"
)
RINGING, ANSWERED, FAILED = HandOffStatus.RINGING, HandOffStatus.ANSWERED, HandOffStatus.FAILED


def on_call(centre, call_id="c-1", operator_id="1001"):
    centre.operator_login(operator_id)
    centre.arrive(call_id, "081300000021")
    centre.connect(call_id, operator_id)
    return call_id


async def test_the_operator_hangs_up_their_own_call_only(sign_in, centre):
    call_id = on_call(centre)
    op2 = await sign_in("op2")
    async with await op2.post("/operator/hangup", {"call_id": call_id}) as response:
        assert response.headers["Location"] == "/operator?msg=not_your_call"
    assert centre.actions == []
    op1 = await sign_in("op1")
    async with await op1.post("/operator/hangup", {"call_id": call_id}) as response:
        assert response.headers["Location"] == "/operator?msg=hung_up"
    assert centre.actions == [("hang_up", call_id, "1001")]


async def test_the_operator_conferences_a_ready_operator_or_a_supervisors_phone(sign_in, centre):
    call_id = on_call(centre)
    op1 = await sign_in("op1")
    async with op1.session.get("/operator/events") as stream:
        data = await first_event(stream, lambda d: d["call"] is not None, 3)
        assert data["colleagues"] == []  # 1002 is not ready
        centre.operator_login("1002")
        data = await first_event(stream, lambda d: d["colleagues"], 3)
    assert [c["id"] for c in data["colleagues"]] == ["1002"]
    _, page = await op1.text("/operator")
    assert '<option value="supervisor:sup">sup</option>' in page
    assert "supervisor:sup_nophone" not in page  # no phone to ring

    for colleague in ("operator:1001", "operator:9999", "supervisor:sup_nophone", "1002"):
        async with await op1.post(
            "/operator/conference", {"call_id": call_id, "colleague": colleague}
        ) as response:
            assert response.headers["Location"] == "/operator?msg=invalid", colleague
    for colleague in ("operator:1002", "supervisor:sup"):
        async with await op1.post(
            "/operator/conference", {"call_id": call_id, "colleague": colleague}
        ) as response:
            assert response.headers["Location"] == "/operator?msg=colleague_called"
    assert centre.actions == [
        ("conference", call_id, "1001", "1002", None),
        ("conference", call_id, "1001", "sup", "PJSIP/2001"),
    ]


async def test_the_desk_shows_each_hand_off_live_and_leaves_only_to_an_answered_colleague(
    sign_in, centre
):
    call_id = on_call(centre)
    op1 = await sign_in("op1")
    async with await op1.post("/operator/leave", {"call_id": call_id}) as response:
        assert response.headers["Location"] == "/operator?msg=not_available"
    centre.hand_offs(
        call_id,
        HandOff(SideKind.AGENCY, "police", ANSWERED),
        HandOff(SideKind.AGENCY, "fire", FAILED),
        HandOff(SideKind.COLLEAGUE, "1002", RINGING),
    )
    async with op1.session.get("/operator/events") as stream:
        data = await first_event(stream, lambda d: d["call"] and d["call"]["hand_offs"], 3)
    assert [(h["name"], h["status"], h["text"]) for h in data["call"]["hand_offs"]] == [
        ("Polisi 110", "answered", "terhubung"),
        ("Pemadam Kebakaran 113", "failed", "gagal"),
        ("Operator Dua", "ringing", "berdering"),
    ]
    async with await op1.post("/operator/leave", {"call_id": call_id}) as response:
        assert response.headers["Location"] == "/operator?msg=not_available"  # still ringing
    centre.hand_offs(call_id, HandOff(SideKind.COLLEAGUE, "1002", ANSWERED))
    async with await op1.post("/operator/leave", {"call_id": call_id}) as response:
        assert response.headers["Location"] == "/operator?msg=left_call"
    assert centre.actions == [("leave", call_id, "1001")]


async def test_the_operator_puts_the_caller_on_hold_and_takes_them_back(sign_in, centre):
    call_id = on_call(centre)
    op1 = await sign_in("op1")
    async with op1.session.get("/operator/events") as stream:
        assert (await first_event(stream, lambda d: d["call"], 3))["call"]["held"] is False
        async with await op1.post(
            "/operator/hold", {"call_id": call_id, "action": "hold"}
        ) as response:
            assert response.headers["Location"] == "/operator?msg=on_hold"
        await first_event(stream, lambda d: d["call"] and d["call"]["held"], 3)
    async with await op1.post("/operator/hold", {"call_id": call_id, "action": "x"}) as r:
        assert r.headers["Location"] == "/operator?msg=invalid"
    async with await op1.post("/operator/hold", {"call_id": call_id, "action": "resume"}) as r:
        assert r.headers["Location"] == "/operator?msg=resumed"
    assert centre.actions == [("hold", call_id, "1001", True), ("hold", call_id, "1001", False)]


async def press(tab: Tab, key: str, code: str, *, shift: bool = False) -> None:
    """A real key press, as the keyboard sends it."""
    for kind in ("keyDown", "keyUp"):
        params = {"type": kind, "key": key, "code": code, "modifiers": 8 if shift else 0}
        if kind == "keyDown" and (len(key) == 1 or key == "Enter"):
            params["text"] = "\r" if key == "Enter" else key
        await tab.send("Input.dispatchKeyEvent", params)


async def test_keyboard_shortcuts_act_on_the_desk_but_never_while_typing(
    served, sign_in, centre, tmp_path
):
    call_id = on_call(centre)
    async with chromium() as browser:
        tab = await browser.new_tab()
        await tab.goto(f"{served.url}/login")
        await tab.fill("#username", "op1")
        await tab.fill("#password", PASSWORD)
        await tab.click("#login-submit")
        await tab.wait_for("location.pathname === '/operator'")
        await tab.wait_for(DESK_READY)
        assert "Pintasan keyboard" in (await tab.text("#shortcuts") or "")

        # Typing notes: digits and letters are text, not shortcuts.
        await tab.js("document.getElementById('disp-notes').focus()")
        for key, code in (("3", "Digit3"), ("h", "KeyH"), ("s", "KeyS")):
            await press(tab, key, code)
        assert await tab.js("document.getElementById('disp-notes').value") == "3hs"
        assert await tab.js("document.querySelector('input[name=verdict]:checked')") is None

        # Off the text field: 2 chooses the second verdict; H only moves to hang up.
        await tab.js("document.activeElement.blur()")
        await press(tab, "2", "Digit2")
        assert await tab.js("document.querySelector('input[name=verdict]:checked').value") == (
            "non_emergency"
        )
        await press(tab, "h", "KeyH")
        assert await tab.js("document.activeElement.id") == "btn-hangup"
        assert centre.actions == []
        await press(tab, "Enter", "Enter")
        await tab.wait_for("location.search === '?msg=hung_up'")
        assert centre.actions == [("hang_up", call_id, "1001")]

        # Shift+1: the agency of digit 1 (police).
        await tab.wait_for(DESK_READY)
        await press(tab, "!", "Digit1", shift=True)
        await tab.wait_for("location.search === '?msg=agency_added'")
        assert centre.actions[-1] == ("add_agency", call_id, "police", "1001")

        # P pauses (with the reason chosen), R makes the operator ready again.
        await tab.wait_for(DESK_READY)
        await press(tab, "p", "KeyP")
        await tab.wait_for("location.search === '?msg=saved'")
        assert centre.acd.operator_state("1001") is OperatorState.PAUSED
        await tab.wait_for(DESK_READY)
        await press(tab, "r", "KeyR")
        await tab.wait_for(
            "location.search === '?msg=saved' && document.getElementById('op-state')"
            ".textContent === 'siap'"
        )
        assert centre.acd.operator_state("1001") is OperatorState.AVAILABLE
        # T puts the caller on hold, and T again takes them back (controls2).
        assert "Tahan / lanjutkan" in (await tab.text("#shortcuts") or "")
        await press(tab, "t", "KeyT")
        await tab.wait_for("location.search === '?msg=on_hold'")
        await tab.wait_for(DESK_READY + " && !document.getElementById('btn-resume').hidden")
        await press(tab, "t", "KeyT")
        await tab.wait_for("location.search === '?msg=resumed'")
        assert centre.actions[-2:] == [
            ("hold", call_id, "1001", True),
            ("hold", call_id, "1001", False),
        ]
        await tab.wait_for(DESK_READY)
        # The hand-offs as the app reports them, drawn as text on the desk.
        centre.hand_offs(
            call_id,
            HandOff(SideKind.AGENCY, "police", ANSWERED),
            HandOff(SideKind.COLLEAGUE, "1002", RINGING),
        )
        await tab.wait_for("document.querySelectorAll('#hand-offs li').length === 2")
        assert await tab.text("#hand-offs") == "Polisi 110: terhubungOperator Dua: berdering"
        await tab.js("document.getElementById('pop').scrollIntoView()")
        await tab.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1400, "deviceScaleFactor": 1, "mobile": False},
        )
        await screenshot(tab, tmp_path / "desk-controls.png")

        # The same desk as a colleague conferenced in beside the call's operator (controls2):
        # who is on it, leave only; hang up, hold and conference are the operator's.
        call, t0 = centre.calls[call_id]
        centre.calls[call_id] = (replace(call, operator_id="1002", joined=("1001",)), t0)
        await tab.wait_for("!document.getElementById('with-operator').hidden")
        assert "Operator Dua" in (await tab.text("#with-operator") or "")
        for form in ("btn-hangup", "btn-hold", "conference-form"):
            hidden = f"document.getElementById('{form}').closest('form').hidden"
            assert await tab.js(hidden) is True, form
        assert await tab.js("document.getElementById('btn-leave').disabled") is False
        assert await tab.text("#btn-leave") == "Keluar dari panggilan"
        assert tab.errors == [], "no script error, no CSP violation"
