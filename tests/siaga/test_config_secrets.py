"""Secrets: a secrets file overrides siaga.toml, the environment overrides both, and production
(`development = false`) refuses the shipped development secrets and short ones, naming the file,
the key and the reason, with exit code 2; `siaga provision --secrets` makes them strong."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from siaga.config import ConfigError, load_config, refuse_weak_secrets
from stack.cli import EXIT_CONFIG, main

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
SECRET_VARIABLES = (
    "SIAGA_ARI_PASSWORD",
    "SIAGA_AMI_PASSWORD",
    "SIAGA_AGI_SECRET",
    "SIAGA_DATABASE_URL",
    "SIAGA_DATABASE_PASSWORD",
    "SIAGA_OPERATOR_1001_PASSWORD",
    "SIAGA_OPERATOR_1002_PASSWORD",
)


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def production_config(tmp_path: Path, *, secrets_file: str = "secrets.toml") -> Path:
    """The shipped siaga.toml as a production centre would start from it (the console behind a
    TLS proxy: production refuses plain HTTP, tests/siaga/test_config_tls.py)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("development = true", "development = false")
    text = text.replace("[web]\n", "[web]\nbehind_tls_proxy = true\n")
    text = f'secrets_file = "{secrets_file}"\n' + text
    path = tmp_path / "siaga.toml"
    path.write_text(text, encoding="utf-8")
    return path


def write_private(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


def test_development_accepts_the_shipped_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_production_refuses_the_shipped_secrets_naming_file_key_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = production_config(tmp_path, secrets_file="")

    assert main(["--config", str(path), "check-config"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"siaga: configuration error: {path}: asterisk.ari_password: " in err
    assert "development secret shipped with Siaga 112" in err
    assert "siaga provision --secrets" in err


@pytest.mark.parametrize(
    ("env", "value", "key"),
    [
        ("SIAGA_ARI_PASSWORD", "short-ari", "SIAGA_ARI_PASSWORD"),
        ("SIAGA_AMI_PASSWORD", "x" * 15, "SIAGA_AMI_PASSWORD"),
        ("SIAGA_AGI_SECRET", "siaga-dev-agi-secret", "SIAGA_AGI_SECRET"),
        ("SIAGA_OPERATOR_1002_PASSWORD", "elevenchars", "SIAGA_OPERATOR_1002_PASSWORD"),
        ("SIAGA_DATABASE_URL", "postgresql://siaga:pw@db.example/siaga", "SIAGA_DATABASE_URL"),
    ],
)
def test_production_refuses_every_weak_secret_wherever_it_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str
) -> None:
    path = production_config(tmp_path)
    assert main(["--config", str(path), "provision", "--secrets"]) == 0
    monkeypatch.setenv(env, value)

    with pytest.raises(ConfigError) as refused:
        refuse_weak_secrets(load_config(path))
    assert (refused.value.path, refused.value.key) == ("environment", key)


def test_provision_generates_strong_secrets_once_into_a_private_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = production_config(tmp_path)
    secrets_path = tmp_path / "secrets.toml"

    assert main(["--config", str(path), "provision", "--secrets"]) == 0
    assert "5 generated, 0 kept" in capsys.readouterr().out
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    first = secrets_path.read_text()
    config = load_config(path)
    refuse_weak_secrets(config)  # production accepts them
    secrets = [
        config.asterisk.ari_password,
        config.asterisk.ami_password,
        config.agi_secret,
        *(op.sip_password for op in config.operators),
    ]
    assert len(set(secrets)) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{21,}", s) for s in secrets)
    assert main(["--config", str(path), "check-config"]) == 0

    assert main(["--config", str(path), "provision", "--secrets"]) == 0  # generated once
    assert "0 generated, 5 kept" in capsys.readouterr().out
    assert secrets_path.read_text() == first


def test_the_secrets_file_overrides_siaga_toml_and_the_environment_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = production_config(tmp_path)
    write_private(
        tmp_path / "secrets.toml",
        '[asterisk]\nari_password = "ari-from-the-secrets-file"\n'
        'ami_password = "ami-from-the-secrets-file"\n'
        '[operators."1001"]\nsip_password = "sip-from-the-file"\n'
        '[database]\npassword = "db-from-the-secrets-file"\n',
    )
    config = load_config(path)
    assert config.asterisk.ari_password == "ari-from-the-secrets-file"
    assert config.operators[0].sip_password == "sip-from-the-file"
    assert config.operators[1].sip_password == "siaga-dev-1002"
    assert config.database.url == (
        "postgresql://siaga:db-from-the-secrets-file@127.0.0.1:5433/siaga"
    )
    # Still refused: the AGI secret and 1002's password are the shipped ones.
    with pytest.raises(ConfigError) as refused:
        refuse_weak_secrets(config)
    assert (refused.value.path, refused.value.key) == (str(path), "agi.secret")

    monkeypatch.setenv("SIAGA_ARI_PASSWORD", "ari-from-the-environment")
    assert load_config(path).asterisk.ari_password == "ari-from-the-environment"


def test_a_secrets_file_others_may_read_or_that_is_missing_is_refused(tmp_path: Path) -> None:
    path = production_config(tmp_path)
    with pytest.raises(ConfigError, match="missing: `siaga provision --secrets` writes it"):
        load_config(path)
    secrets_path = tmp_path / "secrets.toml"
    write_private(secrets_path, '[agi]\nsecret = "a-strong-enough-agi-secret"\n')
    os.chmod(secrets_path, 0o640)
    with pytest.raises(ConfigError, match="others may read it") as refused:
        load_config(path)
    assert refused.value.path == str(secrets_path)


def test_a_misspelt_key_in_the_secrets_file_is_named(tmp_path: Path) -> None:
    path = production_config(tmp_path)
    write_private(tmp_path / "secrets.toml", '[asterisk]\nari_pasword = "x"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.key == "asterisk.ari_pasword"
    assert "did you mean 'ari_password'" in refused.value.reason
