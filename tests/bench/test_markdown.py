"""The stack benchmark's Markdown: every ramp step either system ran has its row."""

from __future__ import annotations

from bench.bench_stack import APP_QUEUE, SIAGA, markdown


def _step(rate: int, p99: float, lost: int) -> dict:
    return {"rate": rate, "queued_to_operator_channel_ms": {"p99": p99}, "lost": lost}


def _ramp(held: int, *steps: dict) -> dict:
    cpu = {"app": 7.6, "asterisk": 15.5, "postgres": 2.5}
    return {
        "steps": list(steps),
        "highest_held_rate": held,
        "cpu_s_per_1000_calls": cpu,
        "app_peak_rss_mb": 75.0,
    }


def test_a_step_only_app_queue_reached_has_its_row():
    result = {
        "machine": {"cpus": 2},
        "when": "2026-11-28T00:00:00",
        "command": "bench",
        "plan": {"runs": 1},
        "results": {
            "sustained": {
                SIAGA: _ramp(90, _step(75, 52.9, 0), _step(90, 810.2, 0)),
                APP_QUEUE: _ramp(100, _step(75, 5.78, 0), _step(90, 8.39, 0), _step(100, 30.3, 0)),
            }
        },
    }
    rows = [line for line in markdown(result).splitlines() if line.startswith("| 1")]
    assert rows == ["| 100 | - | - | 30.3 | 0 |"]
    assert "| 90 | 810.2 | 0 | 8.39 | 0 |" in markdown(result)
