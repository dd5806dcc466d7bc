"""The alerting rules shipped in deploy/prometheus: valid for Prometheus, and each alert fires
when it should and stays quiet otherwise (their promtool unit tests, siaga-rules.test.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "siaga-rules.yml"
RULE_TESTS = DEPLOY / "siaga-rules.test.yml"
CONFIG = DEPLOY / "prometheus.yml"
ALERTS = {
    "SiagaAppOrAriDown",
    "SiagaEmergencyCallWaitingPastTarget",
    "SiagaNoOperatorReady",
    "SiagaServiceLevelBelowTarget",
    "SiagaJournalNotDraining",
    "SiagaDiskNearlyFull",
}


def promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's prometheus (scripts/install-system.sh)"
    done = subprocess.run(
        [tool, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_the_rules_and_the_example_config_are_valid() -> None:
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", RULES.name)
    promtool("check", "config", CONFIG.name)
    assert set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.MULTILINE)) == ALERTS


def test_every_alert_fires_and_stays_quiet_in_its_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", RULE_TESTS.name)
    cases = RULE_TESTS.read_text().split("- eval_time:")[1:]
    named = [(re.search(r"alertname: (\w+)", case), case) for case in cases]
    fired = {m.group(1) for m, case in named if m and "exp_alerts: []" not in case}
    quiet = {m.group(1) for m, case in named if m and "exp_alerts: []" in case}
    assert fired == ALERTS
    assert quiet == ALERTS
