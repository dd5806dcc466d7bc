"""`siaga install` into a folder of the test's own: the files, their modes and content, the
units as `systemd-analyze verify` sees them, a second install, and the uninstall."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from siaga.config import load_config, refuse_plain_http, refuse_weak_secrets, url_password
from stack.install import UNITS, Layout, database_sql, install_files, uninstall
from testbed.units import parse_unit


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """An installation under tmp_path, with a stand-in environment whose bin/siaga is an
    executable (systemd-analyze checks the units' commands exist)."""
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    siaga = env / "bin" / "siaga"
    siaga.write_text("#!/bin/sh\nexit 0\n")
    siaga.chmod(0o755)
    return Layout(tmp_path / "root", env)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_writes_a_production_config_and_a_private_secrets_file(layout: Layout) -> None:
    install_files(layout, "postgresql://centre@127.0.0.1:5432/records")
    assert mode(layout.secrets) == 0o600
    assert mode(layout.config) == 0o644
    config = load_config(layout.config)
    refuse_weak_secrets(config)  # production accepts what was generated
    refuse_plain_http(config)  # the console is served over HTTPS, with the certificate made
    assert config.web.https
    assert mode(Path(config.web.tls_key)) == 0o600
    assert config.centre.development is False
    assert config.database.embedded is False
    assert config.database.url.startswith("postgresql://centre:")
    assert config.database.url.endswith("@127.0.0.1:5432/records")
    assert len(url_password(config.database.url)) >= 16
    assert config.asterisk.embedded is True  # the bundled one, run by its own unit
    assert "siaga-dev" not in layout.secrets.read_text()


def test_install_twice_keeps_the_secrets_and_the_administrators_config(layout: Layout) -> None:
    install_files(layout)
    secrets = layout.secrets.read_text()
    edited = layout.config.read_text().replace('name = "Siaga 112"', 'name = "Kota Siaga"')
    layout.config.write_text(edited)
    install_files(layout)
    assert layout.secrets.read_text() == secrets
    assert load_config(layout.config).centre.name == "Kota Siaga"
    assert mode(layout.secrets) == 0o600


def test_units_pass_systemd_analyze_verify(layout: Layout) -> None:
    install_files(layout)
    units = [str(layout.units_dir / unit) for unit in UNITS]
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_unit_with_a_missing_command_fails_systemd_analyze_verify(layout: Layout) -> None:
    # The check above can fail: the same units without their command do.
    install_files(layout)
    assert layout.python_env is not None
    shutil.rmtree(layout.python_env)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(layout.units_dir / "siaga112.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "is not executable" in result.stderr


def test_units_run_the_installed_config_and_restart_always(layout: Layout) -> None:
    install_files(layout)
    assert layout.python_env is not None
    siaga = layout.python_env / "bin" / "siaga"
    app = parse_unit(layout.units_dir / "siaga112.service")
    asterisk = parse_unit(layout.units_dir / "siaga112-asterisk.service")
    assert app.exec_start == [
        str(siaga), "--config", str(layout.config), "--log-format", "json", "run"
    ]  # fmt: skip
    assert asterisk.exec_start[-2:] == ["asterisk", "run"]
    for unit in (app, asterisk):
        assert unit.service["Type"] == ["notify"]
        assert unit.service["Restart"] == ["always"]
        assert unit.watchdog_seconds > 0
        assert unit.environment["SIAGA_CACHE_DIR"] == str(layout.cache)
        assert unit.environment["SIAGA_STATE_DIR"] == str(layout.state)
        assert unit.service["ProtectSystem"] == ["strict"]
    assert "siaga112-asterisk.service" in app.unit["Requires"][0].split()
    assert {"siaga112-asterisk.service", "postgresql.service"} <= set(app.unit["After"][0].split())
    # The app cannot chroot: it can never start a second Asterisk beside the unit's.
    assert "CAP_SYS_CHROOT" not in app.service["CapabilityBoundingSet"][0]


def test_logrotate_truncates_asterisks_logs_in_place(layout: Layout) -> None:
    install_files(layout)
    text = layout.logrotate.read_text()
    log_dir = layout.cache / "asterisk-root/srv/siaga/dev/log"
    for name in ("messages.log", "queue_log", "cel.jsonl"):
        assert f"{log_dir / name}\n" in text
    assert "copytruncate" in text
    assert "/var/cache" not in text.replace(str(layout.cache), "")


def test_uninstall_removes_units_and_keeps_config_and_records(layout: Layout) -> None:
    install_files(layout)
    journal = layout.state / "journal" / "records.jsonl"
    journal.parent.mkdir(parents=True)
    journal.write_text("{}\n")
    said = "\n".join(uninstall(layout))
    for unit in UNITS:
        assert not (layout.units_dir / unit).exists()
    assert not layout.logrotate.exists()
    assert layout.config.exists() and layout.secrets.exists() and journal.exists()
    assert "kept" in said and "database" in said
    assert layout.python_env is not None and (layout.python_env / "bin" / "siaga").exists()


def test_database_sql_quotes_names_and_password() -> None:
    sql = database_sql("o'brien", "pa'ss", "rec'ords")
    assert "'o''brien'" in sql and "'pa''ss'" in sql and "'rec''ords'" in sql
    assert "NOSUPERUSER" in sql and "scram-sha-256" in sql
