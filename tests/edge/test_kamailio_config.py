"""The Kamailio edge's configuration, rendered from siaga.toml, and Kamailio's view of it."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import tomllib
from pathlib import Path

import pytest

from edge import render
from edge.__main__ import main as edge_main
from edge.kamailio import Kamailio, is_active, parse_dispatcher_list
from edge.vrrp import Keepalived, keepalived_conf, priority
from siaga.config import Config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


def edge_config(**edge: object) -> Config:
    data = tomllib.loads(EXAMPLE.read_text())
    data["edge"] = {"sip_host": "10.9.0.10", "probe_interval_seconds": 1, "timeout_ms": 800}
    data["edge"].update(edge)
    data["asterisk"]["nodes"] = [
        {"name": "node_a", "sip_host": "10.9.0.11"},
        {"name": "node_b", "sip_host": "10.9.0.12", "sip_port": 5070},
    ]
    return parse_config(data, EXAMPLE)


def test_every_node_is_in_the_dispatcher_set_and_the_probes_follow_the_config(tmp_path):
    files = render.render(edge_config(), render.EdgeLayout(tmp_path))
    assert files["dispatcher.list"].splitlines()[1:] == [
        "1 sip:10.9.0.11:5060 0 0 name=node_a",
        "1 sip:10.9.0.12:5070 0 0 name=node_b",
    ]
    cfg = files["kamailio.cfg"]
    assert "listen=udp:10.9.0.10:5060" in cfg
    assert 'modparam("dispatcher", "ds_ping_interval", 1)' in cfg
    assert 'modparam("tm", "fr_timer", 800)' in cfg
    # A node that replied but never answered a 112 call has 4 s, the operators' phones 120.
    assert "t_set_fr(4000, 800);" in cfg
    assert 'modparam("tm", "fr_inv_timer", 120000)' in cfg
    assert '$rU == "112"' in cfg
    assert f'"unix:{tmp_path / "kamailio.ctl"}"' in cfg
    assert "{{" not in cfg


def test_the_json_rpc_listens_on_its_own_tcp_port_for_the_nodes_only(tmp_path):
    cfg = render.render(edge_config(), render.EdgeLayout(tmp_path))["kamailio.cfg"]
    assert "listen=tcp:10.9.0.10:5062" in cfg
    assert "disable_tcp" not in cfg
    assert 'if ($hu != "/RPC")' in cfg
    clients = '"127.0.0.1" || $si == "10.9.0.10" || $si == "10.9.0.11" || $si == "10.9.0.12"'
    assert f"if (!($si == {clients})) {{" in cfg  # this machine, the edge's own address, nodes
    assert 'modparam("jsonrpcs", "transport", 1)' in cfg  # HTTP only: no FIFO, no socket


def test_the_testbed_may_add_the_test_process_to_the_rpc_clients(tmp_path):
    layout = render.EdgeLayout(tmp_path)
    cfg = render.render(edge_config(), layout, extra_rpc_clients=("10.9.0.1", "10.9.0.11"))[
        "kamailio.cfg"
    ]
    assert '$si == "10.9.0.12" || $si == "10.9.0.1")) {' in cfg  # each address once
    assert render.rpc_url(edge_config().edge) == "http://10.9.0.10:5062/RPC"


def test_each_operator_authenticates_with_its_own_password(tmp_path):
    config = edge_config()
    cfg = render.render(config, render.EdgeLayout(tmp_path))["kamailio.cfg"]
    for op in config.operators:
        assert f'if ($fU == "{op.sip_user}") {{\n\t\t$var(password) = "{op.sip_password}";' in cfg


def test_a_password_cannot_break_out_of_its_string():
    assert render.quoted('a"b\\c') == '"a\\"b\\\\c"'


def test_no_edge_no_kamailio_config(tmp_path):
    config = dataclasses.replace(edge_config(), edge=None)
    with pytest.raises(ValueError, match="no \\[edge\\]"):
        render.render(config, render.EdgeLayout(tmp_path))


def test_kamailio_accepts_the_rendered_config(tmp_path):
    # Kamailio's own parser (`kamailio -c`), with every module the template loads.
    config = dataclasses.replace(
        edge_config(),
        operators=tuple(
            dataclasses.replace(op, sip_password='p"w\\' + op.sip_password)
            for op in edge_config().operators
        ),
    )
    kamailio = Kamailio(config, render.EdgeLayout(tmp_path))
    kamailio.prepare()
    kamailio.check()


PAIR = {"hosts": ["10.9.0.2", "10.9.0.3"]}


def test_one_edge_renders_nothing_of_a_pair(tmp_path):
    cfg = render.render(edge_config(), render.EdgeLayout(tmp_path))["kamailio.cfg"]
    assert "#!define EDGE_PAIR" not in cfg
    assert "listen=udp:" in cfg and cfg.count("listen=udp:") == 2  # one, and the pair's
    with pytest.raises(ValueError, match="no hosts"):
        render.render(edge_config(), render.EdgeLayout(tmp_path), own_host="10.9.0.2")


def test_each_edge_of_a_pair_listens_on_its_own_address_too_and_copies_to_the_other(tmp_path):
    cfg = render.render(edge_config(**PAIR), render.EdgeLayout(tmp_path), own_host="10.9.0.3")[
        "kamailio.cfg"
    ]
    assert "#!define EDGE_PAIR" in cfg
    assert "ip_free_bind=1" in cfg  # the shared address is bound before it arrives
    assert "listen=udp:10.9.0.10:5060" in cfg and "listen=udp:10.9.0.3:5060" in cfg
    assert 'modparam("dmq", "server_address", "sip:10.9.0.3:5060")' in cfg
    assert 'modparam("dmq", "notification_address", "sip:10.9.0.2:5060")' in cfg
    assert 'modparam("dmq_usrloc", "enable", 1)' in cfg
    # Only the other edge may send DMQ; probes from the own address, calls from the shared.
    assert 'if ($si == "10.9.0.2") {\n\t\t\tdmq_handle_message();' in cfg
    assert 'modparam("dispatcher", "ds_default_socket", "udp:10.9.0.3:5060")' in cfg
    assert '$fs = "udp:10.9.0.10:5060";' in cfg
    with pytest.raises(ValueError, match="not one of"):
        render.render(edge_config(**PAIR), render.EdgeLayout(tmp_path), own_host="10.9.0.10")


def test_kamailio_accepts_the_rendered_config_of_a_pair(tmp_path):
    kamailio = Kamailio(edge_config(**PAIR), render.EdgeLayout(tmp_path), own_host="10.9.0.2")
    kamailio.prepare()
    kamailio.check()


def test_keepalived_gives_the_shared_address_to_one_edge_checked_on_kamailio(tmp_path):
    edge = edge_config(**PAIR).edge
    assert edge is not None
    layout = render.EdgeLayout(tmp_path)
    conf = keepalived_conf(edge, "10.9.0.3", "ens3", layout)
    assert "state BACKUP\n\tnopreempt" in conf
    assert "interface ens3" in conf and "10.9.0.10/32 dev ens3" in conf
    assert "unicast_src_ip 10.9.0.3" in conf
    assert "unicast_peer {\n\t\t10.9.0.2\n\t}" in conf
    assert f"-s unix:{layout.ctl_socket} core.uptime" in conf
    assert "virtual_router_id 112" in conf
    assert priority(edge, "10.9.0.2") > priority(edge, "10.9.0.3")  # the first is elected
    assert f"priority {priority(edge, '10.9.0.3')}" in conf
    with pytest.raises(ValueError, match="not one of"):
        keepalived_conf(edge, "10.9.0.10", "ens3", layout)


def test_keepalived_accepts_the_rendered_config(tmp_path):
    edge = edge_config(**PAIR).edge
    assert edge is not None
    layout = render.EdgeLayout(tmp_path)
    # keepalived checks that the interface exists and refuses the loopback.
    interfaces = [name for _, name in socket.if_nameindex() if name != "lo"]
    assert interfaces, "this machine has no network interface but the loopback"
    conf = keepalived_conf(edge, "10.9.0.2", interfaces[0], layout)
    (tmp_path / "keepalived.conf").write_text(conf)
    result = subprocess.run(
        [Keepalived.binary(), "--config-test", "--use-file", str(tmp_path / "keepalived.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


KAMCMD_LIST = """{
	NRSETS: 1
	RECORDS: {
		SET: {
			ID: 1
			TARGETS: {
				DEST: {
					URI: sip:10.9.0.12:5060
					FLAGS: IP
					PRIORITY: 0
				}
				DEST: {
					URI: sip:10.9.0.11:5060
					FLAGS: AP
					PRIORITY: 0
				}
			}
		}
	}
}
"""


def test_the_dispatchers_state_is_read_from_kamcmd():
    nodes = parse_dispatcher_list(KAMCMD_LIST)
    assert nodes == {"sip:10.9.0.12:5060": "IP", "sip:10.9.0.11:5060": "AP"}
    assert is_active(nodes["sip:10.9.0.11:5060"])
    assert not is_active(nodes["sip:10.9.0.12:5060"])


def test_the_command_renders_the_edge_of_a_siaga_toml(tmp_path, capsys):
    data = EXAMPLE.read_text() + (
        '\n[edge]\nsip_host = "10.9.0.10"\n\n'
        '[[asterisk.nodes]]\nname = "node_a"\nsip_host = "10.9.0.11"\n'
    )
    (tmp_path / "siaga.toml").write_text(data)
    assert edge_main([str(tmp_path / "siaga.toml"), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "kamailio.cfg").stat().st_mode & 0o077 == 0  # passwords inside
    assert "sip:10.9.0.11:5060" in (tmp_path / "out" / "dispatcher.list").read_text()
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "kamailio.cfg")


def test_the_command_renders_one_edge_of_a_pair_with_its_keepalived(tmp_path, capsys):
    data = EXAMPLE.read_text() + (
        '\n[edge]\nsip_host = "10.9.0.10"\nhosts = ["10.9.0.2", "10.9.0.3"]\n\n'
        '[[asterisk.nodes]]\nname = "node_a"\nsip_host = "10.9.0.11"\n'
    )
    (tmp_path / "siaga.toml").write_text(data)
    out = tmp_path / "out"
    args = [str(tmp_path / "siaga.toml"), str(out)]
    assert edge_main(args) == 1  # which edge is this, and on which interface?
    assert "--own and --interface" in capsys.readouterr().err
    assert edge_main([*args, "--own", "10.9.0.9", "--interface", "eth0"]) == 1
    assert "not one of" in capsys.readouterr().err
    assert edge_main([*args, "--own", "10.9.0.3", "--interface", "eth0"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "kamailio.cfg"), str(out / "keepalived.conf")]
    assert "unicast_src_ip 10.9.0.3" in (out / "keepalived.conf").read_text()
    assert "listen=udp:10.9.0.3:5060" in (out / "kamailio.cfg").read_text()


def test_the_command_refuses_a_siaga_toml_without_an_edge(tmp_path, capsys):
    assert edge_main([str(EXAMPLE), str(tmp_path / "out")]) == 1
    assert "no [edge]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
