"""SIP over TLS with SRTP on a real Asterisk 22 instance of this module's own.

Debian's SIPp is built without TLS (`sipp -v`: 3.6.1-SCTP-PCAP-RTPSTREAM), so the phone here is
our own TLS client (tests/integration/sip_tls_client.py): a Python `ssl` socket that verifies
Asterisk's certificate against the self-signed CA, and speaks OPTIONS, REGISTER with digest
auth, and INVITEs offering SRTP (RTP/SAVP with an SDES a=crypto key) or plain RTP/AVP.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.sip_tls_client import TlsSipClient, sdes_offer

from pbx.asterisk import AsteriskInstance
from siaga.config import Config, load_config
from stack.certificate import CertificatePair
from testbed.sandbox import running_asterisk, sandbox_config
from testbed.sipp import free_port

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def tls_config(tls_pair: CertificatePair) -> Config:
    # rtp_base 20000: apart from the other instances a test session may run.
    base = sandbox_config(load_config(EXAMPLE), "postgresql://unused@127.0.0.1/none", 20000)
    asterisk = dataclasses.replace(
        base.asterisk,
        sip_tls_port=free_port(socket.SOCK_STREAM),
        sip_tls_cert=str(tls_pair.cert),
        sip_tls_key=str(tls_pair.key),
        srtp=True,
    )
    return dataclasses.replace(base, asterisk=asterisk)


@pytest.fixture(scope="module")
def tls_asterisk(provisioned: tuple[Path, Path], tls_config: Config) -> Iterator[AsteriskInstance]:
    root, prompts = provisioned
    with running_asterisk(root, prompts, f"tls-{os.getpid()}", tls_config) as instance:
        yield instance


@pytest.fixture
def phone(
    tls_asterisk: AsteriskInstance, tls_config: Config, tls_pair: CertificatePair
) -> Iterator[TlsSipClient]:
    op = tls_config.operators[0]
    client = TlsSipClient.connect(
        HOST, tls_config.asterisk.sip_tls_port, str(tls_pair.cert), op.sip_user, op.sip_password
    )
    yield client
    client.close()


def test_the_certificate_and_key_are_private_copies_inside_the_instance(
    tls_asterisk: AsteriskInstance, tls_pair: CertificatePair
) -> None:
    layout = tls_asterisk.layout
    for inside, original in (
        (layout.sip_tls_cert, tls_pair.cert),
        (layout.sip_tls_key, tls_pair.key),
    ):
        copy = tls_asterisk.outside(inside)
        assert copy.read_bytes() == original.read_bytes()
        assert copy.stat().st_mode & 0o777 == 0o600


def test_options_and_a_digest_register_over_tls(
    phone: TlsSipClient, tls_asterisk: AsteriskInstance
) -> None:
    assert phone.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert phone.request("OPTIONS", f"sip:{phone.domain}").status == 200

    phone.send("REGISTER", f"sip:{phone.domain}", extra=[("Expires", "60")])
    assert phone.final_response("REGISTER").status == 401  # no password, no registration

    registered = phone.request("REGISTER", f"sip:{phone.domain}", extra=[("Expires", "60")])
    assert registered.status == 200
    assert "transport=tls" in registered.header("Contact")
    contacts = tls_asterisk.cli(f"pjsip show contacts like {phone.user}")
    assert "transport=tls" in contacts


def test_an_srtp_offer_is_answered_over_tls_with_srtp_and_asterisks_own_key(
    phone: TlsSipClient, tls_asterisk: AsteriskInstance
) -> None:
    uri = f"sip:*11@{phone.domain}"  # a feature code: answered at once
    offer = sdes_offer(HOST, 40000, srtp=True)

    answer = phone.request("INVITE", uri, to=f"<{uri}>", body=offer)

    assert answer.status == 200, f"{answer.first_line}\n{tls_asterisk.tail(80)}"
    audio = next(line for line in answer.body.splitlines() if line.startswith("m=audio"))
    assert audio.split()[2] == "RTP/SAVP"
    crypto = [line for line in answer.body.splitlines() if line.startswith("a=crypto:")]
    assert len(crypto) == 1 and "AES_CM_128_HMAC_SHA1_80 inline:" in crypto[0]
    assert crypto[0].split("inline:")[1] not in offer  # a key of its own, not ours echoed
    phone.ack(_target(answer), answer)
    phone.send("BYE", _target(answer), to=answer.header("To"))
    assert phone.final_response("BYE").status in (200, 481)  # 481: it had hung up first


def test_a_plain_rtp_offer_to_an_srtp_only_operator_is_refused(phone: TlsSipClient) -> None:
    uri = f"sip:*11@{phone.domain}"

    answer = phone.request("INVITE", uri, to=f"<{uri}>", body=sdes_offer(HOST, 40002, srtp=False))

    assert answer.status == 488, answer.first_line
    phone.ack(uri, answer, branch=phone.branch)


def _client(lowest: ssl.TLSVersion, highest: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = lowest
    context.maximum_version = highest
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # this client would speak TLS 1.0/1.1 if let
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_phones_may_speak_tls_1_2_or_1_3(
    tls_asterisk: AsteriskInstance, tls_config: Config, version: ssl.TLSVersion
) -> None:
    port = tls_config.asterisk.sip_tls_port
    with (
        socket.create_connection((HOST, port), timeout=5) as raw,
        _client(version, version).wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        assert tls.version() == version.name.replace("v1_", "v1.")


def test_the_tls_port_refuses_old_tls_and_plain_sip(
    tls_asterisk: AsteriskInstance, tls_config: Config
) -> None:
    port = tls_config.asterisk.sip_tls_port
    with warnings.catch_warnings():  # the very versions this is about are deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        old = _client(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    with (
        socket.create_connection((HOST, port), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionError)),
    ):
        old.wrap_socket(raw, server_hostname=HOST)

    with socket.create_connection((HOST, port), timeout=5) as raw:  # SIP in clear text
        raw.sendall(b"OPTIONS sip:" + f"{HOST}:{port}".encode() + b" SIP/2.0\r\n\r\n")
        try:
            reply = raw.recv(4096)
        except (ConnectionError, TimeoutError):
            reply = b""
        assert not reply.startswith(b"SIP/2.0")

    # No plain TCP transport beside it: the SIP port is UDP only.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, tls_config.asterisk.sip_port), timeout=5).close()


def _target(response: object) -> str:
    """Where in-dialog requests go: the Contact Asterisk answered with."""
    contact = response.header("Contact")  # type: ignore[attr-defined]
    return str(contact).strip("<>").split(">")[0]
