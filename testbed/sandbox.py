"""A private copy of the stack on free ports: for the tests, `siaga simulate` and benchmarks,
so that none of them collides with a running `make run`."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from pbx.asterisk import AsteriskInstance
from siaga.config import Config, ListenConfig, OperatorConfig
from testbed.sipp import free_port

SIMULATED_SKILLS = (
    "medical",
    "fire",
    "police",
    "disaster",
    "general",
    "information",
    "complaint",
    "public_services",
    "screened",
)


def _tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


def sandbox_config(base: Config, dsn: str, rtp_base: int = 30000) -> Config:
    """`base` with ports of its own (SIP, ARI, AMI, RTP, web, AGI) and the given database.

    Instances in one process need `rtp_base`s 10,000 apart (the 100 ports are picked by pid)."""
    rtp = rtp_base + (os.getpid() % 100) * 100
    asterisk = dataclasses.replace(
        base.asterisk,
        ari_url=f"http://127.0.0.1:{_tcp_port()}",
        ami_port=_tcp_port(),
        sip_port=free_port(),
        rtp_start=rtp,
        rtp_end=rtp + 99,
    )
    return dataclasses.replace(
        base,
        asterisk=asterisk,
        database=dataclasses.replace(base.database, url=dsn, embedded=False),
        web=dataclasses.replace(base.web, host="127.0.0.1", port=_tcp_port()),
        agi=ListenConfig("127.0.0.1", _tcp_port()),
    )


def simulated_operator(
    name: str, dial: str, skills: tuple[str, ...] = SIMULATED_SKILLS
) -> OperatorConfig:
    """An operator whose phone is a Local channel of the siaga-test context."""
    return OperatorConfig(
        id=name,
        name=name,
        sip_user=name,
        sip_password="simulated",
        skills=dict.fromkeys(skills, 1),
        dial=dial,
    )


def simulated_operators(
    count: int, dial: str, prefix: str = "sim", skills: tuple[str, ...] = SIMULATED_SKILLS
) -> tuple[OperatorConfig, ...]:
    return tuple(simulated_operator(f"{prefix}{i}", dial, skills) for i in range(1, count + 1))


@contextlib.contextmanager
def running_asterisk(
    root: Path, prompts: Path, name: str, config: Config
) -> Iterator[AsteriskInstance]:
    """An Asterisk instance of its own, started, then stopped and its folders removed."""
    instance = AsteriskInstance(root, name, config)
    instance.prepare(prompts)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(instance.outside(instance.layout.base), ignore_errors=True)
