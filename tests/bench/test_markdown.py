"""The stack benchmark's Markdown: every ramp step either system ran has its row, with how busy
the machine was."""

from __future__ import annotations

from bench.bench_stack import APP_QUEUE, SIAGA, markdown
from bench.stack_env import busy_percent, machine_cpu_seconds


def _step(rate: int, p99: float, lost: int, busy: float | None = 50.0) -> dict:
    return {
        "rate": rate,
        "queued_to_operator_channel_ms": {"p99": p99},
        "lost": lost,
        "machine_busy_percent": busy,
    }


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
                SIAGA: _ramp(90, _step(75, 52.9, 0), _step(90, 810.2, 0, 97.4)),
                APP_QUEUE: _ramp(
                    100, _step(75, 5.78, 0), _step(90, 8.39, 0, None), _step(100, 30.3, 0, 71.0)
                ),
            }
        },
    }
    rows = [line for line in markdown(result).splitlines() if line.startswith("| 1")]
    assert rows == ["| 100 | - | - | - | 30.3 | 0 | 71% |"]
    assert "| 90 | 810.2 | 0 | 97% | 8.39 | 0 | - |" in markdown(result)


def test_machine_busy_is_the_busy_share_of_all_cores_between_two_readings():
    # (busy, total) CPU seconds: 2 cores for 10 s is 20 s in all, 15 of them busy.
    assert busy_percent((100.0, 1000.0), (115.0, 1020.0)) == 75.0
    assert busy_percent((1.0, 5.0), (1.0, 5.0)) is None
    busy, total = machine_cpu_seconds()
    assert 0 <= busy <= total
