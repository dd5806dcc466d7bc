"""JSON logs are JSON lines only: structlog's and the standard library's alike."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from siaga.logging import configure_logging


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    configure_logging("console")


def test_structlog_and_standard_library_lines_are_json(capsys: pytest.CaptureFixture[str]):
    configure_logging("json")
    structlog.get_logger("t").info("call.transition", call_id="c1")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    lines = capsys.readouterr().err.splitlines()
    parsed = [json.loads(line) for line in lines]
    assert parsed[0]["event"] == "call.transition" and parsed[0]["call_id"] == "c1"
    assert parsed[1]["event"] == "Task exception was never retrieved"
    assert parsed[1]["level"] == "error" and parsed[1]["logger"] == "asyncio"
    assert "timestamp" in parsed[1]


def test_configuring_again_does_not_double_the_lines(capsys: pytest.CaptureFixture[str]):
    configure_logging("json")
    configure_logging("json")
    logging.getLogger("aiohttp.server").warning("once")
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_a_logger_used_before_configuring_again_follows_the_new_set_up(
    capsys: pytest.CaptureFixture[str],
):
    # Loggers are cached on first use: one cached under the first set-up must write JSON after
    # the second, and be seen by structlog's capture_logs as every test expects.
    configure_logging("console")
    log = structlog.get_logger("cached")
    log.info("first")
    configure_logging("json")
    capsys.readouterr()
    log.info("second", call_id="c1")
    assert json.loads(capsys.readouterr().err)["event"] == "second"
    with structlog.testing.capture_logs() as captured:
        log.warning("recording.failed", call_id="c1")
    assert [e["event"] for e in captured] == ["recording.failed"]
