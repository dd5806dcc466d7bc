"""The dialplan the AGI side relies on, as rendered from siaga.toml."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

from dialplan import render
from siaga.config import ListenConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
LAYOUT = render.InstanceLayout(
    base=PurePosixPath("/srv/siaga/t"), module_dir=PurePosixPath("/usr/lib/asterisk/modules")
)


def rendered(**changes):
    config = dataclasses.replace(load_config(EXAMPLE), **changes)
    return render.render(config, LAYOUT)


def test_screening_is_bounded_and_points_at_the_agi_server_with_its_secret():
    files = rendered(agi=ListenConfig("127.0.0.1", 14573), agi_secret="per-install-k3y")
    ext = files["extensions.conf"]
    assert "Dial(Local/screen@siaga-screen/n,0.5)" in ext
    assert ext.index("Dial(Local/screen@siaga-screen") < ext.index("Stasis(siaga)")
    # The screening leg gets the caller's channel; the AGI server sets its SHARED() variables.
    # And the caller's call id, for the server's log lines.
    screen = (
        "AGI(agi://127.0.0.1:14573/per-install-k3y/screen,${SIAGA_SCREEN_FOR},${SIAGA_SCREEN_CALL})"
    )
    assert screen in ext
    assert "_SIAGA_SCREEN_FOR=${CHANNEL},_SIAGA_SCREEN_CALL=${UNIQUEID}" in ext
    assert "AGI(agi://127.0.0.1:14573/per-install-k3y/feature,${EXTEN})" in ext
    # No AGI URL without the secret.
    assert ext.count("AGI(agi://") == ext.count("/per-install-k3y/") == 2
    assert "load = func_global.so" in files["modules.conf"]


def test_the_screening_leg_runs_no_priority_but_agi_and_hangup():
    # Each priority costs Asterisk a snapshot and an AMI event on every call to 112.
    ext = rendered()["extensions.conf"]
    leg = ext[ext.index("[siaga-screen]") : ext.index("[siaga-fallback]")]
    steps = [line for line in leg.splitlines() if line.startswith(("exten", " same"))]
    assert len(steps) == 2
    assert "AGI(agi://" in steps[0] and steps[1].endswith("Hangup()")


def test_fallback_rings_at_once_speaks_while_ringing_and_overflows():
    config = load_config(EXAMPLE)
    acd = dataclasses.replace(config.acd, overflow_dial="PJSIP/112@partner")
    files = rendered(acd=acd)
    ext = files["extensions.conf"]
    fallback = ext[ext.index("[siaga-fallback]") :]
    # Nothing is played to the caller before the queue rings the operators...
    assert "Playback(" not in fallback[: fallback.index("Queue(siaga-fallback,t,,,")]
    # ...the queue's music class announces the fallback prompt from the first moment.
    assert "musicclass = siaga-fallback" in files["queues.conf"].split("[siaga-fallback]")[1]
    moh = files["musiconhold.conf"].split("[siaga-fallback]")[1]
    assert "announcement = /srv/siaga/t/prompts/id/fallback" in moh
    assert "Dial(PJSIP/112@partner," in ext
    assert "UserEvent(SiagaFallback,Step: arrived" in ext
