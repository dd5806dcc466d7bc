"""The pure parts of the HA topology's testbed: each app's siaga.toml, and what the records say
happened to each call (SIPp's per-call log joined with the nodes' CEL)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from db.cel import AsteriskCall, CelEvent
from siaga.config import load_config
from testbed.hosts import Host
from testbed.sipp import Sipp, caller_scenario, read_call_times
from testbed.topology import (
    OPERATORS,
    SHIPPED,
    CallerStream,
    CallFate,
    NodeApp,
    app_toml,
    disturbed_until,
    fates,
    originations,
)

ADDRESSES = {
    "edge": "10.100.1.10",
    "node_a": "10.100.1.11",
    "node_b": "10.100.1.12",
    "callers": "10.100.1.13",
    "operators": "10.100.1.14",
}
DSN = (
    "postgresql://siaga:pw@10.100.1.11:5432,10.100.1.12:5432/siaga?target_session_attrs=read-write"
)


def test_each_app_reads_the_one_ha_shape_with_its_own_node(tmp_path: Path) -> None:
    configs = {}
    for node in ("node_a", "node_b"):
        path = tmp_path / f"{node}.toml"
        text = app_toml(
            SHIPPED.read_text(),
            node=node,
            addresses=ADDRESSES,
            dsn=DSN,
            log_dir=tmp_path / node / "log",
            recordings_dir=tmp_path / node / "recordings",
        )
        path.write_text(text)
        configs[node] = load_config(path)
    a, b = configs["node_a"], configs["node_b"]
    for config in (a, b):
        assert [n.name for n in config.asterisk.nodes] == ["node_a", "node_b"]
        assert [n.sip_host for n in config.asterisk.nodes] == ["10.100.1.11", "10.100.1.12"]
        assert config.edge is not None and config.edge.sip_host == "10.100.1.10"
        assert config.ha is not None and config.ha.lease_seconds == 2.0
        assert not config.asterisk.embedded and not config.database.embedded
        assert config.database.url == DSN
        assert [op.id for op in config.operators] == [str(1001 + i) for i in range(OPERATORS)]
    # What two apps on one machine need of their own: the console, the node's log folder.
    assert (a.web.host, b.web.host) == ("10.100.1.11", "10.100.1.12")
    assert a.asterisk.log_dir == str(tmp_path / "node_a" / "log")
    assert b.asterisk.log_dir == str(tmp_path / "node_b" / "log")
    assert a.asterisk.ari_url == "http://10.100.1.11:8088"


def test_a_timeline_caller_logs_its_invite_and_its_answer(tmp_path: Path) -> None:
    scenario = caller_scenario(routed=True, caller_id="0812[call_number]", timeline=True)
    root = ET.fromstring(scenario.encode("iso-8859-1"))
    logs = [e.get("message") for e in root.iter("log")]
    assert logs == [
        "[call_number] invite [$invite_s] [$invite_us]",
        "[call_number] answered [$answered_s] [$answered_us]",
    ]
    answered = next(e for e in root.iter("recv") if e.get("response") == "200")
    assert answered.find("action/gettimeofday") is not None
    plain = ET.fromstring(caller_scenario().encode("iso-8859-1"))
    assert not list(plain.iter("log"))

    log = tmp_path / "calls.log"
    log.write_text(
        "1 invite 1796320000 250000\n1 answered 1796320000 500000\n"
        "2 invite 1796320001 5\nnoise line\n"
    )
    assert read_call_times(log) == {
        1: {"invite": 1796320000.25, "answered": 1796320000.5},
        2: {"invite": 1796320001.000005},
    }


def _call(call_id: str, number: str, connected: float | None) -> AsteriskCall:
    at = datetime.fromtimestamp(100, UTC)
    return AsteriskCall(
        call_id=call_id,
        channel="PJSIP/trunk-1",
        caller_number=number,
        arrived_at=at,
        answered_at=at,
        connected_at=None if connected is None else datetime.fromtimestamp(connected, UTC),
        operator_id=None,
        ended_at=None,
        hangup_by=None,
        fallback=False,
        last_event_at=at,
    )


def test_fates_join_each_sipp_call_with_the_node_that_took_it(tmp_path: Path) -> None:
    stream = CallerStream(Sipp("", 5060, workdir=tmp_path), "0812340", rate=2, calls=3)
    stream.log_path.write_text(
        "1 invite 100 0\n1 answered 100 10000\n2 invite 101 0\n3 invite 102 0\n3 answered 103 0\n"
    )
    by_node = {
        "node_a": [_call("node_a-1", "08123401", 101.0), _call("node_a-9", "0899", None)],
        "node_b": [_call("node_b-3", "08123403", None)],
    }
    result = fates(stream, by_node)
    assert [(f.number, f.node, f.human) for f in result] == [
        (1, "node_a", 101.0),
        (2, None, None),  # no node ever saw it
        (3, "node_b", None),
    ]
    assert stream.call_number("081234012") == 12
    assert stream.call_number("0899") is None


def test_disturbed_until_the_last_call_lost_or_answered_late() -> None:
    calls = [
        CallFate(1, 99.0, None, None, None),  # before the failure: not counted
        CallFate(2, 100.5, 100.6, "node_b", None),
        CallFate(3, 101.0, None, None, None),  # lost
        CallFate(4, 102.0, 103.5, "node_b", None),  # answered 1.5 s late
        CallFate(5, 103.0, 103.1, "node_b", None),
    ]
    assert disturbed_until(calls, 100.0) == 3.5
    assert disturbed_until(calls[4:], 100.0) == 0.0


def test_originations_are_the_operator_legs_stasis_arguments() -> None:
    at = datetime.fromtimestamp(200, UTC)

    def start(app: str, data: str) -> CelEvent:
        return CelEvent("APP_START", at, "node_a-5", "PJSIP/1001-1", app=app, app_data=data)

    events = [
        start("Stasis", "siaga,operator,node_a-1.1,1001"),
        start("Stasis", "siaga"),  # a caller entering the app
        start("Stasis", "other,operator,x,1002"),  # another Stasis app's
        start("Queue", "siaga-fallback"),
    ]
    [leg] = originations("node_a", events, "siaga")
    assert (leg.at, leg.node, leg.call_id, leg.operator_id) == (
        200.0,
        "node_a",
        "node_a-1.1",
        "1001",
    )


def test_an_apps_halts_are_read_from_its_log(tmp_path: Path) -> None:
    host = Host("node_a", "s112-node_a", "10.0.0.11", "s112-node_a-v")
    app = NodeApp("node_a", host, tmp_path / "siaga.toml", tmp_path / "state-a")
    app.log_path.write_text(
        "Siaga 112 is a standby: http://10.0.0.11:8112/healthz\n"
        "2026-12-03T22:40:14.186197Z [error    ] stack.halted                   "
        "reason='lock session lost'\n"
        "2026-12-03T22:40:20.073373Z [info     ] stack.standby                  key=112112\n"
        "2026-12-03T22:40:57.903682Z [error    ] stack.halted                   reason=isolated\n"
    )
    cut = datetime(2026, 12, 3, 22, 40, 15, tzinfo=UTC).timestamp()
    ((at, why),) = app.halts(cut)
    assert why == "isolated"
    assert round(at - cut, 3) == 42.904
    assert [why for _, why in app.halts(0.0)] == ["lock session lost", "isolated"]
