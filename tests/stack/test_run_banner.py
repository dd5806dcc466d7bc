"""What `siaga run` prints when it is up: the console's address with its scheme, and the SIP
transports operators' phones may register on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from siaga.config import load_config
from stack.run import banner

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


def test_the_shipped_setup_prints_plain_http_and_udp_only() -> None:
    printed = banner(load_config(EXAMPLE), [])
    assert "console:       http://127.0.0.1:8112/" in printed
    assert "SIP TLS" not in printed
    assert "(digest auth):" in printed


def test_with_tls_it_prints_https_and_the_tls_transport() -> None:
    config = load_config(EXAMPLE)
    config = dataclasses.replace(
        config,
        web=dataclasses.replace(config.web, tls_cert="/c.crt", tls_key="/c.key"),
        asterisk=dataclasses.replace(
            config.asterisk,
            sip_tls_port=5061,
            sip_tls_cert="/c.crt",
            sip_tls_key="/c.key",
            srtp=True,
        ),
    )
    printed = banner(config, [])
    assert "console:       https://127.0.0.1:8112/" in printed
    assert "health:        https://127.0.0.1:8112/healthz" in printed
    assert "SIP TLS:       tls 127.0.0.1:5061" in printed
    assert "(digest auth, SIP over TLS, SRTP):" in printed
