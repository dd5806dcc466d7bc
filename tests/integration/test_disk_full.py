"""A full disk does not stop 112, on the real stack: with the recordings' file system full
(a tiny tmpfs mounted over the instance's recordings folder), calls are still answered and
connected, their records say the recording failed, and /healthz says degraded."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from ari_app.app import SiagaApp
from db.events import RECORDING_FAILED
from stack.recordings import WAV_BYTES_PER_SECOND, RecordingCheck
from stack.run import health_of
from supervisor.disk import DiskGuard
from supervisor.web import create_app
from testbed.sandbox import simulated_operator

pytestmark = pytest.mark.integration

TMPFS_BYTES = 32 * 1024  # two seconds of recording


async def _run(*command: str) -> int:
    process = await asyncio.create_subprocess_exec(*command)
    return await process.wait()


@contextlib.asynccontextmanager
async def tiny_file_system(asterisk, folder: Path) -> AsyncIterator[None]:
    """A tmpfs of TMPFS_BYTES over `folder`, unmounted after (whatever happened)."""
    assert (
        await _run("mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(folder)) == 0
    )
    try:
        yield
    finally:
        # MixMonitor keeps a call's file open until the call's channel is gone.
        await asyncio.to_thread(asterisk.cli, "channel request hangup all")
        for _ in range(50):
            if await _run("umount", str(folder)) == 0:
                break
            await asyncio.sleep(0.1)
        else:
            assert await _run("umount", "--lazy", str(folder)) == 0


async def test_a_full_recordings_disk_does_not_stop_112(
    asterisk, stack_config, journal, callers, records, wait
):
    recordings = asterisk.recordings_dir
    # The operator answers and "speaks" (a tone) for 8 s, then hangs up.
    config = dataclasses.replace(
        stack_config, operators=(simulated_operator("tone", "Local/beep-8@siaga-test"),)
    )
    check = RecordingCheck(journal, recordings, after_seconds=1.0)
    guard = DiskGuard({"recordings": recordings}, config.disk)
    app = SiagaApp(config, check, prompts_dir=asterisk.prompts_dir)

    async def answered_and_ended(call_id: str) -> None:
        async def ended():
            return await records.events(call_id, "call_ended")

        await wait(ended, timeout=40, what=f"{call_id} to end")
        row = await records.call(call_id)
        assert row["outcome"] == "answered" and row["operator_id"] == "tone"
        assert [e["operator_id"] for e in await records.events(call_id, "call_connected")]

    async def recording_failed(call_id: str) -> bool:
        row = await records.call(call_id)
        return RECORDING_FAILED in (row["flags"] or [])

    with capture_logs() as logs:
        await app.start()
        try:
            await app.wait_connected(10)
            # On a disk with room, a whole recording is no failure.
            whole = await callers.call(digits="1", delay=0.3, hold=60)
            await answered_and_ended(whole)
            assert (recordings / f"{whole}.wav").stat().st_size > 5 * WAV_BYTES_PER_SECOND
            await asyncio.sleep(2.5)  # the check has looked by now
            assert not await recording_failed(whole)
            assert await guard.check() == ()

            async with tiny_file_system(asterisk, recordings):
                # The disk fills two seconds into the call: the recording is cut there.
                cut = await callers.call(digits="1", delay=0.3, hold=60)
                await answered_and_ended(cut)
                # The next call finds it full: not even the WAV header is written.
                empty = await callers.call(digits="1", delay=0.3, hold=60)
                await answered_and_ended(empty)
                assert (recordings / f"{empty}.wav").stat().st_size == 0
                for call_id in (cut, empty):
                    await wait(lambda c=call_id: recording_failed(c), what=f"{call_id} flagged")

                low = await guard.check()
                assert [(d.folder, d.path) for d in low] == [("recordings", str(recordings))]
                assert low[0].free_bytes < 4096
                health = health_of(app, journal, guard)
                async with (
                    TestServer(create_app(lambda: health)) as server,
                    ClientSession() as http,
                    http.get(server.make_url("/healthz")) as response,
                ):
                    body = await response.json()
                assert response.status == 200 and body["status"] == "degraded"
                assert body["disk"][0]["folder"] == "recordings"
                assert app.connected
        finally:
            await app.stop()
            await check.close()

    warnings = [e for e in logs if e["event"] == "recording.failed"]
    assert sorted(e["call_id"] for e in warnings) == sorted([cut, empty])
    failures = [e for e in logs if e["log_level"] in ("error", "critical", "exception")]
    assert failures == [], "nothing in the app failed"
