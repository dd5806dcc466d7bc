"""siaga.toml: the disposition and callback workflow's two settings, their defaults, and bad
values named with file, key and reason."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ari_app.app import acd_config
from siaga.config import CallbacksConfig, ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


def example() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def test_the_example_has_the_rule_off_and_skips_hang_ups_under_2_s():
    config = load_config(EXAMPLE)
    assert config.acd.disposition_block_after_seconds == 0.0
    assert config.callbacks == CallbacksConfig(min_hangup_seconds=2.0)
    data = example()
    del data["callbacks"]
    del data["acd"]["disposition_block_after_seconds"]
    assert parse_config(data).callbacks.min_hangup_seconds == 2.0


def test_a_centre_turns_the_rule_on_and_the_acd_core_gets_it():
    data = example()
    data["acd"]["disposition_block_after_seconds"] = 45
    data["callbacks"] = {"min_hangup_seconds": 0}
    config = parse_config(data)
    assert acd_config(config).disposition_block_after_seconds == 45.0
    assert config.callbacks.min_hangup_seconds == 0.0


@pytest.mark.parametrize(
    ("table", "key", "value", "reason"),
    [
        ("acd", "disposition_block_after_seconds", -1, "must be 0 or more"),
        ("acd", "disposition_block_after_seconds", "30", "must be a number"),
        ("callbacks", "min_hangup_seconds", -0.5, "must be 0 or more"),
        ("callbacks", "min_hangup_second", 2, "unknown key (did you mean 'min_hangup_seconds'?)"),
    ],
)
def test_bad_values_are_named(table, key, value, reason):
    data = example()
    data.setdefault(table, {})[key] = value
    with pytest.raises(ConfigError) as info:
        parse_config(data, "centre.toml")
    assert (info.value.path, info.value.key) == ("centre.toml", f"{table}.{key}")
    assert reason in info.value.reason
