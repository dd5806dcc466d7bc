"""[edge] and [[asterisk.nodes]]: the high-availability topology (docs/ha.md) is opt-in, and
a mistake in it names file, key and reason."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from siaga.config import ConfigError, load_config, node_config, parse_config, this_node

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


def with_edge() -> dict:
    data = tomllib.loads(EXAMPLE.read_text())
    data["edge"] = {"sip_host": "10.9.0.10"}
    data["asterisk"]["nodes"] = [
        {"name": "node_a", "sip_host": "10.9.0.11"},
        {"name": "node_b", "sip_host": "10.9.0.12", "ari_url": "http://10.9.0.12:8089/"},
    ]
    return data


def refused(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "centre.toml")
    return info.value


def test_the_single_box_is_the_default():
    config = load_config(EXAMPLE)
    assert config.edge is None
    assert config.asterisk.nodes == ()
    assert config.asterisk.systemname == ""


def test_edge_and_nodes_are_read_with_their_defaults():
    config = parse_config(with_edge(), "centre.toml")
    assert config.edge is not None
    assert (config.edge.sip_host, config.edge.sip_port) == ("10.9.0.10", 5060)
    assert config.edge.probe_interval_seconds == 2
    assert config.edge.timeout_ms == 1000
    assert config.edge.rpc_port == 5062
    a, b = config.asterisk.nodes
    assert (a.name, a.sip_host, a.sip_port, a.ari_url) == (
        "node_a",
        "10.9.0.11",
        5060,
        "http://10.9.0.11:8088",
    )
    assert b.ari_url == "http://10.9.0.12:8089"


def test_a_pair_of_edges_lists_each_ones_own_address_beside_the_shared_one():
    data = with_edge()
    assert parse_config(data, "centre.toml").edge.hosts == ()  # type: ignore[union-attr]
    data["edge"].update(hosts=["10.9.0.2", "10.9.0.3"], virtual_router_id=51)
    edge = parse_config(data, "centre.toml").edge
    assert edge is not None
    assert (edge.sip_host, edge.hosts, edge.virtual_router_id) == (
        "10.9.0.10",
        ("10.9.0.2", "10.9.0.3"),
        51,
    )


def test_a_node_renders_with_its_own_addresses_and_systemname():
    config = parse_config(with_edge(), "centre.toml")
    node = node_config(config, config.asterisk.nodes[1])
    assert node.asterisk.systemname == "node_b"
    assert (node.asterisk.sip_host, node.asterisk.http_port) == ("10.9.0.12", 8089)
    assert node.operators == config.operators
    assert node.edge == config.edge


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda d: d["asterisk"]["nodes"][1].update(name="node_a"), "name", "duplicate"),
        (lambda d: d["asterisk"]["nodes"][0].update(name="node a"), "name", "letters"),
        (lambda d: d["asterisk"]["nodes"][0].update(sip_host="pbx.local"), "sip_host", "IP"),
        (lambda d: d["asterisk"]["nodes"][0].update(colour="red"), "colour", "unknown key"),
        (lambda d: d["edge"].update(probe_interval_seconds=0), "probe_interval", "1 or more"),
        (lambda d: d["edge"].update(timeout_ms=5), "timeout_ms", "100 to 30000"),
        (lambda d: d["edge"].update(rpc_port=5060), "edge.rpc_port", "differ from sip_port"),
        (lambda d: d["edge"].update(rpc_port=0), "edge.rpc_port", "between 1 and 65535"),
        (lambda d: d["asterisk"].update(nodes=[]), "edge.sip_host", "at least one"),
        (lambda d: d.pop("edge"), "asterisk", "need an [edge]"),
        (lambda d: d["edge"].update(hosts=["10.9.0.2"]), "edge.hosts", "two or more"),
        (lambda d: d["edge"].update(hosts=["10.9.0.2"] * 2), "edge.hosts", "twice"),
        (lambda d: d["edge"].update(hosts=["10.9.0.10", "10.9.0.2"]), "edge.hosts", "shared"),
        (lambda d: d["edge"].update(hosts=["10.9.0.2", "edge-b"]), "edge.hosts[1]", "IP"),
        (lambda d: d["edge"].update(hosts=["10.9.0.2", 3]), "edge.hosts[1]", "string"),
        (lambda d: d["edge"].update(virtual_router_id=0), "virtual_router_id", "1 to 255"),
    ],
)
def test_mistakes_are_named(change, key, reason):
    data = with_edge()
    change(data)
    error = refused(data)
    assert key in error.key
    assert reason in error.reason


def with_ha(**ha) -> dict:
    data = tomllib.loads(EXAMPLE.read_text())
    data["asterisk"]["embedded"] = False
    data["database"]["embedded"] = False
    data["ha"] = {"role": "auto", **ha}
    return data


def test_no_ha_section_is_the_single_box_without_a_lease():
    assert load_config(EXAMPLE).ha is None


def test_ha_is_read_with_its_defaults():
    ha = parse_config(with_ha(), "centre.toml").ha
    assert ha is not None
    assert (ha.role, ha.lease_seconds, ha.lock_key) == ("auto", 2.0, 112112)
    ha = parse_config(with_ha(lease_seconds=1.5, lock_key=7), "centre.toml").ha
    assert ha is not None
    assert (ha.lease_seconds, ha.lock_key) == (1.5, 7)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"role": "primary"}, "ha.role"),
        ({"lease_seconds": 0.1}, "ha.lease_seconds"),
        ({"lock_key": 2**64}, "ha.lock_key"),
        ({"lease": 2}, "ha.lease"),
    ],
)
def test_a_wrong_ha_key_is_refused(change: dict, key: str):
    assert refused(with_ha(**change)).key == key


@pytest.mark.parametrize("section", ["asterisk", "database"])
def test_ha_needs_a_shared_asterisk_and_database(section: str):
    data = with_ha()
    data[section]["embedded"] = True
    error = refused(data)
    assert error.key == "ha.role"
    assert f"[{section}] embedded = false" in error.reason


def test_siaga_run_on_a_node_must_say_which_node_it_is():
    config = parse_config(with_edge(), "centre.toml")
    node = this_node(config, "node_b")
    assert node is not None and node.sip_host == "10.9.0.12"
    with pytest.raises(ConfigError, match=r"centre.toml: asterisk.nodes: say which node.*node_a"):
        this_node(config, "")
    with pytest.raises(ConfigError, match=r"no node 'node_c' \(the nodes: node_a, node_b\)"):
        this_node(config, "node_c")


def test_the_single_box_is_no_node():
    config = load_config(EXAMPLE)
    assert this_node(config, "") is None
    with pytest.raises(ConfigError, match=r"no \[\[asterisk.nodes\]\] here"):
        this_node(config, "node_a")
