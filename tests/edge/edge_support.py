"""What the edge's tests share: Kamailio's real ul.dump answers (captured from a real edge, in
fixtures/) and the operators' phones of the example siaga.toml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
PHONES = {"1001": "1001", "1002": "1002"}


def answer(name: str) -> dict[str, Any]:
    """A captured ul.dump answer: fixtures/ul_dump_<name>.json."""
    data: dict[str, Any] = json.loads((FIXTURES / f"ul_dump_{name}.json").read_text())
    return data
