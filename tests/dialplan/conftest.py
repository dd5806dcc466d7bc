"""An Asterisk instance of these tests' own, started from the rendered configuration (own ports
and folders, no app, no database): the tests try to break in through AMI and list the process's
sockets, which must not disturb the other integration tests' instances."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.conftest import provisioned

from pbx.asterisk import AsteriskInstance
from siaga.config import Config, load_config
from testbed.sandbox import running_asterisk, sandbox_config

__all__ = ["asterisk", "provisioned", "stack_config"]

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


@pytest.fixture(scope="session")
def stack_config() -> Config:
    """siaga.toml on ports of its own; RTP ports apart from the other tests' instances."""
    base = load_config(EXAMPLE)
    return sandbox_config(base, base.database.url, rtp_base=10000)


@pytest.fixture(scope="session")
def asterisk(provisioned: tuple[Path, Path], stack_config: Config) -> Iterator[AsteriskInstance]:
    root, prompts = provisioned
    with running_asterisk(root, prompts, f"dialplan-{os.getpid()}", stack_config) as instance:
        yield instance
