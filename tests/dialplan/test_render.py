"""The rendered Asterisk configuration carries siaga.toml's values and nothing unsafe."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from dialplan import ami, render
from siaga.config import load_config, node_config, parse_config

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


def _settings(text: str, section: str) -> list[tuple[str, str]]:
    """(key, value) lines of one section, comments dropped."""
    body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
    lines = [line.split(";", 1)[0].strip() for line in body.splitlines()]
    return [(k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in lines if line)]


def test_the_ami_user_reads_the_recorders_events_and_writes_nothing():
    config = load_config(EXAMPLE)
    user = dict(_settings(render.render(config, LAYOUT)["manager.conf"], config.asterisk.ami_user))
    assert user["write"] == ""  # system, originate or command: each is root in the PBX
    assert user["read"] == "call,agent,user"
    assert user["permit"] == "127.0.0.0/255.0.0.0"


def test_the_ami_user_gets_only_the_events_the_recorder_reads():
    config = load_config(EXAMPLE)
    user = _settings(render.render(config, LAYOUT)["manager.conf"], config.asterisk.ami_user)
    filters = [key for key, _ in user if key.startswith("eventfilter")]
    assert filters == [f"eventfilter(action(include),name({event}))" for event in ami.EVENTS]
    assert {"UserEvent", "Hangup", "QueueCallerJoin", "AgentConnect"} <= set(ami.EVENTS)


def test_modules_that_run_programs_are_never_loaded():
    modules = _settings(render.render(load_config(EXAMPLE), LAYOUT)["modules.conf"], "modules")
    loaded = {value for key, value in modules if key == "load"}
    never = {value for key, value in modules if key == "noload"}
    assert ("autoload", "no") in modules
    assert {"app_system.so", "func_shell.so", "app_externalivr.so", "pbx_lua.so"} <= never
    assert not loaded & never


def test_functions_that_reach_the_shell_stay_out_of_remote_reach_and_rtp_has_no_ice():
    files = render.render(load_config(EXAMPLE), LAYOUT)
    assert ("live_dangerously", "no") in _settings(files["asterisk.conf"], "options")
    assert ("icesupport", "no") in _settings(files["rtp.conf"], "general")


def _with_sip_tls(config, pair, *, srtp):
    ast = dataclasses.replace(
        config.asterisk,
        sip_tls_port=15061,
        sip_tls_cert=str(pair.cert),
        sip_tls_key=str(pair.key),
        srtp=srtp,
    )
    return dataclasses.replace(config, asterisk=ast)


def test_the_shipped_setup_has_no_tls_transport_and_plain_rtp_for_operators():
    pjsip = render.render(load_config(EXAMPLE), LAYOUT)["pjsip.conf"]
    assert "protocol = tls" not in pjsip
    assert "protocol = tcp" not in pjsip
    assert pjsip.count("media_encryption = no") == 2  # the two operators
    assert "media_encryption = sdes" not in pjsip


def test_sip_tls_renders_a_tls_transport_on_the_instances_own_copies(tls_pair):
    config = _with_sip_tls(load_config(EXAMPLE), tls_pair, srtp=True)
    pjsip = render.render(config, LAYOUT)["pjsip.conf"]
    transport = pjsip.split("[transport-tls]\n", 1)[1].split("\n\n", 1)[0]
    assert "protocol = tls\n" in transport
    assert "bind = 127.0.0.1:15061\n" in transport
    assert "cert_file = /srv/siaga/t/etc/sip-tls.crt\n" in transport
    assert "priv_key_file = /srv/siaga/t/etc/sip-tls.key\n" in transport
    assert "method = sslv23\n" in transport
    assert "bind = 127.0.0.1:5060" in pjsip  # UDP stays for the trunk and UDP-only phones
    operators = pjsip.split("; Operator ", 1)[1]
    assert operators.count("media_encryption = sdes") == 2
    trunk = pjsip.split("[trunk]\ntype = endpoint", 1)[1].split("\n\n", 1)[0]
    assert "media_encryption" not in trunk  # the carrier's trunk is not ours to encrypt
    assert "load = res_srtp.so" in render.render(config, LAYOUT)["modules.conf"]


def test_tls_without_srtp_leaves_the_operators_media_plain(tls_pair):
    config = _with_sip_tls(load_config(EXAMPLE), tls_pair, srtp=False)
    pjsip = render.render(config, LAYOUT)["pjsip.conf"]
    assert "[transport-tls]" in pjsip
    assert "media_encryption = sdes" not in pjsip


def test_write_copies_certificate_and_key_into_the_instance_readable_by_root_alone(
    tls_pair, tmp_path
):
    config = _with_sip_tls(load_config(EXAMPLE), tls_pair, srtp=True)
    etc = render.write(config, LAYOUT, tmp_path)
    for name, original in (("sip-tls.crt", tls_pair.cert), ("sip-tls.key", tls_pair.key)):
        copy = etc / name
        assert copy.read_bytes() == original.read_bytes()
        assert copy.stat().st_mode & 0o777 == 0o600
    assert not list(etc.glob("*.tmp"))


# -- the browser phone ([[operators]] webrtc = true) ------------------------------------------


def _with_browser_phone(config, operator_id="1001"):
    operators = tuple(
        dataclasses.replace(op, webrtc=True) if op.id == operator_id else op
        for op in config.operators
    )
    return dataclasses.replace(config, operators=operators)


def _section(text, name, kind):
    """The lines of `[name]` with `type = kind`."""
    for block in text.split("\n[")[1:]:
        head, _, body = block.partition("]\n")
        if head == name and f"type = {kind}" in body:
            return body
    raise AssertionError(f"no [{name}] {kind}")


def test_a_browser_phone_is_a_webrtc_endpoint_on_a_websocket_with_ice():
    files = render.render(_with_browser_phone(load_config(EXAMPLE)), LAYOUT)
    pjsip = files["pjsip.conf"]
    web = _section(pjsip, "1001", "endpoint")
    assert "webrtc = yes" in web and "dtls_auto_generate_cert = yes" in web
    assert "allow = opus,alaw,ulaw" in web
    assert "auth = 1001-auth" in _section(pjsip, "1001", "endpoint")
    desk = _section(pjsip, "1002", "endpoint")  # the desk phone stays as it was
    assert "webrtc" not in desk and "media_encryption = no" in desk
    assert "protocol = ws" in _section(pjsip, "transport-ws", "transport")
    assert ("icesupport", "yes") in _settings(files["rtp.conf"], "general")
    # The ACD rings it like any desk phone.
    assert "member => PJSIP/1001,0,Operator Satu" in files["queues.conf"]
    loaded = set(render.loaded_modules(files["modules.conf"]))
    assert {"res_pjsip_transport_websocket.so", "codec_opus_open_source.so", "res_crypto.so"} <= (
        loaded
    )


def test_without_browser_phones_there_is_no_websocket_transport():
    pjsip = render.render(load_config(EXAMPLE), LAYOUT)["pjsip.conf"]
    assert "protocol = ws" not in pjsip and "webrtc" not in pjsip


def test_the_single_box_names_no_system_and_identifies_operators_by_user():
    files = render.render(load_config(EXAMPLE), LAYOUT)
    assert "systemname" not in files["asterisk.conf"]
    assert "endpoint_identifier_order = username,ip" in files["pjsip.conf"]
    assert "[1001-auth]" in files["pjsip.conf"]


def test_a_node_behind_the_edge_reaches_operators_through_the_edge():
    data = tomllib.loads(EXAMPLE.read_text())
    data["edge"] = {"sip_host": "10.9.0.10", "sip_port": 5070}
    data["asterisk"]["nodes"] = [{"name": "node_b", "sip_host": "10.9.0.12"}]
    data["asterisk"]["trunk_networks"] = []
    config = parse_config(data, EXAMPLE)
    files = render.render(node_config(config, config.asterisk.nodes[0]), LAYOUT)
    assert "systemname = node_b" in files["asterisk.conf"]
    pjsip = files["pjsip.conf"]
    assert "bind = 10.9.0.12:5060" in pjsip
    # Everything comes from the edge: calls to 112 are the trunk's, found by IP only.
    assert "endpoint_identifier_order = ip" in pjsip
    assert "match = 10.9.0.10/32" in pjsip
    # Operators' phones register at the edge: the node knows no password, and rings the edge.
    assert "contact = sip:1001@10.9.0.10:5070" in pjsip
    assert "-auth]" not in pjsip
    assert "password" not in pjsip
    # The fallback queue still rings every operator (through the edge).
    assert "member => PJSIP/1001,0,Operator Satu" in files["queues.conf"]


def test_a_node_behind_a_pair_of_edges_takes_the_trunk_from_both_and_their_shared_address():
    data = tomllib.loads(EXAMPLE.read_text())
    data["edge"] = {"sip_host": "10.9.0.10", "hosts": ["10.9.0.2", "10.9.0.3"]}
    data["asterisk"]["nodes"] = [{"name": "node_b", "sip_host": "10.9.0.12"}]
    data["asterisk"]["trunk_networks"] = []
    config = parse_config(data, EXAMPLE)
    pjsip = render.render(node_config(config, config.asterisk.nodes[0]), LAYOUT)["pjsip.conf"]
    # Calls come from the shared address, the probes from each edge's own.
    for address in ("10.9.0.10", "10.9.0.2", "10.9.0.3"):
        assert f"match = {address}/32" in pjsip
    assert "contact = sip:1001@10.9.0.10:5060" in pjsip  # phones are rung at the shared one
