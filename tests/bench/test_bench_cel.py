"""The CEL benchmark's pure parts: the toggle, its checks, and the figures (no Asterisk)."""

from __future__ import annotations

import pytest

from bench import run_all
from bench.bench_cel import (
    BenchError,
    Window,
    against_neighbours,
    cel_conf,
    cel_logging,
    check_window,
    completed_calls,
    markdown,
    modes,
    summarise,
)
from dialplan import render

STATUS_ON = """CEL Logging: Enabled
CEL Tracking Event: CHAN_START
CEL Tracking Application: queue
CEL Event Subscriber: CEL Custom CSV Logging
"""


def window(cel: bool, cpu_s: float, calls: int = 100, cel_bytes: int | None = None) -> Window:
    size = (5000 * calls if cel else 0) if cel_bytes is None else cel_bytes
    return Window(
        cel=cel,
        seconds=5.0,
        calls=calls,
        asterisk_cpu_s=cpu_s,
        cel_bytes=size,
        cel_lines=16 * calls if cel else 0,
        machine_busy_percent=60.0,
    )


def test_modes_alternate_starting_with_cel_on() -> None:
    assert modes(3) == [True, False, True, False, True, False]


@pytest.mark.parametrize("enabled, word", [(False, "no"), (True, "yes")])
def test_cel_conf_sets_the_one_enable_line_and_keeps_the_rest(enabled: bool, word: str) -> None:
    text = "; comment\n[general]\nenable = yes\napps = mixmonitor,stasis,queue\n"
    new = cel_conf(text, enabled)
    assert new == text.replace("enable = yes", f"enable = {word}")
    assert cel_conf(cel_conf(text, not enabled), enabled) == new


def test_cel_conf_toggles_the_cel_conf_siaga_renders() -> None:
    shipped = render.template("cel.conf")
    assert "enable = yes" in shipped
    off = cel_conf(shipped, False)
    assert "enable = no" in off and "enable = yes" not in off
    assert cel_conf(off, True) == shipped


def test_cel_conf_refuses_a_file_it_cannot_toggle() -> None:
    with pytest.raises(ValueError):
        cel_conf("[general]\napps = queue\n", False)
    with pytest.raises(ValueError):
        cel_conf("[general]\nenable = yes\nenable = no\n", False)


def test_cel_logging_reads_cel_show_status() -> None:
    assert cel_logging(STATUS_ON) is True
    assert cel_logging("CEL Logging: Disabled\n") is False
    with pytest.raises(ValueError):
        cel_logging("No such command 'cel show status'\n")


def test_completed_calls_adds_up_every_queue() -> None:
    text = (
        "bench-84-medical has 0 calls (max unlimited) in 'leastrecent' strategy (0s holdtime,"
        " 3s talktime), W:9, C:120, A:0, SL:0.0%, SL2:0.0% within 0s\n"
        "   Members: \n      op1 (Local/1@siaga-bench-op) has taken 2 calls (last was 1 secs ago)\n"
        "bench-84-fire has 0 calls (max unlimited) in 'leastrecent' strategy (0s holdtime,"
        " 0s talktime), W:8, C:3, A:1, SL:0.0%, SL2:0.0% within 0s\n"
    )
    assert completed_calls(text) == 123
    assert completed_calls("No queues.\n") == 0


def test_a_toggle_that_did_not_take_fails_loudly() -> None:
    check_window(window(True, 2.0))
    check_window(window(False, 2.0))
    with pytest.raises(BenchError):
        check_window(window(True, 2.0, cel_bytes=0))  # "on", yet nothing written
    with pytest.raises(BenchError):
        check_window(window(False, 2.0, cel_bytes=300))  # "off", yet records written
    with pytest.raises(BenchError):
        check_window(window(True, 2.0, calls=0))


def test_summary_gives_medians_per_mode_and_their_difference() -> None:
    windows = [
        window(True, 2.0),  # 20 ms a call
        window(False, 1.9),  # 19
        window(True, 2.6),  # 26: a noisy window, outvoted by the median
        window(False, 1.8),  # 18
        window(True, 2.1),  # 21
        window(False, 1.85),  # 18.5
    ]
    figures = summarise(windows)
    assert figures["asterisk_cpu_ms_per_call"] == {"cel_on": 21.0, "cel_off": 18.5}
    assert figures["cel_ms_per_call"] == 2.5
    assert figures["cel_percent_of_asterisk_cpu"] == pytest.approx(11.9)
    # 19 against (20 + 26) / 2, 26 against 18.5, 18 against 23.5, 21 against 18.25
    assert figures["cel_ms_per_call_by_window"] == [4.0, 7.5, 5.5, 2.75]
    assert figures["cel_ms_per_call_against_neighbours"] == 4.75
    assert figures["cel_bytes_per_call"] == 5000.0
    assert figures["cel_lines_per_call"] == 16.0


def test_a_drifting_machine_does_not_move_the_neighbour_figure() -> None:
    # Asterisk's CPU per call grows 1 ms every window (the machine gets busier) and CEL adds
    # 0.5 ms: the difference of medians shows the drift, each window against its neighbours
    # does not.
    windows = [window(i % 2 == 0, (20 + i + (0.5 if i % 2 == 0 else 0)) / 10) for i in range(8)]
    assert against_neighbours(windows) == pytest.approx([0.5] * 6)
    assert summarise(windows)["cel_ms_per_call"] == pytest.approx(-0.5)


def test_windows_not_between_two_of_the_other_mode_are_left_out() -> None:
    assert against_neighbours([window(True, 2.0), window(False, 1.9)]) == []
    assert against_neighbours([window(True, 2.0), window(True, 2.1), window(False, 1.9)]) == []
    assert (
        summarise([window(True, 2.0), window(False, 1.9)])["cel_ms_per_call_against_neighbours"]
        is None
    )


def test_summary_needs_both_modes() -> None:
    with pytest.raises(ValueError):
        summarise([window(True, 2.0), window(True, 2.1)])


def test_markdown_shows_the_figures() -> None:
    windows = [window(True, 2.0), window(False, 1.9), window(True, 2.2)]
    plan = {"pairs": 1, "window_seconds": 5.0, "rate": 20.0, "path": "equal"}
    text = markdown({"median": summarise(windows), "plan": plan})
    assert "CEL on 21.00 ms, off 19.00 ms" in text
    assert "CEL costs 2.00 ms of Asterisk CPU per call (9.5 %)" in text
    assert "each window against its neighbours: median 2.00 ms (9.5 %)" in text
    assert "5,000 bytes (16 events) per call" in text


def test_make_bench_summary_has_the_cel_figures() -> None:
    windows = [window(True, 2.0), window(False, 1.9)]
    plan = {"pairs": 1, "window_seconds": 5.0, "rate": 20.0, "path": "equal"}
    report = {"median": summarise(windows), "plan": plan}
    text = run_all.summary({"cel": report}, "python -m bench.run_all")
    assert "## Asterisk's own record of every call (CEL)" in text
    assert "CEL costs 1.00 ms of Asterisk CPU per call" in text
    assert "FAILED" in run_all.summary({"cel": {"error": "exit 1"}}, "python -m bench.run_all")
