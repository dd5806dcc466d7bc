"""`siaga`'s one error wrapper: an error a person can act on is one line on stderr and an exit
code, the same for every command; anything else keeps its traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from db.command import CommandError
from db.migrate import MigrationError
from pbx.provision import ProvisionError
from siaga.config import ConfigError
from stack.cli import main, run_command
from supervisor.console import InsecureConsoleError
from testbed.cluster import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


def raising(error: BaseException) -> argparse.Namespace:
    def func(args: argparse.Namespace) -> int:
        raise error

    return argparse.Namespace(func=func)


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (CommandError("no user 'x'"), 1, "siaga: no user 'x'\n"),
        (MigrationError("the schema is newer"), 1, "siaga: the schema is newer\n"),
        (argparse.ArgumentTypeError("not a date"), 2, "siaga: not a date\n"),
        (ConfigError("c.toml", "web", "bad"), 2, "siaga: configuration error: c.toml: web: bad\n"),
        (InsecureConsoleError("dev password"), 2, "siaga: dev password\n"),
        (ProvisionError("no Asterisk"), 3, "siaga: no Asterisk\n"),
        (KeyboardInterrupt(), 130, ""),
    ],
)  # fmt: skip
def test_known_errors_become_a_message_and_an_exit_code(
    error: BaseException, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(raising(error)) == code
    assert capsys.readouterr() == ("", message)


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        run_command(raising(ZeroDivisionError("bug")))


@pytest.mark.parametrize(
    "command",
    [
        ["db", "migrate"],
        ["calls"],
        ["report", "--day", "2024-05-01"],
        ["blocks"],
        ["user", "list"],
    ],
)
def test_every_database_command_reports_a_database_away_alike(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "siaga.toml"
    dead = f"postgresql://siaga@127.0.0.1:{free_port()}/siaga"
    config.write_text(
        EXAMPLE.read_text()
        .replace("embedded = true ", "embedded = false")
        .replace('url = "postgresql://siaga@127.0.0.1:5433/siaga"', f'url = "{dead}"')
    )
    assert main(["--config", str(config), *command]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("siaga: database error: ") and err.count("\n") == 1, err
