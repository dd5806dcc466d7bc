"""Pools of available operators, one kind per strategy."""

from __future__ import annotations

from queues.pools import HeapPool, RoundRobinPool


def test_heap_pool_gives_the_smallest_key_and_forgets_removed_operators() -> None:
    pool = HeapPool()
    pool.add("a", (30.0, 0))
    pool.add("b", (10.0, 1))
    pool.add("c", (20.0, 2))
    assert pool.best() == "b"
    pool.discard("b")
    assert pool.best() == "c"
    assert "b" not in pool and len(pool) == 2
    assert pool.members() == ["c", "a"]


def test_heap_pool_re_adding_with_a_new_key_replaces_the_old_one() -> None:
    pool = HeapPool()
    pool.add("a", (1.0, 0))
    pool.add("b", (2.0, 1))
    pool.discard("a")
    pool.add("a", (3.0, 0))
    assert pool.best() == "b"
    pool.discard("b")
    assert pool.best() == "a"


def test_heap_pool_stays_small_under_churn() -> None:
    pool = HeapPool()
    for i in range(10_000):
        pool.add("a", (float(i), 0))
        pool.discard("a")
    pool.add("b", (0.0, 1))
    assert pool.best() == "b"
    assert len(pool._heap) < 200


def test_round_robin_cycles_after_the_last_chosen() -> None:
    pool = RoundRobinPool()
    for op in ("c", "a", "b"):
        pool.add(op, ())
    picked = []
    for _ in range(4):
        op = pool.best()
        pool.chosen(op)
        picked.append(op)
    assert picked == ["a", "b", "c", "a"]
    assert pool.members() == ["b", "c", "a"]


def test_round_robin_skips_absent_operators_and_wraps() -> None:
    pool = RoundRobinPool()
    for op in ("a", "b", "c"):
        pool.add(op, ())
    pool.chosen("b")
    pool.discard("c")
    assert pool.best() == "a"
    pool.discard("a")
    pool.discard("a")
    assert pool.best() == "b" and len(pool) == 1
