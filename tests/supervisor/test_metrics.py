"""/metrics: the centre as Prometheus scrapes it, read from the live sources at scrape time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from aiohttp.test_utils import TestServer
from conftest import ConsoleUnderTest
from console_support import PureCentre, settled
from prometheus_client.parser import text_string_to_metric_families

from ari_app.metrics import Metrics
from db import events
from db.writer import RecordWriter
from siaga.config import Config, DiskConfig
from supervisor.disk import DiskGuard
from supervisor.metrics import CentreCollector
from supervisor.web import Health, create_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MeasuredCentre(PureCentre):
    """The console tests' centre over the real ACD core, with what the app adds for /metrics."""

    def __init__(self, config: Config, journal: object) -> None:
        super().__init__(config, journal)
        self.connected = True
        self.metrics = Metrics()


async def scrape(collector: CentreCollector) -> Samples:
    text = (await collector.scrape()).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_waiting_calls_the_longest_wait_and_operators_by_state(
    console_config: Config, writer: RecordWriter
) -> None:
    centre = MeasuredCentre(console_config, writer)
    collector = CentreCollector(console_config, centre)
    centre.operator_login("1001")
    centre.operator_pause("1001", "break")  # nobody takes the calls: they wait
    centre.arrive("c-1", "081300000001", category="medical")
    await asyncio.sleep(0.3)
    centre.arrive("c-2", "081300000002", category="medical")
    centre.arrive("c-3", "081300000003", category="fire")

    samples = await scrape(collector)

    assert value(samples, "siaga_calls_waiting", category="medical") == 2
    assert value(samples, "siaga_calls_waiting", category="fire") == 1
    assert value(samples, "siaga_calls_waiting", category="police") == 0
    assert 0.3 <= value(samples, "siaga_oldest_wait_seconds", category="medical") < 5  # type: ignore[operator]
    assert value(samples, "siaga_oldest_wait_seconds", category="police") == 0
    assert value(samples, "siaga_answer_target_seconds", category="medical") == 10
    assert value(samples, "siaga_answer_target_seconds", category="information") == 60
    # 1002 never logged in: logged out, as on the board.
    assert value(samples, "siaga_operators", state="paused") == 1
    assert value(samples, "siaga_operators", state="logged_out") == 1
    assert value(samples, "siaga_operators", state="available") == 0
    assert value(samples, "siaga_ari_connected") == 1

    centre.operator_ready("1001")  # takes the medical call first (priority, then arrival)
    centre.connected = False
    samples = await scrape(collector)
    assert value(samples, "siaga_calls_waiting", category="medical") == 1
    assert value(samples, "siaga_operators", state="offered") == 1
    assert value(samples, "siaga_operators", state="paused") == 0
    assert value(samples, "siaga_offers_total") is not None  # the app's own counters are in
    assert value(samples, "siaga_ari_connected") == 0


async def test_todays_service_level_against_the_goal_and_each_target(
    served: ConsoleUnderTest, centre: PureCentre, writer: RecordWriter
) -> None:
    measured = MeasuredCentre(served.console.config, writer)
    collector = CentreCollector(served.console.config, measured, today=served.console.today)
    samples = await scrape(collector)
    assert value(samples, "siaga_service_goal_target_ratio") == 0.9
    assert value(samples, "siaga_service_goal_today_ratio") is None  # nothing answered yet

    # Answered at once; abandoned after 30 s: 1 of 2 within 15 s, under the 90 % goal.
    centre.arrive("c-quick", "081300000030", category="medical")
    centre.connect("c-quick", "1001")
    centre.end("c-quick")
    now = datetime.now(UTC)
    centre.record(events.call_arrived("c-gone", "081300000031", at=now - timedelta(seconds=30)))
    centre.record(events.call_abandoned("c-gone", at=now))
    centre.record(events.call_ended("c-gone", "caller", at=now))
    await settled(writer)
    await asyncio.sleep(served.console.settings.stats_interval_seconds)  # the console's cache

    samples = await scrape(collector)
    assert value(samples, "siaga_service_goal_today_ratio") == 0.5
    assert value(samples, "siaga_service_level_today_ratio", category="medical") == 1.0
    assert value(samples, "siaga_service_level_today_ratio", category="fire") is None


async def test_a_scrape_still_answers_without_todays_figures(
    console_config: Config, writer: RecordWriter
) -> None:
    async def database_away() -> list[object]:
        raise OSError("connection refused")

    centre = MeasuredCentre(console_config, writer)
    collector = CentreCollector(console_config, centre, today=database_away)  # type: ignore[arg-type]
    samples = await scrape(collector)
    assert value(samples, "siaga_service_goal_today_ratio") is None
    assert value(samples, "siaga_calls_waiting", category="medical") == 0


async def test_record_writer_journal_disk_and_recording_failures(
    console_config: Config, writer: RecordWriter, tmp_path: Path
) -> None:
    journal_file = tmp_path / "records.jsonl"
    journal_file.write_bytes(b"x" * 1234)
    # A folder that cannot be looked at counts as low; no limits: the other never is.
    disk = DiskGuard(
        {"recordings": tmp_path / "gone", "journal": tmp_path},
        DiskConfig(min_free_percent=0, min_free_mib=0),
    )
    await disk.check()
    collector = CentreCollector(
        console_config,
        MeasuredCentre(console_config, writer),
        writer=writer,
        journal_path=journal_file,
        disk=disk,
        recordings=SimpleNamespace(failures=3),
    )
    writer.write(events.call_arrived("c-w", "081300000040"))
    await settled(writer)

    samples = await scrape(collector)
    assert value(samples, "siaga_database_reachable") == 1
    assert value(samples, "siaga_journal_backlog") == 0
    assert value(samples, "siaga_journal_bytes") == 1234
    assert value(samples, "siaga_record_writer_queued_events") == 0
    assert value(samples, "siaga_records_written_total") == writer.stats().written >= 1
    assert value(samples, "siaga_disk_low", folder="recordings") == 1
    assert value(samples, "siaga_disk_low", folder="journal") == 0
    assert value(samples, "siaga_recording_failures_total") == 3

    journal_file.unlink()  # emptied and gone: depth 0, not an error
    assert value(await scrape(collector), "siaga_journal_bytes") == 0


async def test_served_without_login_and_without_caller_numbers(
    served: ConsoleUnderTest, centre: PureCentre, writer: RecordWriter
) -> None:
    measured = MeasuredCentre(served.console.config, writer)
    measured.arrive("c-secret", "081399999999", name="Budi Santoso", category="medical")
    collector = CentreCollector(served.console.config, measured, today=served.console.today)
    app = create_app(lambda: Health(True, True), served.console, collector)
    async with (
        TestServer(app) as server,
        aiohttp.ClientSession() as http,
        http.get(server.make_url("/metrics"), allow_redirects=False) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = await response.text()
    assert 'siaga_calls_waiting{category="medical"} 1.0' in body
    for personal in ("081399999999", "Budi", "c-secret"):
        assert personal not in body
