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


def test_screening_is_bounded_and_points_at_the_agi_server():
    files = rendered(agi=ListenConfig("127.0.0.1", 14573))
    ext = files["extensions.conf"]
    assert "Dial(Local/screen@siaga-screen/n,0.5)" in ext
    assert ext.index("Dial(Local/screen@siaga-screen") < ext.index("Stasis(siaga)")
    assert "AGI(agi://127.0.0.1:14573/screen)" in ext
    assert "AGI(agi://127.0.0.1:14573/feature,${EXTEN})" in ext
    # SHARED() carries the results back from the screening leg.
    assert "load = func_global.so" in files["modules.conf"]


def test_fallback_plays_the_prompt_queues_and_overflows():
    config = load_config(EXAMPLE)
    acd = dataclasses.replace(config.acd, overflow_dial="PJSIP/112@partner")
    ext = rendered(acd=acd)["extensions.conf"]
    assert "Playback(/srv/siaga/t/prompts/id/fallback)" in ext
    assert "Queue(siaga-fallback,t,,," in ext
    assert "Dial(PJSIP/112@partner," in ext
    assert "UserEvent(SiagaFallback,Step: arrived" in ext
