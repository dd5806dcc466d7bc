"""siaga.toml: the shipped example loads, and every kind of mistake names file, key and reason."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from queues import Acd, AcdConfig, CallQueued, Category, Offer, OfferAnswered, OperatorLoggedIn
from queues.config import OverflowCondition, OverflowRule, OverflowTarget, TargetKind
from siaga.config import AlertsConfig, ConfigError, DiskConfig, load_config, parse_config
from stack.cli import EXIT_CONFIG, main

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


def example() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def test_example_config_loads_with_the_centres_defaults():
    config = load_config(EXAMPLE)
    assert [o.id for o in config.operators] == ["1001", "1002"]
    assert config.ivr.menus["main"].choices["1"] == "medical"
    assert config.ivr.menus["main"].choices["5"] == "menu:non_emergency"
    assert config.ivr.no_input == "general"
    assert config.ivr.timeout_seconds == 5.0
    assert config.category("fire").priority < config.category("information").priority
    assert config.asterisk.http_port == 8088


def refused(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "centre.toml")
    return info.value


def test_typo_in_a_key_is_named_with_a_suggestion():
    data = example()
    data["asterisk"]["ari_pasword"] = data["asterisk"].pop("ari_password")
    error = refused(data)
    assert error.path == "centre.toml"
    assert error.key == "asterisk.ari_pasword"
    assert "unknown key" in error.reason and "ari_password" in error.reason
    assert str(error).startswith("centre.toml: asterisk.ari_pasword: unknown key")


def test_wrong_type_is_named():
    data = example()
    data["asterisk"]["sip_port"] = "5060"
    error = refused(data)
    assert error.key == "asterisk.sip_port"
    assert "must be an integer, not a string" in error.reason


def test_boolean_is_not_a_number():
    data = example()
    data["acd"]["ring_timeout_seconds"] = True
    assert refused(data).key == "acd.ring_timeout_seconds"


def test_operator_errors_point_at_the_operator():
    data = example()
    data["operators"][1]["skills"]["medical"] = 3
    error = refused(data)
    assert error.key == "operators[1].skills.medical"
    assert "1 (primary) or 2 (secondary)" in error.reason


def test_duplicate_operator_id_refused():
    data = example()
    data["operators"][1]["id"] = data["operators"][0]["id"]
    error = refused(data)
    assert error.key == "operators[1].id" and "duplicate" in error.reason


def test_menu_pointing_at_unknown_category_refused():
    data = example()
    data["ivr"]["menus"]["main"]["choices"]["1"] = "medicall"
    error = refused(data)
    assert error.key == "ivr.menus.main.choices.1"
    assert "no category named 'medicall'" in error.reason


def test_language_digit_may_not_shadow_a_menu_choice():
    data = example()
    data["ivr"]["language_digit"] = "1"
    assert refused(data).key == "ivr.language_digit"


def test_credentials_in_ari_url_refused():
    data = example()
    data["asterisk"]["ari_url"] = "http://siaga:secret@127.0.0.1:8088"
    assert refused(data).key == "asterisk.ari_url"


def test_missing_required_key_is_named():
    data = example()
    del data["categories"][0]["label_id"]
    error = refused(data)
    assert error.key == "categories[0].label_id" and "missing" in error.reason


def test_environment_overrides_secrets(monkeypatch):
    monkeypatch.setenv("SIAGA_ARI_PASSWORD", "from-env-secret")
    monkeypatch.setenv("SIAGA_OPERATOR_1001_PASSWORD", "operator-env-secret")
    monkeypatch.setenv("SIAGA_DATABASE_URL", "postgresql://u@db.example:5432/siaga")
    config = load_config(EXAMPLE)
    assert config.asterisk.ari_password == "from-env-secret"
    assert config.operators[0].sip_password == "operator-env-secret"
    assert config.database.url == "postgresql://u@db.example:5432/siaga"


def test_invalid_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "siaga.toml"
    path.write_text("[asterisk\nari_url = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(path) and "not valid TOML" in info.value.reason
    assert "line 1" in info.value.reason


def test_cli_refuses_bad_config_with_exit_code_2(tmp_path, capsys):
    path = tmp_path / "siaga.toml"
    path.write_text(
        EXAMPLE.read_text().replace("ring_timeout_seconds = 20", "ring_timeout_secs = 20")
    )
    assert main(["--config", str(path), "check-config"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert (
        f"{path}: acd.ring_timeout_secs: unknown key (did you mean 'ring_timeout_seconds'?)" in err
    )


def test_cli_accepts_the_example(capsys):
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    assert "2 operators" in capsys.readouterr().out


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "cannot read" in info.value.reason


def test_pause_reasons_default_when_the_table_is_left_out():
    data = example()
    del data["acd"]["pause_reasons"]
    reasons = parse_config(data).acd.pause_reasons
    assert reasons == load_config(EXAMPLE).acd.pause_reasons
    assert reasons["3"] == "prayer" and reasons["9"] == "other"


def test_a_centre_chooses_its_own_pause_reasons():
    data = example()
    data["acd"]["pause_reasons"] = {"1": "break", "2": "radio_check"}
    assert parse_config(data).acd.pause_reasons == {"1": "break", "2": "radio_check"}


@pytest.mark.parametrize(
    ("reasons", "key", "reason"),
    [
        ({"12": "break"}, "acd.pause_reasons.12", "one digit"),
        ({"1": "Coffee Break"}, "acd.pause_reasons.1", "lower-case"),
        ({"1": "no_answer"}, "acd.pause_reasons.1", "system's own reason"),
        ({"1": "break", "2": "break"}, "acd.pause_reasons.2", "another digit"),
        ({"1": 5}, "acd.pause_reasons.1", "must be a string"),
    ],
)
def test_bad_pause_reason_is_named(reasons, key, reason):
    data = example()
    data["acd"]["pause_reasons"] = reasons
    error = refused(data)
    assert error.key == key
    assert reason in error.reason


def test_categories_are_the_acds_own_and_emergencies_open_to_secondaries_at_once():
    config = load_config(EXAMPLE)
    assert all(isinstance(c, Category) for c in config.categories)
    waits = {c.code: c.secondary_after_seconds for c in config.categories}
    assert waits == {
        "medical": 0,
        "fire": 0,
        "police": 0,
        "disaster": 0,
        "general": 0,
        "information": 30,
        "complaint": 30,
        "public_services": 30,
        "screened": 30,
    }


def test_the_shipped_centre_rings_the_free_phone_for_a_medical_call_at_once():
    # As a user found it: 1001 busy, 1002 free with medical at level 2; the medical caller
    # waited 30 s.
    config = load_config(EXAMPLE)
    acd = Acd(AcdConfig(config.categories), 0.0)
    for op in config.operators:
        acd.handle(OperatorLoggedIn(op.id, op.skills), 0.0)
    first = acd.handle(CallQueued("busy", "medical", 0.0), 0.0)
    assert [(d.call_id, d.operator_id) for d in first if isinstance(d, Offer)] == [("busy", "1001")]
    acd.handle(OfferAnswered("busy", "1001"), 1.0)
    medical = acd.handle(CallQueued("medical", "medical", 2.0), 2.0)
    assert [d.operator_id for d in medical if isinstance(d, Offer)] == ["1002"]


def test_a_category_without_a_secondary_wait_gets_none():
    data = example()
    del data["categories"][5]["secondary_after_seconds"]
    assert parse_config(data).category("information").secondary_after_seconds == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-1, "must be 0 or more"), ("30", "must be a number, not a string"), (True, "a boolean")],
)
def test_a_bad_secondary_wait_is_named(value, reason):
    data = example()
    data["categories"][6]["secondary_after_seconds"] = value
    error = refused(data)
    assert error.key == "categories[6].secondary_after_seconds"
    assert reason in error.reason


def test_a_negative_wrap_up_is_named():
    data = example()
    data["categories"][0]["wrap_up_seconds"] = -5
    error = refused(data)
    assert error.key == "categories[0].wrap_up_seconds" and "0 or more" in error.reason


def test_the_old_global_escalation_key_says_where_its_job_went():
    data = example()
    data["acd"]["escalation_after_seconds"] = 30
    error = refused(data)
    assert error.key == "acd.escalation_after_seconds"
    assert "secondary_after_seconds in each [[categories]]" in error.reason


def with_overflow(**rule: object) -> dict:
    data = example()
    data["overflow"] = [rule]
    return data


def test_overflow_rules_become_the_acds_own():
    data = example()
    data["overflow"] = [
        {"category": "medical", "condition": "no_operator", "dial": "PJSIP/112@partner"},
        {
            "category": "information",
            "condition": "max_wait",
            "threshold": 120,
            "to_category": "general",
        },
    ]
    config = parse_config(data, "centre.toml")
    partner, general = config.overflow
    assert partner == OverflowRule(
        "medical", OverflowCondition.NO_OPERATOR, OverflowTarget.parse("number:PJSIP/112@partner")
    )
    assert (general.condition, general.threshold) == (OverflowCondition.MAX_WAIT, 120.0)
    assert general.target == OverflowTarget(TargetKind.CATEGORY, "general")
    assert load_config(EXAMPLE).overflow == ()  # the shipped example only shows them


@pytest.mark.parametrize(
    ("rule", "key", "reason"),
    [
        (
            {"category": "nope", "condition": "no_operator", "dial": "PJSIP/1@p"},
            "overflow[0].category",
            "no category named 'nope'",
        ),
        (
            {"category": "medical", "condition": "soon", "dial": "PJSIP/1@p"},
            "overflow[0].condition",
            "must be one of max_wait, no_operator",
        ),
        (
            {"category": "medical", "condition": "max_wait", "dial": "PJSIP/1@p"},
            "overflow[0].threshold",
            "missing (required for max_wait)",
        ),
        (
            {
                "category": "medical",
                "condition": "queue_length",
                "threshold": 0,
                "dial": "PJSIP/1@p",
            },
            "overflow[0].threshold",
            "greater than 0",
        ),
        (
            {
                "category": "medical",
                "condition": "no_operator",
                "threshold": 3,
                "dial": "PJSIP/1@p",
            },
            "overflow[0].threshold",
            "no_operator takes no threshold",
        ),
        (
            {"category": "medical", "condition": "no_operator"},
            "overflow[0].dial",
            "give exactly one target",
        ),
        (
            {
                "category": "medical",
                "condition": "no_operator",
                "dial": "PJSIP/1@p",
                "to_category": "fire",
            },
            "overflow[0].to_category",
            "give exactly one target",
        ),
        (
            {"category": "medical", "condition": "no_operator", "to_category": "medical"},
            "overflow[0].to_category",
            "cannot overflow to itself",
        ),
        (
            {"category": "medical", "condition": "no_operator", "to_category": "nope"},
            "overflow[0].to_category",
            "no category named 'nope'",
        ),
        (
            {"category": "medical", "condition": "no_operator", "dial": "112"},
            "overflow[0].dial",
            "must be a dial string",
        ),
        (
            {"category": "medical", "condition": "no_operator", "dial": "PJSIP/1@p", "when": 1},
            "overflow[0].when",
            "unknown key",
        ),
    ],
)
def test_overflow_mistakes_name_the_key(rule, key, reason):
    error = refused(with_overflow(**rule))
    assert (error.path, error.key) == ("centre.toml", key)
    assert reason in error.reason


def test_a_second_rule_with_the_same_condition_is_refused():
    data = example()
    rule = {"category": "fire", "condition": "no_operator", "dial": "PJSIP/112@partner"}
    data["overflow"] = [rule, dict(rule, dial="PJSIP/112@other")]
    error = refused(data)
    assert error.key == "overflow[1].condition" and "a second no_operator rule" in error.reason


def test_disk_limits_default_to_5_percent_or_1_gib_and_a_centre_may_change_them():
    assert parse_config({k: v for k, v in example().items() if k != "disk"}).disk == DiskConfig(
        min_free_percent=5.0, min_free_mib=1024.0, check_interval_seconds=10.0
    )
    data = example()
    data["disk"] = {"min_free_percent": 0, "min_free_mib": 200, "check_interval_seconds": 30}
    assert parse_config(data).disk == DiskConfig(0.0, 200.0, 30.0)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("min_free_percent", -1, "must be 0 or more"),
        ("min_free_percent", 100, "must be below 100"),
        ("min_free_mib", "1G", "must be a number"),
        ("check_interval_seconds", 0, "must be greater than 0"),
        ("min_free_gib", 1, "unknown key (did you mean 'min_free_mib'?)"),
    ],
)
def test_bad_disk_limits_are_named(key, value, reason):
    data = example()
    data["disk"] = {key: value}
    error = refused(data)
    assert (error.path, error.key) == ("centre.toml", f"disk.{key}")
    assert reason in error.reason


def test_alerts_default_and_a_centre_may_change_them():
    assert parse_config({k: v for k, v in example().items() if k != "alerts"}).alerts == (
        AlertsConfig(
            emergency_max_priority=2,
            no_ready_after_seconds=5.0,
            service_level_min_calls=10,
            sound=True,
        )
    )
    data = example()
    data["alerts"] = {
        "emergency_max_priority": 1,
        "no_ready_after_seconds": 0,
        "service_level_min_calls": 3,
        "sound": False,
    }
    assert parse_config(data).alerts == AlertsConfig(1, 0.0, 3, False)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("emergency_max_priority", -1, "must be 0 or more"),
        ("emergency_max_priority", 1.5, "must be an integer"),
        ("no_ready_after_seconds", -2, "must be 0 or more"),
        ("service_level_min_calls", 0, "must be 1 or more"),
        ("sound", "yes", "must be a boolean"),
        ("sounds", True, "unknown key (did you mean 'sound'?)"),
    ],
)
def test_bad_alert_settings_are_named(key, value, reason):
    data = example()
    data["alerts"] = {key: value}
    error = refused(data)
    assert (error.path, error.key) == ("centre.toml", f"alerts.{key}")
    assert reason in error.reason


def test_an_operator_on_the_browser_phone():
    data = example()
    data["operators"][0]["webrtc"] = True
    config = parse_config(data, "centre.toml")
    assert [op.webrtc for op in config.operators] == [True, False]
    assert config.operators[0].dial_string == "PJSIP/1001"


def test_a_browser_phone_with_a_dial_string_is_refused():
    data = example()
    data["operators"][0] |= {"webrtc": True, "dial": "Local/operator@siaga-test"}
    error = refused(data)
    assert error.key == "operators[0].webrtc"
    assert "remove `dial`" in error.reason


def test_webrtc_must_be_true_or_false():
    data = example()
    data["operators"][1]["webrtc"] = "yes"
    error = refused(data)
    assert error.key == "operators[1].webrtc"
    assert "must be a boolean" in error.reason
