"""The isolation rule (ari_app/isolation.py): alone for `after` seconds, the app must stop."""

from __future__ import annotations

from ari_app.isolation import Isolation


def test_alone_for_the_whole_time_is_isolated() -> None:
    isolation = Isolation(after=3.0)
    assert not isolation.observe(100.0, peers_answered=0)
    assert not isolation.observe(102.9, peers_answered=0)
    assert isolation.observe(103.0, peers_answered=0)


def test_one_machine_answering_starts_the_count_afresh() -> None:
    # The other node dead, the edge alive: the app serves on, however long that lasts.
    isolation = Isolation(after=3.0)
    assert not isolation.observe(100.0, peers_answered=0)
    assert not isolation.observe(102.0, peers_answered=1)
    assert isolation.alone_since is None
    assert not isolation.observe(104.0, peers_answered=0)
    assert not isolation.observe(106.5, peers_answered=0)
    assert isolation.observe(107.0, peers_answered=0)


def test_never_alone_is_never_isolated() -> None:
    isolation = Isolation(after=3.0)
    assert not any(isolation.observe(100.0 + t, peers_answered=1) for t in range(60))
