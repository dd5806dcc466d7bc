"""SiagaApp halts when another app takes its Stasis app over ([ha], docs/ha.md): nothing more
is acted on, the calls stay up in Asterisk for the new active app to adopt."""

from __future__ import annotations

import asyncio

from shell_support import centre, settle, stasis_start

from ari_app.ari.events import ApplicationReplaced


async def test_application_replaced_halts_an_app_with_a_lease() -> None:
    c = centre(operators=[])
    replaced: list[bool] = []
    c.app._on_replaced = lambda: replaced.append(True)
    await c.app._on_event(stasis_start("waiting"))
    await settle()
    actor = c.app.calls["waiting"]
    assert actor.task is not None and not actor.task.done()
    sent = list(c.rest.requests)

    await c.app._on_event(ApplicationReplaced())
    await c.app._on_event(stasis_start("newcomer"))
    await asyncio.sleep(0.05)

    assert replaced == [True]
    assert c.app.halted
    assert actor.task.cancelled()
    assert "newcomer" not in c.app.calls
    assert c.rest.requests == sent  # not a request since: the call is the other app's now
    assert "waiting" not in c.rest.sent("hangup")


async def test_application_replaced_on_the_single_box_is_only_logged() -> None:
    c = centre(operators=[])
    await c.app._on_event(ApplicationReplaced())
    await c.app._on_event(stasis_start("caller"))
    await settle()
    assert not c.app.halted
    assert "caller" in c.app.calls
    c.app.calls["caller"].task.cancel()  # type: ignore[union-attr]
