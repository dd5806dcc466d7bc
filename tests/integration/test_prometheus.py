"""A real Prometheus scrapes `siaga run`'s /metrics every second, with the shipped alerting
rules: it sees a waiting call, and the alert of a call waiting past its target fires."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from siaga.config import Config
from testbed.cluster import free_port

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "siaga-rules.yml"


class Prometheus:
    """A prometheus process of the test's own: its config, its data folder, a free port on
    loopback."""

    def __init__(self, folder: Path, target: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "prometheus.yml"
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            f"rule_files: ['{RULES}']\n"
            "scrape_configs:\n"
            "  - job_name: siaga\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        self.log = folder / "prometheus.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: install Debian's prometheus (install-system.sh)"
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                stdout=log,
                stderr=log,
            )

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def api(self, http: aiohttp.ClientSession, path: str, **params: str) -> Any:
        assert self.process is not None and self.process.returncode is None, self.log.read_text()
        try:
            async with http.get(f"{self.url}/api/v1/{path}", params=params) as response:
                if response.status == 503:
                    return None  # starting: not ready for queries yet
                body = await response.json()
        except aiohttp.ClientConnectionError:
            return None  # not listening yet
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, http: aiohttp.ClientSession, expr: str) -> dict[str, float]:
        """Each series of the instant query's result, by its labels (name, job and instance
        left out), with its value."""
        data = await self.api(http, "query", query=expr)
        if data is None:
            return {}
        return {
            ",".join(
                f"{k}={v}"
                for k, v in sorted(r["metric"].items())
                if k not in ("__name__", "job", "instance")
            ): float(r["value"][1])
            for r in data["result"]
        }


async def test_prometheus_scrapes_a_waiting_call_and_the_alert_fires(
    siaga_run: Any, stack_config: Config, callers: Any, wait: Any, tmp_path: Path
) -> None:
    run = siaga_run(phones=True)  # the operators' SIP phones are not registered: calls wait
    await run.start()
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{stack_config.web.port}")
    await prometheus.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def scraped() -> bool:
                found = await prometheus.query(http, 'up{job="siaga"}')
                return found.get("") == 1

            await wait(scraped, timeout=30, what="prometheus to scrape /metrics")
            assert await prometheus.query(http, "sum(siaga_calls_waiting)") == {"": 0}
            assert await prometheus.query(http, "siaga_ari_connected") == {"": 1}
            assert await prometheus.query(http, "siaga_database_reachable") == {"": 1}
            assert await prometheus.query(http, "siaga_disk_low") == {
                "folder=journal": 0,
                "folder=recordings": 0,
            }

            await callers.call(digits="1", delay=0.3, hold=60)

            async def waiting() -> dict[str, float]:
                found = await prometheus.query(http, "siaga_calls_waiting > 0")
                return found

            seen = await wait(waiting, timeout=20, what="prometheus to see the waiting call")
            assert list(seen.values()) == [1]
            category = next(iter(seen)).removeprefix("category=")
            assert category in {c.code for c in stack_config.categories}

            async def firing() -> list[dict[str, Any]]:
                data = await prometheus.api(http, "alerts")
                return [
                    a
                    for a in (data or {"alerts": []})["alerts"]
                    if a["labels"]["alertname"] == "SiagaEmergencyCallWaitingPastTarget"
                    and a["state"] == "firing"
                ]

            # Past the 10 s target, then 10 s more (`for:`), evaluated every second.
            alerts = await wait(firing, timeout=40, poll=0.5, what="the waiting-call alert")
            assert alerts[0]["labels"]["category"] == category
            assert alerts[0]["labels"]["severity"] == "critical"
    finally:
        await prometheus.stop()
        assert await run.stop() == 0, run.log.read_text()
