"""The HA benchmark's arithmetic: per-kind summaries over kills, and medians over runs."""

from __future__ import annotations

from typing import Any

from bench.bench_ha_topology import medians, offer_gap, summary


def kill_row(failover: float, **extra: Any) -> dict[str, Any]:
    row = {
        "failover_s": failover,
        "service_s": 0.0,
        "answer_max_s": 0.4,
        "cut": 1,
        "unanswered": 0,
        "no_human": 0,
        "calls": 32,
        "to_human_p50_s": 0.9,
        "to_human_max_s": 1.0,
    }
    return {**row, **extra}


def partition_row(failover: float, old_last: float, new_first: float) -> dict[str, Any]:
    overlaps = int(new_first <= old_last)
    return kill_row(
        failover, old_last_offer_s=old_last, new_first_offer_s=new_first, overlaps=overlaps
    )


def test_a_partition_summary_counts_the_kills_where_two_apps_offered_at_once() -> None:
    rows = [partition_row(6.0, 1.0, 7.0), partition_row(7.0, 2.0, 8.0), partition_row(9, 9, 8)]
    result = summary(rows)
    assert result["failover_s"] == {"p50": 7.0, "max": 9}
    assert result["new_first_offer_s"]["max"] == 8.0
    assert result["old_last_offer_s"]["max"] == 9
    assert result["overlaps"] == 1  # the last kill: the new app offered before the old stopped
    assert result["cut"] == 3 and result["calls"] == 96


def test_kinds_without_offers_have_no_overlap_count() -> None:
    result = summary([kill_row(3.0), kill_row(2.5, answer_max_s=2.2)])
    assert "overlaps" not in result and "new_first_offer_s" not in result
    assert result["answer_max_s"] == {"p50": 0.4, "max": 2.2}  # nearest rank


def test_medians_over_runs_add_up_the_overlaps() -> None:
    throughput = {
        nodes: {
            "completed_per_s": rate,
            "cpu": {node: {"per_call_s": 0.05} for node in ("node_a", "node_b")},
        }
        for nodes, rate in (("two_nodes", 7.0), ("one_node", 7.1))
    }
    runs = [
        {
            "partition": summary([partition_row(6.0 + i, 1.0, 7.0 + i)]),
            "throughput": throughput,
        }
        for i in range(3)
    ]
    runs[2]["partition"]["overlaps"] = 1
    result = medians(runs, ["partition"])
    assert result["partition_failover_s_p50"] == 7.0
    assert result["partition_new_first_offer_s_max"] == 8.0
    assert result["partition_overlaps"] == 1
    assert result["two_nodes_completed_per_s"] == 7.0


class Offers:
    """A topology whose nodes' records show these offers around a cut at 100.0."""

    def __init__(self, old: list[float], new: list[float]) -> None:
        self.old, self.new = old, new

    def offers_around(self, cut_off: str, cut_at: float, healed_at: float) -> Any:
        return self.old, self.new


def test_the_offer_gap_of_a_partition() -> None:
    bed: Any = Offers(old=[100.5, 101.2], new=[107.1, 108.0])
    assert offer_gap(bed, "node_a", 100.0, 120.0) == {
        "old_last_offer_s": 1.2,
        "new_first_offer_s": 7.1,
        "overlaps": 0,
    }
    both: Any = Offers(old=[100.5, 108.0], new=[107.1])
    assert offer_gap(both, "node_a", 100.0, 120.0)["overlaps"] == 1
    quiet: Any = Offers(old=[], new=[107.1])  # the cut-off app had nothing to offer
    assert offer_gap(quiet, "node_a", 100.0, 120.0) == {
        "old_last_offer_s": -1.0,
        "new_first_offer_s": 7.1,
        "overlaps": 0,
    }
