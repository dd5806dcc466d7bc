"""The RegistrationWatch (edge/registrations.py) against fake edges: aiohttp servers that
answer JSON-RPC with Kamailio's real ul.dump answers (tests/edge/fixtures)."""

from __future__ import annotations

import asyncio
import json
import socket
import tomllib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from edge_support import EXAMPLE, PHONES, answer
from structlog.testing import capture_logs

from edge.registrations import RegistrationWatch
from siaga.config import parse_config


class FakeEdge:
    """Answers POST /RPC with `self.answer` (or `self.status` without a body); keeps what it
    was asked."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] = answer("empty")
        self.status = 200
        self.asked: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_post("/RPC", self._rpc)
        self.server = TestServer(app, host="127.0.0.1")

    async def _rpc(self, request: web.Request) -> web.Response:
        self.asked.append(json.loads(await request.text()))
        if self.status != 200:
            return web.Response(status=self.status, text="not a node\n")
        # Kamailio answers with its own content type and layout: read as text, not by type.
        return web.Response(text=json.dumps(self.answer, indent="\t"), content_type="text/plain")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/RPC"))


@pytest.fixture
async def edge() -> AsyncIterator[FakeEdge]:
    fake = FakeEdge()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@pytest.fixture
async def second_edge() -> AsyncIterator[FakeEdge]:
    fake = FakeEdge()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


def dead_url() -> str:
    """A port nobody listens on: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/RPC"


class Reports(list[tuple[str, bool]]):
    def __call__(self, operator_id: str, registered: bool) -> None:
        self.append((operator_id, registered))


async def test_the_first_answer_reports_everyone_then_only_changes(edge):
    reports = Reports()
    watch = RegistrationWatch(edge.url, PHONES, reports)
    edge.answer = answer("registered")
    await watch.poll()
    assert reports == [("1001", True), ("1002", False)]
    assert edge.asked == [{"jsonrpc": "2.0", "method": "ul.dump", "id": 1}]
    await watch.poll()
    assert len(reports) == 2  # nothing changed, nothing reported
    edge.answer = answer("expired")
    await watch.poll()
    assert reports[2:] == [("1001", False)]
    await watch.stop()


async def test_a_lost_edge_changes_nothing_and_is_logged_once_per_outage(edge):
    reports = Reports()
    watch = RegistrationWatch(edge.url, PHONES, reports)
    edge.answer = answer("registered")
    await watch.poll()
    with capture_logs() as logs:
        edge.status = 503
        for _ in range(3):
            await watch.poll()
        edge.answer = {"jsonrpc": "2.0", "error": {"code": 500, "message": "busy"}, "id": 1}
        edge.status = 200
        await watch.poll()  # a JSON-RPC error is no answer either
        assert reports == [("1001", True), ("1002", False)]  # 1001 not logged out
        assert watch.unanswered
        edge.answer = answer("empty")
        await watch.poll()
    assert reports[2:] == [("1001", False)]
    assert not watch.unanswered
    events = [entry["event"] for entry in logs if entry["event"].startswith("edge.")]
    assert events == ["edge.registrations_unanswered", "edge.registrations_answered"]
    unanswered = next(e for e in logs if e["event"] == "edge.registrations_unanswered")
    assert "503" in unanswered["error"]
    await watch.stop()


async def test_nothing_is_reported_before_an_edge_first_answers(edge):
    reports = Reports()
    watch = RegistrationWatch([dead_url(), edge.url], PHONES, reports, timeout=1.0)
    reported = asyncio.create_task(watch.wait_reported())
    edge.status = 503
    await watch.poll()
    assert reports == [] and watch.unanswered
    assert not reported.done()  # the app holds its offers until the edge has answered
    edge.status = 200
    edge.answer = answer("registered")
    await watch.poll()
    await asyncio.wait_for(reported, 1)
    assert reports == [("1001", True), ("1002", False)]
    await watch.stop()


async def test_the_first_edge_that_answers_and_it_is_asked_first_from_then_on(edge, second_edge):
    reports = Reports()
    second_edge.answer = answer("registered")
    watch = RegistrationWatch([dead_url(), edge.url, second_edge.url], PHONES, reports)
    edge.status = 403  # answers, but not to us
    await watch.poll()
    assert reports == [("1001", True), ("1002", False)]
    assert (len(edge.asked), len(second_edge.asked)) == (1, 1)
    await watch.poll()
    assert (len(edge.asked), len(second_edge.asked)) == (1, 2)
    await second_edge.server.close()  # that edge dies: back to the others, in their order
    edge.status = 200
    await watch.poll()
    assert reports[2:] == [("1001", False)]  # edge's own view: nobody
    assert not watch.unanswered
    await watch.stop()


async def test_a_failing_report_does_not_stop_the_next_ones(edge):
    seen: list[tuple[str, bool]] = []

    def on_change(operator_id: str, registered: bool) -> None:
        seen.append((operator_id, registered))
        if operator_id == "1001":
            raise RuntimeError("the app choked")

    watch = RegistrationWatch(edge.url, PHONES, on_change)
    with capture_logs() as logs:
        await watch.poll()
    assert seen == [("1001", False), ("1002", False)]
    assert [e["operator"] for e in logs if e["event"] == "edge.registration_report_failed"] == [
        "1001"
    ]
    await watch.stop()


async def test_started_it_polls_by_itself_until_stopped(edge):
    reports = Reports()
    watch = RegistrationWatch(edge.url, PHONES, reports, interval=0.05)
    watch.start()
    for _ in range(100):
        if len(edge.asked) >= 3:
            break
        await asyncio.sleep(0.02)
    assert reports == [("1001", False), ("1002", False)]
    edge.answer = answer("registered")
    for _ in range(100):
        if len(reports) == 3:
            break
        await asyncio.sleep(0.02)
    assert reports[2:] == [("1001", True)]
    await watch.stop()
    asked = len(edge.asked)
    await asyncio.sleep(0.2)
    assert len(edge.asked) == asked  # stopped: no more polls


def test_for_config_watches_the_edge_of_siaga_toml():
    data = tomllib.loads(EXAMPLE.read_text())
    data["edge"] = {"sip_host": "10.9.0.10", "rpc_port": 5070}
    data["asterisk"]["nodes"] = [{"name": "node_a", "sip_host": "10.9.0.11"}]
    data["operators"][1]["dial"] = "Local/1002@siaga-simulated"
    watch = RegistrationWatch.for_config(parse_config(data, EXAMPLE), Reports())
    assert watch.urls == ("http://10.9.0.10:5070/RPC",)
    assert watch.phones == {"1001": "1001"}
    assert watch.interval == 1.0


def test_no_edge_no_watch():
    config = parse_config(tomllib.loads(EXAMPLE.read_text()), EXAMPLE)
    with pytest.raises(ValueError, match="no \\[edge\\]"):
        RegistrationWatch.for_config(config, Reports())
    with pytest.raises(ValueError, match="at least one"):
        RegistrationWatch([], PHONES, Reports())
