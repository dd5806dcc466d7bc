"""The chaos run's own siaga.toml (testbed/chaos_stack.py), read back by the real loader."""

from __future__ import annotations

import tomllib
from pathlib import Path

from testbed.chaos_stack import (
    EXAMPLE,
    Ports,
    chaos_phones,
    chaos_settings,
    dump_toml,
    write_config,
)


def test_the_runs_siaga_toml_points_at_its_own_asterisk_and_postgres(tmp_path: Path) -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    ports = Ports(ari=18088, ami=15038, sip=15060, web=18112, agi=14573, rtp_start=20000)
    phones = chaos_phones(3)
    dsn = "postgresql://siaga:p%40ss@127.0.0.1:6000/siaga"
    log_dir = tmp_path / "srv/siaga/chaos-1/log"
    settings = chaos_settings(example, dsn=dsn, ports=ports, phones=phones, log_dir=log_dir)
    config = write_config(tmp_path / "siaga.toml", settings)

    assert not config.asterisk.embedded and not config.database.embedded
    assert config.database.url == dsn
    assert config.asterisk.log_dir == str(log_dir)
    assert config.asterisk.ari_url == "http://127.0.0.1:18088"
    assert (config.asterisk.sip_port, config.web.port, config.agi.port) == (15060, 18112, 14573)
    assert config.asterisk.rtp_end - config.asterisk.rtp_start + 1 == 2000
    assert [(o.sip_user, o.dial_string) for o in config.operators] == [
        (p.user, f"PJSIP/{p.user}") for p in phones
    ]
    every_skill = {c.skill for c in config.categories}
    assert all(dict(o.skills) == dict.fromkeys(every_skill, 1) for o in config.operators)
    # Everything else is the example's.
    assert config.ivr.menus.keys() == {"main", "non_emergency"}
    assert [c.code for c in config.categories][:2] == ["medical", "fire"]
    assert config.acd.pause_reasons["3"] == "prayer"


def test_dump_toml_reads_back_as_written() -> None:
    data = {
        "top": "x",
        "table": {"s": 'quo"te\\', "n": 1.5, "b": False, "l": ["a", 2], "in": {"1": "one"}},
        "rows": [{"id": "a", "skills": {"x": 1}}, {"id": "b", "skills": {}}],
    }
    assert tomllib.loads(dump_toml(data)) == data
