"""The console's pure rules, without HTTP: roles, CSRF and origin checks, redirect targets,
password rules, login throttling, CSV cells, the search form, charts, the catalogue of words,
and the board picture from a real ACD snapshot."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ari_app.app import acd_config
from db.reports import CallStats, Percentiles, ServiceLevel
from queues import events as acd
from queues.acd import Acd
from supervisor.board import board_view, targets
from supervisor.calllog import csv_cell, parse_search, valid_call_id
from supervisor.charts import Series, stacked_bars
from supervisor.i18n import MESSAGES, catalogue, translate
from supervisor.live import LiveCall
from supervisor.roles import GRANTS, Permission, Role, allowed
from supervisor.security import (
    DEV_PASSWORD,
    Admitted,
    Held,
    Limit,
    LoginLimiter,
    address_group,
    csrf_matches,
    hash_password,
    needs_rehash,
    origin_allowed,
    password_problem,
    safe_next,
    username_problem,
    verify_password,
)

ZONE = ZoneInfo("Asia/Jakarta")


def test_roles():
    assert allowed(None, Permission.PUBLIC)
    assert not allowed(None, Permission.SIGNED_IN)
    assert allowed(Role.SUPERVISOR, Permission.RECORDINGS)
    assert not allowed(Role.ADMIN, Permission.RECORDINGS), "IT staff do not hear citizens"
    assert not allowed(Role.ADMIN, Permission.LISTEN)
    assert not allowed(Role.OPERATOR, Permission.CALLS_ALL)
    assert not allowed(Role.SUPERVISOR, Permission.DESK)
    assert all(Permission.PUBLIC not in grants for grants in GRANTS.values())


def test_csrf_tokens_and_origins():
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd")
    assert not csrf_matches("", "")
    assert not csrf_matches(None, "abc")
    assert not csrf_matches("abc", None)
    assert origin_allowed(None, "console:8112", https=False)
    assert origin_allowed("http://console:8112", "console:8112", https=False)
    assert not origin_allowed("https://console:8112", "console:8112", https=False)
    assert origin_allowed("https://console:8112", "console:8112", https=True)
    assert not origin_allowed("http://console:8112", "console:8112", https=True)
    assert not origin_allowed("http://evil.example", "console:8112", https=False)
    assert not origin_allowed("null", "console:8112", https=False)


def test_redirects_stay_on_this_site():
    assert safe_next("/calls?number=08") == "/calls?number=08"
    for bad in (None, "", "https://evil.example/", "//evil.example/", "/\\evil", "/a\nb", "x"):
        assert safe_next(bad) is None, bad


def test_passwords():
    hashed = hash_password("a good password")
    assert hashed.startswith("$argon2id$") and not needs_rehash(hashed)
    assert verify_password(hashed, "a good password")
    assert not verify_password(hashed, "a good passworD")
    assert not verify_password(None, "a good password")
    assert not verify_password("not a hash", "a good password")
    assert password_problem("sari", "a good password") is None
    assert "10" in password_problem("sari", "short")
    assert password_problem("sari", DEV_PASSWORD)
    assert password_problem("sari-santoso", "Sari-Santoso")
    assert username_problem("sari.s_1") is None
    assert username_problem("<b>") and username_problem("") and username_problem("-x")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fail(limiter: LoginLimiter, username: str, client: str) -> None:
    assert isinstance(limiter.admit(username, client), Admitted), (username, client)


def sign_in(limiter: LoginLimiter, username: str, client: str) -> None:
    attempt = limiter.admit(username, client)
    assert isinstance(attempt, Admitted), (username, client)
    limiter.succeeded(attempt)


def test_one_address_guessing_one_name_waits_longer_and_longer():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    waits = []
    for _ in range(10):
        fail(limiter, "sari", "10.0.0.1")
        waits.append(limiter.retry_after("sari", "10.0.0.1"))
        if waits[-1]:
            assert limiter.admit("SARI ", "10.0.0.1") == Held(waits[-1], Limit.USER_AT_SOURCE)
            assert limiter.retry_after("sari", "10.0.0.1") == waits[-1], "held: not counted"
        clock.now += waits[-1]
    assert waits == [0, 0, 1, 2, 4, 8, 16, 30, 30, 30]
    assert limiter.retry_after("budi", "10.0.0.1") == 0, "another name at that desk may try"


def test_one_address_guessing_many_names_waits_longer_and_longer():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    for i in range(10):
        fail(limiter, f"user{i}", "10.0.0.1")
    held = limiter.admit("dewi", "10.0.0.1")
    assert held == Held(1.0, Limit.SOURCE)
    clock.now += 1
    fail(limiter, "dewi", "10.0.0.1")
    assert limiter.admit("eko", "10.0.0.1") == Held(2.0, Limit.SOURCE)
    assert limiter.retry_after("eko", "10.0.0.2") == 0, "other desks are not held"


def test_guessing_a_name_from_many_addresses_does_not_lock_out_its_user():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    sign_in(limiter, "sari", "10.0.0.5")  # her desk
    for i in range(200):
        attempt = limiter.admit("sari", f"192.0.2.{i}")
        if isinstance(attempt, Held):
            assert attempt.by is Limit.USER and attempt.seconds <= 5
            clock.now += attempt.seconds
            fail(limiter, "sari", f"192.0.2.{i}")
        clock.now += 0.1
    assert limiter.retry_after("sari", "10.0.0.9") == pytest.approx(4.9), "a new desk: seconds"
    # the guessers together were held to one try per 5 s once the delay was at its cap
    assert clock.now > 5 * 150
    # at her own desk the right password goes straight through, attacked or not
    sign_in(limiter, "sari", "10.0.0.5")
    # until her desk is forgotten
    clock.now += limiter.known_seconds
    for i in range(5):
        fail(limiter, "sari", f"198.51.100.{i}")
    assert limiter.admit("sari", "10.0.0.5") == Held(1.0, Limit.USER)


def test_parallel_guesses_count_before_they_are_judged_and_success_takes_one_back():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    attempts = [limiter.admit("sari", "10.0.0.1") for _ in range(4)]
    assert [type(a) for a in attempts] == [Admitted, Admitted, Admitted, Held]
    limiter.succeeded(attempts[2])  # the third was the right password
    assert limiter.retry_after("sari", "10.0.0.1") == 0, "her own failures here are forgiven"
    for i in range(7):
        fail(limiter, f"user{i}", "10.0.0.1")
    # the source has 2 + 7 failures, not 10: the success took its own back
    assert isinstance(limiter.admit("dewi", "10.0.0.1"), Admitted)
    assert limiter.admit("eko", "10.0.0.1") == Held(1.0, Limit.SOURCE)


def test_failures_are_forgotten_and_memory_is_bounded():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(3):
        fail(limiter, "sari", "10.0.0.1")
    clock.now += limiter.memory_seconds
    assert limiter.retry_after("sari", "10.0.0.1") == 0
    assert limiter._failures == {}
    small = LoginLimiter(max_keys=4)
    for i in range(10):
        fail(small, f"u{i}", f"10.0.0.{i}")
    assert len(small._failures) == 4


def test_sources_are_counted_per_ipv4_address_and_per_ipv6_64():
    assert address_group("10.0.0.1") == "10.0.0.1"
    assert address_group("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_group("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64"
    assert address_group("fe80::1%eth0") == "fe80::/64"
    assert address_group("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_group("unknown") == "unknown"
    limiter = LoginLimiter(clock=Clock())
    for i in range(3):
        fail(limiter, "sari", f"2001:db8:1:2::{i + 1}")
    assert limiter.admit("sari", "2001:db8:1:2::99") == Held(1.0, Limit.USER_AT_SOURCE)


def test_csv_cells_do_not_run_as_formulas():
    assert csv_cell(None) == ""
    assert csv_cell("+6281234") == "+6281234"
    assert csv_cell(-3.5) == "-3.5"
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("+cmd|' /C calc'!A0") == "'+cmd|' /C calc'!A0"
    assert csv_cell(("silent", "repeat")) == "silent;repeat"


def test_call_ids_safe_as_file_names():
    assert valid_call_id("1700000000.123")
    assert valid_call_id("t-abc_DEF.1")
    for bad in ("", "../x", "a/b", ".hidden", "a..b", "x" * 200, "a b"):
        assert not valid_call_id(bad), bad


def test_the_search_form():
    form = parse_search(
        {"number": " 0812 ", "from": "2025-01-02", "to": "2025-01-03", "outcome": "answered"},
        ["silent", "nonsense"],
        ZONE,
        categories=["medical"],
    )
    assert not form.invalid
    where = form.where
    assert where.number == "0812" and where.outcome == "answered" and where.flags == ("silent",)
    assert where.since.isoformat() == "2025-01-02T00:00:00+07:00"
    assert where.until.isoformat() == "2025-01-04T00:00:00+07:00"
    bad = parse_search({"category": "pizza", "from": "kemarin"}, [], ZONE, categories=["fire"])
    assert bad.invalid and bad.where.category is None and bad.where.since is None
    own = parse_search({"operator": "1002"}, [], ZONE, categories=[], operator="1001")
    assert own.where.operator == "1001"


def test_charts_escape_their_text():
    svg = stacked_bars("<t>", ["<b>", "x"], [Series("<s>", "bar-x", [1, 2])])
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "&lt;s&gt;" in svg
    assert svg.count("<rect") == 3  # two bars and one legend key


def test_every_word_in_both_languages_and_every_key_used_exists():
    for key, (indonesian, english) in MESSAGES.items():
        assert indonesian and english, key
    assert translate("nav.board", "id") == "Papan pantau"
    assert translate("nav.board", "en") == "Live board"
    assert translate("no.such.key", "en") == "no.such.key"
    assert catalogue("en")["nav.calls"] == "Call log"
    folder = Path(str(resources.files("supervisor")))
    used: set[str] = set()
    for template in (folder / "templates").glob("*.html"):
        used |= set(re.findall(r"t\('([a-z_.]+)'\)", template.read_text()))
    used |= set(re.findall(r'\bt\("([a-z_.]+)"\)', (folder / "static/console.js").read_text()))
    missing = {key for key in used if key not in MESSAGES}
    assert not missing


def test_the_board_from_a_real_acd_snapshot(console_config):
    engine = Acd(acd_config(console_config), 0.0)
    engine.handle(acd.OperatorLoggedIn("1001", {"fire": 1}), 0.0)
    engine.handle(acd.OperatorPaused("1001", "meal"), 1.0)
    engine.handle(acd.CallQueued("c-1", "fire", 2.0, None, frozenset({"silent"})), 2.0)
    engine.handle(acd.CallQueued("c-2", "fire", 4.0), 4.0)
    engine.handle(acd.Tick(), 9.5)
    calls = [LiveCall("c-1", "0812", "<b>Ani</b>", "fire", "queued", None, frozenset(), 7.5)]
    none = Percentiles(0, None, None, None)

    def stats(scope, category, levels):
        return CallStats(
            scope=scope,
            category=category,
            bucket=None,
            route=None,
            received=4,
            answered=3,
            abandoned=1,
            abandoned_short=0,
            unanswered=0,
            fallback=0,
            ongoing=0,
            service_levels=levels,
            asa_seconds=4.0,
            longest_wait_seconds=12.0,
            disposed=0,
            prank=0,
            silent=0,
            prank_share=None,
            silent_share=None,
            to_ring=none,
            to_answer=none,
        )

    today = [
        stats("total", None, (ServiceLevel(10.0, 2, 0.5), ServiceLevel(15.0, 3, 0.87))),
        stats("category", "fire", (ServiceLevel(10.0, 2, 0.5), ServiceLevel(15.0, 3, 0.75))),
    ]
    board = board_view(engine.snapshot(), calls, today, console_config, "en")
    fire = next(c for c in board["categories"] if c["code"] == "fire")
    assert fire["label"] == "Fire"
    assert [(w["call_id"], w["age"], w["flags"]) for w in fire["waiting"]] == [
        ("c-1", 7, ["silent"]),
        ("c-2", 5, []),
    ]
    assert fire["longest"] == 7 and fire["sl"] == 0.5 and fire["target"] == 10
    operator = board["operators"][0]
    assert (operator["id"], operator["state"], operator["reason"], operator["seconds"]) == (
        "1001",
        "paused",
        "meal",
        8,
    )
    assert board["calls"][0]["name"] == "<b>Ani</b>", "data; the browser sets it as text"
    assert board["today"]["received"] == 4
    assert board["oldest"] == {"call_id": "c-1", "age": 7, "category": "Fire"}
    assert board["goal"] == {
        "seconds": 15,
        "target": 0.9,
        "ratio": 0.87,
        "met": False,
        "text": "SL today 15 s: 87 % (target 90 %)",
    }
    assert targets(console_config) == (10, 15, 60, 120)  # the categories' targets, the goal's
    calm = board_view(Acd(acd_config(console_config), 0.0).snapshot(), [], [], console_config, "id")
    assert calm["oldest"] is None
    assert calm["goal"]["text"] == "Tingkat layanan hari ini 15 d: - (target 90 %)"
