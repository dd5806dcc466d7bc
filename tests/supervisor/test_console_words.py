"""Plain words everywhere: every code the console can show has words in Indonesian and English,
and no page shows a raw code (`call_arrived`, `operator_pause`, `medical`, `caller`...) as text,
for any role, in either language; error pages come in the layout and the user's language."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from console_support import settled

from ari_app.call.states import ListenMode
from db.events import Facts, HangupBy, OfferFailure, OverflowOutcome, Verdict
from queues.states import OperatorState
from siaga.config import PAUSE_REASONS, SYSTEM_PAUSE_REASONS, Config
from supervisor import store
from supervisor.i18n import MESSAGES
from supervisor.store import AuditAction
from supervisor.words import AGENCY_REQUESTED, CALL_FLAGS, VOCABULARIES, Words

ROOT = Path(__file__).resolve().parents[2]


# -- every code has words ----------------------------------------------------------------------


def _has_words(key: str) -> bool:
    pair = MESSAGES.get(key)
    return pair is not None and all(text.strip() for text in pair)


@pytest.mark.parametrize("prefix", sorted(VOCABULARIES))
def test_every_member_of_every_vocabulary_has_words_in_both_languages(prefix: str) -> None:
    missing = [code for code in VOCABULARIES[prefix] if not _has_words(prefix + code)]
    assert missing == []


def test_every_pause_reason_and_data_key_has_words() -> None:
    reasons = {*PAUSE_REASONS.values(), *SYSTEM_PAUSE_REASONS}
    assert [r for r in sorted(reasons) if not _has_words("pause." + r)] == []
    # The data keys of every event kind: the parameters of its typed constructor.
    keys = {
        name
        for attribute in vars(Facts).values()
        if isinstance(attribute, staticmethod)
        for name in inspect.signature(attribute.__func__).parameters
    } - {"operator_id"}
    assert {"caller_number", "hangup_by", "cause", "flags", "reason"} <= keys
    assert [k for k in sorted(keys) if not _has_words("data." + k)] == []


def test_feature_codes_and_listen_modes_are_audit_actions() -> None:
    from agi.features import Action

    for action in Action:
        assert AuditAction(f"operator_{action.value}")
    for mode in ListenMode:
        assert AuditAction(f"call_{mode.value}")


def test_every_flag_set_in_the_code_is_a_known_flag() -> None:
    """A flag added where calls are flagged, without words here, fails this test."""
    patterns = (
        r'flags\.add\("([a-z_]+)"\)',
        r'flag_set\(\s*"([a-z_]+)"',
        r'^[A-Z_]*FLAG = "([a-z_]+)"',
        r'\{UNCLASSIFIED, "([a-z_]+)" if self\.spoke else "([a-z_]+)"\}',
    )
    found: set[str] = set()
    for folder in ("ari_app", "agi", "db", "stack", "supervisor"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            for pattern in patterns:
                for match in re.finditer(pattern, text, re.M):
                    found |= {g for g in match.groups() if g}
    assert {"repeat", "adopted", "cannot_speak", "fallback", "silent"} <= found
    assert sorted(found - set(CALL_FLAGS)) == []


def test_causes_are_words_with_their_number(console_config: Config) -> None:
    words = Words(console_config, "id")
    assert words.cause("16") == "ditutup normal (16)"
    assert words.cause(17) == "sibuk (17)"
    assert words.cause("99") == "sebab Q.850 99"
    assert Words(console_config, "en").cause("127") == "interworking, unspecified (127)"
    assert words.end_reason("pbx_restart") == "PBX dimulai ulang"


def test_values_in_words(console_config: Config) -> None:
    id_, en = Words(console_config, "id"), Words(console_config, "en")
    assert id_.value("call_ended", "hangup_by", "caller") == "penelepon"
    assert en.value("call_ended", "hangup_by", "caller") == "the caller"
    assert id_.value("call_arrived", "flags", ["repeat", "silent"]) == "berulang, diam"
    assert id_.flag(f"{AGENCY_REQUESTED}:police") == "instansi diminta: Polisi 110"
    assert id_.value("flag_set", "target", "category:medical") == "Medis / ambulans"
    assert id_.value("offer_failed", "reason", "no_answer") == "tidak diangkat"
    assert id_.value("operator_state", "reason", "meal") == "makan"
    assert id_.value("operator_state", "reason", "wrap_up_over") == "penyelesaian selesai"
    assert id_.value("call_abandoned", "state", "queue") == "di antrean"
    assert id_.value("operator_state", "state", "on_call") == "dalam panggilan"
    assert en.value("calls_export", "query", "category=fire&flag=repeat") == (
        "Category Fire, Flags repeat"
    )
    assert id_.operator("1001") == "Operator Satu" and id_.operator("9999") == "9999"
    assert id_.key("caller_number") == "nomor penelepon"
    assert id_.value("recording_play", "found", True) == "ya"
    assert id_.data("operator_state", {"state": "paused", "reason": "meal"}) == [
        ("alasan", "makan"),
        ("status", "jeda"),
    ]
    assert id_.audit_target("operator_pause", "1002") == "Operator Dua"
    assert id_.audit_target("number_block", "0812") == "0812"


# -- no page shows a raw code ------------------------------------------------------------------


def visible_text(html: str) -> str:
    """What a person reads: no scripts, no tags (attributes and hidden ids are allowed)."""
    html = re.sub(r"<script\b.*?</script>", " ", html, flags=re.S)
    html = re.sub(r"<style\b.*?</style>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]*>", " ", html))


def _tokens(text: str) -> set[str]:
    # Lower-case words only: "Medis" is not the code "medis", "medical" is.
    return set(re.findall(r"(?<![A-Za-z0-9_])[a-z][a-z0-9_]*(?::[a-z0-9_]+)?", text))


def known_codes(config: Config) -> set[str]:
    codes = {code for members in VOCABULARIES.values() for code in members}
    codes |= {c.code for c in config.categories} | {a.code for a in config.agencies}
    codes |= {key.removeprefix("data.") for key in MESSAGES if key.startswith("data.")}
    codes |= {*PAUSE_REASONS.values(), *SYSTEM_PAUSE_REASONS, f"{AGENCY_REQUESTED}:police"}
    return codes


def indonesian_words(config: Config) -> set[str]:
    """Words of the Indonesian console (a code that is also one, like "operator", is fine)."""
    texts = [pair[0] for pair in MESSAGES.values()]
    texts += [c.label_id for c in config.categories] + [a.name for a in config.agencies]
    texts += [op.name for op in config.operators] + [config.centre.name]
    return set().union(*(_tokens(text) for text in texts))


def raw_codes(html: str, lang: str, config: Config) -> set[str]:
    text = visible_text(html)
    shown = _tokens(text)
    codes = known_codes(config)
    if lang == "id":
        found = (shown & codes) - indonesian_words(config)
    else:  # English words double as codes ("answered"): only the snake_case ones are sure
        found = {code for code in shown & codes if "_" in code or ":" in code}
    found |= set(re.findall(r"(?:cause|sebab): \d+", text))
    return found


T0 = datetime.now(UTC) - timedelta(hours=1)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record_every_kind(centre, config: Config) -> list[str]:
    """Calls covering every event kind, flag, outcome, hang-up side and end reason."""
    write = centre.record
    calls = []
    flags = [*CALL_FLAGS, f"{AGENCY_REQUESTED}:police"]
    sides = list(HangupBy)
    for n, (side, reason, cause) in enumerate(
        [
            (sides[0], "normal", "16"),
            (sides[1], "normal", "99"),
            (sides[2], "normal", None),
            (sides[3], "pbx_restart", None),
            (HangupBy.SYSTEM, "gone_while_app_away", None),
        ]
    ):
        call_id, op = f"w-{n}", "1001" if n % 2 == 0 else "1002"
        calls.append(call_id)
        category = config.categories[n % len(config.categories)].code

        def put(fact, s, call_id=call_id, base=n * 100):
            write(fact.stamp(call_id=call_id, at=_at(base + s)))

        put(Facts.call_arrived(f"08121111000{n}", caller_name="Budi", flags=flags), 0)
        put(Facts.ivr_step("main", input="invalid", digit="7", language="id"), 1)
        put(Facts.ivr_step("main", input="choice", digit="1", language="en"), 2)
        put(Facts.call_classified(category, priority=1, flags=flags, language="id"), 3)
        put(Facts.call_queued(category=category, position=1), 4)
        put(Facts.call_announced(position=1, ewt_seconds=12.0), 5)
        put(Facts.call_offered(op), 6)
        put(Facts.offer_failed(op, OfferFailure.NO_ANSWER), 7)
        put(Facts.offer_failed(op, "ring_timeout"), 8)
        put(Facts.call_offered(op), 9)
        put(Facts.call_connected(op), 10)
        put(Facts.call_classified("police", flags=flags, operator_id=op, source="operator"), 11)
        put(Facts.call_transferred("police", to="PJSIP/110"), 12)
        put(Facts.agency_added("fire"), 13)
        for i, flag in enumerate(flags):
            put(Facts.flag_set(flag), 14 + i / 100)
        rule = "max_wait"
        put(
            Facts.flag_set("overflow", target="category:fire", rule=rule, from_category="medical"),
            15,
        )
        put(
            Facts.overflow_outcome("PJSIP/mitra", OverflowOutcome.FAILED, rule=rule, cause="17"),
            16,
        )
        put(
            Facts.operator_state(op, OperatorState.ON_CALL, reason="answered", previous="offered"),
            17,
        )
        put(Facts.disposition(op, list(Verdict)[n], notes="pingsan", location="Pasar"), 18)
        put(Facts.call_ended(side, reason=reason, cause=cause), 19)
        put(Facts.operator_state(op, OperatorState.PAUSED, reason="prayer", previous="wrap_up"), 20)

    def put_other(fact, call_id, s):
        write(fact.stamp(call_id=call_id, at=_at(s)))

    for n, state in enumerate(("arrived", "ivr", "queue")):  # abandoned: callbacks
        call_id = f"w-a{n}"
        calls.append(call_id)
        put_other(Facts.call_arrived(f"08122222000{n}", flags=["repeat"]), call_id, 900 + n)
        put_other(Facts.call_classified("medical", flags=["repeat"]), call_id, 901 + n)
        put_other(
            Facts.call_abandoned(
                position=1, wait_seconds=5, state=state, cause="16", category="fire"
            ),
            call_id,
            902 + n,
        )
    put_other(Facts.callback_updated(status="claimed", owner="1002"), "w-a1", 950)
    put_other(
        Facts.callback_updated(status="done", owner="1001", outcome="unreached"),
        "w-a2",
        951,
    )
    calls.append("w-live")
    put_other(Facts.call_arrived("081233330000", flags=["unclassified"]), "w-live", 960)
    write(Facts.caller_flag_set("081299990000", "blocked", reason="iseng", set_by="sup").stamp())
    return calls


async def audit_every_action(db, config: Config) -> None:
    detail = {
        "category": "medical",
        "reason": "meal",
        "limit": "user_at_source",
        "found": True,
        "query": "category=fire&outcome=answered&flag=silent&operator=1001",
        "source": "phone",
        "role": "operator",
        "delay_seconds": 2.0,
        "age_days": 800,
        "kept_days": 730,
        "bytes": 100,
    }
    for action in AuditAction:
        await store.audit(db, action, username="op1", role="supervisor", target="x", detail=detail)
    for role in ("cli", "phone", "retention", None):
        await store.audit(db, AuditAction.LOGOUT, username=None, role=role)


PAGES = {
    "op1": ["/operator", "/calls", "/calls/w-0", "/calls/w-2", "/board", "/no-such-page"],
    "sup": ["/board", "/calls", "/reports", "/calls/no-such-call", "/no-such-page"],
    "admin": ["/audit", "/calls", "/reports", "/admin/users", "/password"],
}
# reports: the shift summary and a sorted page of the call log
PAGES["sup"] += ["/reports/shift", "/calls?sort=category&dir=asc&size=100"]


@pytest.mark.parametrize("lang", ["id", "en"])
async def test_no_page_shows_a_raw_code(sign_in, centre, writer, db, console_config, lang):
    calls = record_every_kind(centre, console_config)
    await audit_every_action(db, console_config)
    await settled(writer)
    pages = {name: list(paths) for name, paths in PAGES.items()}
    pages["sup"] += [f"/calls/{call_id}" for call_id in calls]
    today = datetime.now(UTC).date()
    pages["sup"].append(f"/reports?from={today - timedelta(days=1)}&to={today}&by=day")
    shown: dict[str, set[str]] = {}
    for name, paths in pages.items():
        browser = await sign_in(name)
        browser.session.cookie_jar.update_cookies({"siaga_lang": lang})
        for path in paths:
            status, body = await browser.text(path)
            assert status in (200, 403, 404), (name, path, status)
            assert f'lang="{lang}"' in body, (name, path, "in the layout and the language")
            found = raw_codes(body, lang, console_config)
            if found:
                shown[f"{name} {path}"] = found
    assert shown == {}
    # ... and the pages did show the records, in words.
    _, body = await browser.text("/calls")
    words = Words(console_config, lang)
    assert visible_text(body).count(words.operator("1001")) >= 3
    sup = await sign_in("sup")
    sup.session.cookie_jar.update_cookies({"siaga_lang": lang})
    _, body = await sup.text("/calls/w-0")
    text = visible_text(body)
    for shown_word in (
        words.event("call_arrived"),
        words.event("offer_failed"),
        words.cause("16"),
        words.hangup("caller"),
        words.flag("repeat"),
        words.flag(f"{AGENCY_REQUESTED}:police"),
        words.value("offer_failed", "reason", "ring_timeout"),
    ):
        assert shown_word in text


def test_the_check_sees_raw_codes(console_config: Config) -> None:
    """The check of the test above, on the kind of text the console used to show."""
    old = (
        "<td>medical</td><td>call_arrived</td><td>flags: ['repeat']</td><td>cause: 16</td>"
        "<td>Ditutup oleh: caller</td><td>operator_pause</td>"
    )
    assert raw_codes(old, "id", console_config) == {
        "medical",
        "call_arrived",
        "flags",
        "repeat",
        "cause: 16",
        "caller",
        "operator_pause",
    }
    assert raw_codes(old, "en", console_config) == {"call_arrived", "operator_pause", "cause: 16"}
    assert (
        raw_codes('<td data-kind="call_arrived" title="1001">Medis</td>', "id", console_config)
        == set()
    )


# -- error pages -------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "message"), [("id", "Tidak ditemukan."), ("en", "Not found.")])
async def test_error_pages_use_the_layout_and_the_language(sign_in, lang, message):
    op1 = await sign_in("op1")
    op1.session.cookie_jar.update_cookies({"siaga_lang": lang})
    for path in ("/no-such-page", "/calls/no-such-call", "/static/nothing.js"):
        status, body = await op1.text(path)
        assert status == 404
        assert f'lang="{lang}"' in body and message in body and "404: Not Found" not in body
        # the static files do not read the session: no user's menu there
        assert 'id="logout"' in body or path.startswith("/static/")
    status, body = await op1.text("/board")
    assert status == 403 and f'lang="{lang}"' in body
    async with await op1.post("/operator/state", {"action": "ready"}, csrf="wrong") as response:
        assert response.status == 403
        assert f'lang="{lang}"' in await response.text()
    async with await op1.session.delete("/calls", allow_redirects=False) as response:
        assert response.status == 405
        assert f'lang="{lang}"' in await response.text()


async def test_a_failing_page_is_a_500_page_in_the_language(sign_in, monkeypatch):
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the report query failed")

    monkeypatch.setattr("supervisor.views.reports.build_report", broken)
    sup = await sign_in("sup")
    sup.session.cookie_jar.update_cookies({"siaga_lang": "en"})
    status, body = await sup.text("/reports")
    assert status == 500
    assert 'lang="en"' in body and "Something went wrong on the server" in body
    assert "the report query failed" not in body, "no internals shown"
