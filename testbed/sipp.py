"""Real SIP peers from SIPp: a caller dialling 112 with RFC 4733 DTMF, and an operator's phone
(one SIPp that REGISTERs with digest auth, one that answers the INVITEs it points to).

Used by the integration tests, the benchmarks and anyone trying the stack without a softphone.
Scenarios are written from Python so each call can carry its own caller id and digits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import socket
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pbx.asterisk import _die_with_parent

SIPP_SHARE = Path("/usr/share/sip-tester")


class SippError(Exception):
    """SIPp is missing, or a scenario failed; carries SIPp's own output."""


_FAILED_CALLS = re.compile(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on loopback (SIP listens on UDP, HTTP on TCP)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


# SIPp's media ports: audio at -mp, its RTCP, video and video RTCP at the next three. They are
# taken above every Asterisk RTP range the tests use (10000-59999) and above the kernel's
# ephemeral ports (to 60999), so two test workers' SIPp and Asterisk instances never meet on
# one: SIPp exits when one is taken, where Asterisk would try the next.
_MEDIA_PORTS = range(61000, 65532, 4)


def free_media_port() -> int:
    """The first of four UDP ports in a row that are free on loopback now."""
    while True:
        first = random.choice(_MEDIA_PORTS)
        taken: list[socket.socket] = []
        try:
            for port in range(first, first + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                taken.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in taken:
                sock.close()
        return first


def _header(name: str) -> str:
    return f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'


_SDP = """v=0
      o=siaga 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv"""


# The answer to a request that ends the dialog (BYE): echo its headers, no body.
_OK = """  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
"""


def caller_scenario(
    *,
    number: str = "112",
    caller_id: str = "081234567890",
    caller_name: str = "",
    digits: str = "",
    delay_ms: int = 1500,
    gap_ms: int = 400,
    hold_ms: int = 3000,
    play_voice: bool = False,
    voice_after_ms: int = 0,
    voice: Path | None = None,
    routed: bool = False,
    timeline: bool = False,
) -> str:
    """A caller: INVITE, answered, digits as RFC 4733 events, holds, then hangs up (BYE).

    `play_voice`: SIPp's sample speech after the digits, or the RTP pcap `voice` (testbed/tones.py).

    If the far end hangs up first (a BYE arrives), the scenario answers it and ends cleanly.
    `routed`: the call goes through a proxy that stays in the dialog (the Kamailio edge): ACK
    and BYE go to the answerer's Contact along the Record-Route, as a real phone sends them.
    `timeline`: each call logs (SIPp's -trace_logs) when it sent its INVITE and when it was
    answered, on the wall clock: `<call number> invite|answered <seconds> <microseconds>`
    (`read_call_times`). `caller_id` may hold SIPp keywords, e.g. `0812[call_number]`.
    """
    display = f'"{escape(caller_name)}" ' if caller_name else ""
    in_dialog_uri = "[next_url]" if routed else f"sip:{number}@[remote_ip]:[remote_port]"
    route = "\n      [routes]" if routed else ""
    rrs = ' rrs="true"' if routed else ""
    steps = [_header("siaga caller")]
    if timeline:
        steps.append(_log_time("invite"))
    answered = f"\n    <action>{_log_action('answered')}</action>\n  </recv>" if timeline else "/>"
    steps.append(f"""  <send retrans="500"><![CDATA[
      INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {display}<sip:{caller_id}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller_id}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      {_SDP}
    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"{rrs}{">" if timeline else ""}{answered}
  <send><![CDATA[
      ACK {in_dialog_uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {display}<sip:{caller_id}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:{caller_id}@[local_ip]:[local_port]>{route}
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
""")
    steps.append(f'  <pause milliseconds="{delay_ms}"/>\n')
    steps.append(_dtmf_steps(digits, gap_ms))
    if play_voice:
        # After the digits: two RTP streams at once would garble both.
        steps.append(
            f'  <pause milliseconds="{voice_after_ms}"/>\n'
            f'  <nop><action><exec play_pcap_audio="{voice or SIPP_SHARE / "g711a.pcap"}"/>'
            "</action></nop>\n"
        )
    steps.append(f"""  <recv request="BYE" timeout="{hold_ms}" ontimeout="hangup"/>
{_OK}  <nop next="end"/>
  <label id="hangup"/>
  <send retrans="500"><![CDATA[
      BYE {in_dialog_uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {display}<sip:{caller_id}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:{caller_id}@[local_ip]:[local_port]>{route}
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  <recv response="200" crlf="true"/>
  <label id="end"/>
</scenario>
""")
    return "".join(steps)


def _log_action(what: str) -> str:
    return (
        f'<gettimeofday assign_to="{what}_s,{what}_us"/>'
        f'<log message="[call_number] {what} [${what}_s] [${what}_us]"/>'
    )


def _log_time(what: str) -> str:
    return f"  <nop><action>{_log_action(what)}</action></nop>\n"


def read_call_times(path: Path) -> dict[int, dict[str, float]]:
    """A `timeline` caller's log: call number -> {"invite": t, "answered": t} (epoch seconds)."""
    calls: dict[int, dict[str, float]] = {}
    if not path.exists():
        return calls
    for line in path.read_text(errors="replace").splitlines():
        words = line.split()
        if len(words) != 4 or not words[0].isdigit():
            continue
        with contextlib.suppress(ValueError):
            at = float(words[2]) + float(words[3]) / 1e6
            calls.setdefault(int(words[0]), {})[words[1]] = at
    return calls


def register_scenario(*, user: str, password: str, contact_port: int, expires: int = 300) -> str:
    """REGISTER with digest auth, the Contact pointing at the answering SIPp's port."""
    request = """  <send retrans="500"><![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:{user}@[local_ip]:{contact_port}>
      Expires: {expires}
      Max-Forwards: 70
      {auth}Content-Length: 0
    ]]></send>
"""
    auth = f"[authentication username={user} password={password}]\n      "
    return (
        _header("siaga operator register")
        + request.format(user=user, contact_port=contact_port, expires=expires, cseq=1, auth="")
        + '  <recv response="401" auth="true"/>\n'
        + request.format(user=user, contact_port=contact_port, expires=expires, cseq=2, auth=auth)
        + '  <recv response="200"/>\n</scenario>\n'
    )


_DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def dtmf_pcap(digits: str, gap_ms: int, folder: Path | None = None) -> Path:
    """A pcap of RFC 4733 events for `digits`, one after the other.

    SIPp's own recordings all share one RTP timestamp, so Asterisk takes a second digit from
    them for a retransmission of the first. Each digit here gets its own timestamp and
    sequence numbers, as a real phone sends them.
    """
    for digit in digits:
        if digit not in _DTMF_EVENTS:
            raise ValueError(f"no RFC 4733 event for digit {digit!r}")
    folder = folder or Path(tempfile.gettempdir()) / "siaga-dtmf"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dtmf-{digits.replace('*', 's').replace('#', 'h')}-{gap_ms}.pcap"
    if path.exists():
        return path
    packets: list[tuple[float, bytes]] = []
    seq, rtp_ts, at = 1000, 16000, 0.0
    for digit in digits:
        event = _DTMF_EVENTS[digit]
        for i in range(10):  # 7 progress packets, then the end packet three times
            end = i >= 7
            duration = min(i, 7) * 160
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            marker = 0x80 if i == 0 else 0
            header = struct.pack("!BBHII", 0x80, marker | 101, seq & 0xFFFF, rtp_ts, 0x51A6A112)
            packets.append((at, header + payload))
            seq += 1
            if i < 7:
                at += 0.02
        rtp_ts += 8 * (gap_ms + 140)
        at += gap_ms / 1000
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for when, rtp in packets:
            udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                0,
                0,
                64,
                17,
                0,
                bytes([127, 0, 0, 1]),
                bytes([127, 0, 0, 1]),
            )
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            seconds = int(when)
            out.write(
                struct.pack("<IIII", seconds, int((when - seconds) * 1e6), len(frame), len(frame))
            )
            out.write(frame)
    return path


def _dtmf_steps(digits: str, gap_ms: int) -> str:
    if not digits:
        return ""
    pcap = dtmf_pcap(digits, gap_ms)
    wait_ms = len(digits) * (gap_ms + 140) + 100
    return (
        f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
        f'  <pause milliseconds="{wait_ms}"/>\n'
    )


def answer_scenario(
    *,
    ring_ms: int = 200,
    respond: int = 200,
    digits: str = "",
    digits_after_ms: int = 1000,
) -> str:
    """An operator's phone: rings, then answers (or answers `respond`, e.g. 486 busy, 603
    reject) and stays in the call until the far end hangs up; `digits` are pressed after
    `digits_after_ms` (feature keys such as *1)."""
    ringing = f"""  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]></send>
  <pause milliseconds="{ring_ms}"/>
"""
    if respond != 200:
        return (
            _header("siaga operator refuses")
            + ringing
            + f"""  <send><![CDATA[
      SIP/2.0 {respond} Refused
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
  <recv request="ACK"/>
</scenario>
"""
        )
    answer = f"""  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      {_SDP}
    ]]></send>
  <recv request="ACK" crlf="true"/>
"""
    if digits:
        # Feature keys pressed on the operator's phone during the call (e.g. *1: police).
        answer += f'  <pause milliseconds="{digits_after_ms}"/>\n' + _dtmf_steps(digits, 400)
    # Stays in the call until the far end hangs up.
    ending = f"""  <recv request="BYE"/>
{_OK}</scenario>
"""
    return _header("siaga operator answers") + ringing + answer + ending


def ringing_phone_scenario(*, ring_ms: int = 500) -> str:
    """An operator's phone rung by a ring-all queue: it rings `ring_ms`, then answers and stays
    in the call until the far end hangs up; cancelled while ringing (another phone answered
    first), it answers the CANCEL and ends the INVITE with 487, as a real phone does (a
    CANCEL crossing its answer is answered, and the call ends with the BYE that follows)."""
    return (
        _header("siaga ringing phone")
        + """  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true"
            assign_to="invite_cseq"/>
    </action>
  </recv>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]></send>
"""
        + f'  <recv request="CANCEL" timeout="{ring_ms}" ontimeout="answer"/>\n'
        + _OK
        + """  <send><![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq] INVITE
      Content-Length: 0
    ]]></send>
  <recv request="ACK"/>
  <nop next="end"/>
  <label id="answer"/>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      """
        + _SDP
        + """
    ]]></send>
  <recv request="CANCEL" optional="true" next="late_cancel"/>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
"""
        + _OK
        + """  <nop next="end"/>
  <label id="late_cancel"/>
"""
        # Cancelled just after answering: the answer stands, the caller's side ends it.
        + _OK
        + """  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
"""
        + _OK
        + """  <label id="end"/>
</scenario>
"""
    )


@dataclass
class Sipp:
    """One SIPp process running a scenario against Asterisk's SIP port."""

    scenario: str
    target_port: int
    local_port: int = field(default_factory=free_port)
    target_host: str = "127.0.0.1"
    local_ip: str = "127.0.0.1"
    # Run SIPp through this, e.g. `ip netns exec <host>` (testbed/hosts.py); () runs it here.
    wrapper: tuple[str, ...] = ()
    calls: int = 1
    rate: float = 1.0
    server: bool = False
    extra: tuple[str, ...] = ()
    timeout: float = 120.0  # SIPp quits after this many seconds, whatever it is doing
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="siaga-sipp-")))
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = shutil.which("sipp")
        if binary is None:
            raise SippError("sipp is missing: apt-get install sip-tester")
        path = self.workdir / "scenario.xml"
        path.write_text(self.scenario)
        command = [
            *self.wrapper,
            binary,
            f"{self.target_host}:{self.target_port}",
            "-sf",
            str(path),
            "-i",
            self.local_ip,
            "-p",
            str(self.local_port),
            "-mp",
            str(free_media_port()),
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(self.workdir / "errors.log"),
            "-trace_msg",
            "-message_file",
            str(self.workdir / "messages.log"),
            "-timeout",
            f"{self.timeout:g}",
            "-timeout_error",
        ]
        if not self.server:
            command += ["-m", str(self.calls), "-r", str(self.rate)]
        command += list(self.extra)
        # SIPp redraws its statistics screen on stdout all the time: into a pipe nobody reads
        # while the call runs, it would block SIPp itself. A file takes it.
        with (self.workdir / "screen.log").open("wb") as screen:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=screen,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,  # a killed test run leaves no SIPp behind
            )

    async def wait(self, timeout: float = 60.0) -> int:
        """Wait for SIPp to finish; raise SippError with its output when a call failed."""
        if self.process is None:
            raise SippError("not started")
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.stop()
            raise SippError(
                f"sipp did not finish within {timeout} s\n{self.diagnostics()}"
            ) from None
        code = self.process.returncode or 0
        if code != 0:
            raise SippError(f"sipp exited {code}\n{self.diagnostics()}")
        return code

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5)
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()

    @property
    def output(self) -> str:
        path = self.workdir / "screen.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def failed_calls(self) -> int:
        """How many calls failed, by SIPp's last statistics screen (cumulative column)."""
        counts = _FAILED_CALLS.findall(self.output)
        if not counts:
            raise SippError(f"no statistics screen from sipp\n{self.diagnostics()}")
        return int(counts[-1])

    def messages(self) -> str:
        path = self.workdir / "messages.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnostics(self) -> str:
        errors = self.workdir / "errors.log"
        text = errors.read_text(errors="replace")[-3000:] if errors.exists() else ""
        return f"{self.output[-2000:]}\n--- errors\n{text}\n--- messages\n{self.messages()[-3000:]}"


@dataclass
class SippPhone:
    """An operator's softphone: a SIPp answering INVITEs, registered by a second SIPp."""

    user: str
    password: str
    asterisk_port: int
    answer: str = field(default_factory=answer_scenario)
    calls: int = 1
    # Where the phone registers (Asterisk, or the Kamailio edge) and where it runs.
    registrar_host: str = "127.0.0.1"
    local_ip: str = "127.0.0.1"
    wrapper: tuple[str, ...] = ()
    uas: Sipp | None = None

    def _sipp(self, scenario: str, **kwargs: Any) -> Sipp:
        return Sipp(
            scenario,
            self.asterisk_port,
            target_host=self.registrar_host,
            local_ip=self.local_ip,
            wrapper=self.wrapper,
            **kwargs,
        )

    async def start(self) -> None:
        self.uas = self._sipp(self.answer, server=True)
        await self.uas.start()
        register = self._sipp(
            register_scenario(
                user=self.user, password=self.password, contact_port=self.uas.local_port
            ),
            extra=("-au", self.user, "-ap", self.password),
        )
        await register.start()
        await register.wait(timeout=15)

    async def unregister(self) -> None:
        if self.uas is None:
            return
        register = self._sipp(
            register_scenario(
                user=self.user, password=self.password, contact_port=self.uas.local_port, expires=0
            ),
            extra=("-au", self.user, "-ap", self.password),
        )
        await register.start()
        await register.wait(timeout=15)

    async def stop(self) -> None:
        if self.uas is not None:
            await self.uas.stop()


@dataclass
class SippPhoneBank:
    """A room of operators' phones answered by one SIPp: each operator registers (digest auth)
    with its own credentials, every Contact pointing at that one SIPp, which answers every
    INVITE. Many operators for the price of one process (load tests on a small machine)."""

    users: Sequence[tuple[str, str]]  # (sip user, password)
    registrar_port: int
    answer: str = field(default_factory=ringing_phone_scenario)
    registrar_host: str = "127.0.0.1"
    local_ip: str = "127.0.0.1"
    wrapper: tuple[str, ...] = ()
    expires: int = 3600
    lifetime: float = 3600.0  # SIPp quits after this many seconds
    uas: Sipp | None = None

    async def start(self) -> None:
        self.uas = Sipp(
            self.answer,
            self.registrar_port,
            target_host=self.registrar_host,
            local_ip=self.local_ip,
            wrapper=self.wrapper,
            server=True,
            timeout=self.lifetime,
        )
        await self.uas.start()
        await self.register(self.expires)

    async def register(self, expires: int) -> None:
        """Every operator's REGISTER (expires 0: unregister)."""
        assert self.uas is not None
        for user, password in self.users:
            register = Sipp(
                register_scenario(
                    user=user,
                    password=password,
                    contact_port=self.uas.local_port,
                    expires=expires,
                ),
                self.registrar_port,
                target_host=self.registrar_host,
                local_ip=self.local_ip,
                wrapper=self.wrapper,
                extra=("-au", user, "-ap", password),
            )
            await register.start()
            await register.wait(timeout=15)
            shutil.rmtree(register.workdir, ignore_errors=True)

    async def stop(self) -> None:
        if self.uas is not None:
            await self.uas.stop()


def partner_centre(asterisk_port: int, *, ring_ms: int = 300, respond: int = 200) -> Sipp:
    """The neighbouring regency's 112 centre on the trunk: a SIPp answering (or refusing with
    `respond`, e.g. 486 busy) the INVITE to 112; start it, then dial `partner_dial(...)`."""
    return Sipp(answer_scenario(ring_ms=ring_ms, respond=respond), asterisk_port, server=True)


def partner_dial(partner: Sipp, number: str = "112") -> str:
    """The dial string of a partner centre over the trunk, as an `[[overflow]]` rule gives it."""
    return f"PJSIP/trunk/sip:{number}@{partner.target_host}:{partner.local_port}"
