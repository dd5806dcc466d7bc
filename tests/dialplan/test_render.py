"""The rendered Asterisk configuration carries siaga.toml's values and nothing unsafe."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

import pytest

from dialplan import render
from siaga.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
LAYOUT = render.InstanceLayout(
    base=PurePosixPath("/srv/siaga/t"), module_dir=PurePosixPath("/usr/lib/asterisk/modules")
)


def test_every_file_renders_without_leftover_placeholders():
    files = render.render(load_config(EXAMPLE), LAYOUT)
    assert set(files) == set(render.CONFIG_FILES)
    for name, text in files.items():
        assert "{{" not in text, name


def test_instance_folders_and_ports_come_from_config():
    config = load_config(EXAMPLE)
    config = dataclasses.replace(
        config,
        asterisk=dataclasses.replace(
            config.asterisk, sip_port=15060, ari_url="http://127.0.0.1:18088"
        ),
    )
    files = render.render(config, LAYOUT)
    assert "astrundir => /srv/siaga/t/run" in files["asterisk.conf"]
    assert "bind = 127.0.0.1:15060" in files["pjsip.conf"]
    assert "bindport = 18088" in files["http.conf"]


def test_each_operator_gets_endpoint_auth_and_aor():
    files = render.render(load_config(EXAMPLE), LAYOUT)
    pjsip = files["pjsip.conf"]
    for user in ("1001", "1002"):
        assert f"[{user}]\ntype = endpoint" in pjsip
        assert f"[{user}-auth]\ntype = auth" in pjsip
        assert f"[{user}]\ntype = aor" in pjsip
    assert "endpoint_identifier_order = username,ip" in pjsip
    assert "member => PJSIP/1001,0,Operator Satu" in files["queues.conf"]


def test_emergency_number_enters_stasis_with_a_fallback():
    ext = render.render(load_config(EXAMPLE), LAYOUT)["extensions.conf"]
    assert "exten => 112,1," in ext
    assert "Stasis(siaga)" in ext
    assert '"${STASISSTATUS}" = "FAILED"' in ext


def test_hostile_operator_name_cannot_break_out_of_its_line():
    config = load_config(EXAMPLE)
    evil = dataclasses.replace(config.operators[0], name='Bad"\n[trunk]\ntype=endpoint;x,y')
    config = dataclasses.replace(config, operators=(evil, *config.operators[1:]))
    pjsip = render.render(config, LAYOUT)["pjsip.conf"]
    assert pjsip.count("[trunk]") == 2  # the two real sections, no injected third
    assert 'callerid = "Badtrunktype=endpointxy" <1001>' in pjsip


def test_unknown_placeholder_is_an_error():
    with pytest.raises(KeyError, match="no value for placeholder"):
        render.fill("x = {{nope}}", {}, "t.conf")
