"""The fresh machine's administrator step edits the siaga.toml that `siaga install` writes: SIP
on the machine's address, every port its own; and the verdict of the check inside is read back
from its output."""

from __future__ import annotations

from pathlib import Path

from siaga.config import load_config
from stack.install import DEFAULT_DATABASE_URL, SHIPPED_CONFIG, production_config
from testbed.fresh_machine import _last_json, configure


def test_configure_puts_sip_on_the_address_and_gives_every_port_anew(tmp_path: Path) -> None:
    path = tmp_path / "siaga.toml"
    path.write_text(production_config(SHIPPED_CONFIG.read_text(), DEFAULT_DATABASE_URL))
    before = load_config(path, with_secrets_file=False)
    configure("192.0.2.7", path)
    after = load_config(path, with_secrets_file=False)
    assert after.asterisk.sip_host == "192.0.2.7"
    ports = [
        (before.asterisk.sip_port, after.asterisk.sip_port),
        (before.asterisk.http_port, after.asterisk.http_port),
        (before.asterisk.ami_port, after.asterisk.ami_port),
        (before.web.port, after.web.port),
        (before.agi.port, after.agi.port),
    ]
    assert all(old != new for old, new in ports), ports
    assert after.web.tls and not after.centre.development


def test_the_last_json_line_is_the_verdict() -> None:
    output = 'pip says {"not": "json"\n{"ok": true, "call": {"ok": true}}\n'
    assert _last_json(output) == {"ok": True, "call": {"ok": True}}
    assert _last_json("Traceback ...\n")["ok"] is False
