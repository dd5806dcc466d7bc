"""The pure part of the netns testbed: names that fit Linux's limits, a subnet clear of the
machine's own, and which leftovers belong to runs that are gone."""

from __future__ import annotations

import ipaddress
import random

import pytest

from testbed import hosts

NAMES = ("edge", "node_a", "node_b", "callers", "operators")


def test_names_are_unique_per_run_and_fit_the_kernels_limits():
    one = hosts.plan(NAMES, [], pid=4194304, rng=random.Random(1))
    other = hosts.plan(NAMES, [], pid=4194304, rng=random.Random(2))
    assert one.stem != other.stem
    links = [one.bridge] + [one.veth(n) for n in NAMES] + [one.veth(n) + "p" for n in NAMES]
    assert all(len(name) <= 15 for name in links), links  # IFNAMSIZ - 1
    assert len(set(links)) == len(links)
    assert one.netns("node_b") == f"s112-4194304-{one.nonce}-node_b"


def test_hosts_get_addresses_in_the_runs_subnet_and_the_bridge_the_first():
    plan = hosts.plan(NAMES, [], rng=random.Random(3))
    assert plan.bridge_address == plan.subnet.network_address + 1
    addresses = [plan.address(n) for n in NAMES]
    assert len(set(addresses)) == len(NAMES)
    assert all(a in plan.subnet for a in addresses)
    assert plan.bridge_address not in addresses


def test_the_subnet_never_overlaps_a_network_the_machine_has():
    # All of 10/8 is taken but one /24: that one is the only answer.
    free = ipaddress.IPv4Network("10.200.7.0/24")
    taken = list(ipaddress.IPv4Network("10.0.0.0/8").address_exclude(free))
    assert hosts.choose_subnet(taken, random.Random(4)) == free
    with pytest.raises(hosts.HostsError):
        hosts.choose_subnet([ipaddress.IPv4Network("10.0.0.0/8")], random.Random(4))


def test_routes_and_addresses_are_read_from_ip_output():
    text = (
        "2: eth0    inet 172.17.0.5/16 brd 172.17.255.255 scope global eth0\n"
        "default via 172.17.0.1 dev eth0\n10.99.3.0/24 dev br0 proto kernel\n"
    )
    found = hosts.parse_routes(text)
    assert ipaddress.IPv4Network("172.17.0.0/16") in found
    assert ipaddress.IPv4Network("10.99.3.0/24") in found


def test_only_leftovers_of_runs_whose_process_is_gone_are_stale():
    names = ["s112-100-abc123-edge", "s112-100-abc123-node_a", "s112-200-def456-edge", "other"]
    assert hosts.stale_stems(names, alive={200}) == {"s112-100-abc123"}
    assert hosts.stale_stems(names, alive={100, 200}) == set()


def test_bad_host_names_are_refused():
    with pytest.raises(ValueError, match="host name"):
        hosts.plan(["Edge Host"], [])
    with pytest.raises(ValueError, match="repeat"):
        hosts.plan(["edge", "edge"], [])
