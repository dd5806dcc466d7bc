"""The disk guard: when the recordings' or the journal's file system counts as low, and what
/healthz then says."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from siaga.config import DiskConfig
from supervisor.disk import MIB, DiskGuard, LowDisk, free_floor, low_disk
from supervisor.web import Health, create_app

GIB = 1024 * MIB
DEFAULTS = DiskConfig()  # below 5 % or 1 GiB, whichever is more


@pytest.mark.parametrize(
    ("free", "total", "low"),
    [
        (600 * MIB, 10 * GIB, True),  # above 5 % (512 MiB) but under 1 GiB
        (1 * GIB, 10 * GIB, False),  # exactly the floor is not low
        (40 * GIB, 1000 * GIB, True),  # above 1 GiB but under 5 % (50 GiB)
        (60 * GIB, 1000 * GIB, False),
        (0, 64 * 1024, True),  # a tiny, full file system
    ],
)
def test_low_below_the_larger_of_the_two_limits(free: int, total: int, low: bool) -> None:
    assert (low_disk("recordings", Path("/r"), free, total, DEFAULTS) is not None) is low


def test_a_limit_of_zero_is_off() -> None:
    only_share = DiskConfig(min_free_percent=5, min_free_mib=0)
    only_size = DiskConfig(min_free_percent=0, min_free_mib=100)

    assert free_floor(10 * GIB, only_share) == 512 * MIB
    assert free_floor(10 * GIB, only_size) == 100 * MIB
    assert low_disk("journal", Path("/j"), 1, 10, DiskConfig(0, 0)) is None


def test_the_reason_names_the_free_space() -> None:
    low = low_disk("recordings", Path("/r"), 3 * MIB, 64 * MIB, DiskConfig(5, 10))

    assert low is not None
    assert (low.folder, low.path, low.free_bytes) == ("recordings", "/r", 3 * MIB)
    assert low.reason == "3.0 MiB free of 64.0 MiB, below 10.0 MiB"


async def test_the_guard_looks_at_each_folder_and_logs_a_change_once(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    # More free space than any file system in use has: every folder is low.
    greedy = DiskConfig(min_free_percent=99.999, min_free_mib=0)
    guard = DiskGuard({"recordings": full, "journal": tmp_path / "missing"}, greedy)

    with capture_logs() as logs:
        first = await guard.check()
        again = await guard.check()

    assert {low.folder for low in first} == {"recordings", "journal"}
    assert guard.low == again
    missing = next(low for low in first if low.folder == "journal")
    assert missing.free_bytes == 0 and "cannot be looked at" in missing.reason
    assert [entry["folder"] for entry in logs if entry["event"] == "disk.low"] == [
        "recordings",
        "journal",
    ]

    guard.config = DiskConfig(min_free_percent=0, min_free_mib=0)
    guard.folders = {"recordings": full, "journal": tmp_path}
    with capture_logs() as logs:
        assert await guard.check() == ()

    assert sorted(e["folder"] for e in logs if e["event"] == "disk.recovered") == [
        "journal",
        "recordings",
    ]


@pytest.mark.parametrize(
    ("health", "status", "code"),
    [
        (Health(True, True), "ok", 200),
        (Health(True, True, journal_ok=False), "degraded", 200),
        (Health(True, True, low_disks=(LowDisk("recordings", "/r", 0, "full"),)), "degraded", 200),
        (
            Health(False, True, low_disks=(LowDisk("recordings", "/r", 0, "full"),)),
            "unavailable",
            503,
        ),
        (Health(True, False, journal_ok=False), "unavailable", 503),
        (Health(True, True, nodes=(("node_a", True), ("node_b", False))), "degraded", 200),
    ],
)
async def test_healthz_says_degraded_but_takes_calls(
    health: Health, status: str, code: int
) -> None:
    async with (
        TestServer(create_app(lambda: health)) as server,
        ClientSession() as http,
        http.get(server.make_url("/healthz")) as response,
    ):
        body = await response.json()
        assert (response.status, body["status"]) == (code, status)
    assert body["journal"] == ("ok" if health.journal_ok else "failing")
    assert body["disk"] == [
        {"folder": low.folder, "path": low.path, "free_bytes": low.free_bytes, "reason": low.reason}
        for low in health.low_disks
    ]
    expected_nodes = {name: "connected" if up else "disconnected" for name, up in health.nodes}
    assert body.get("nodes", {}) == expected_nodes
