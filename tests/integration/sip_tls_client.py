"""A small SIP user agent over TLS, for the SIP TLS tests: Debian's SIPp is built without TLS
(`sipp -v`: 3.6.1-SCTP-PCAP-RTPSTREAM), so these tests speak SIP themselves over a Python
`ssl` socket that verifies Asterisk's certificate. Requests, digest authentication (RFC 2617,
qop=auth) and reading responses; nothing more than the tests need."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import ssl
import uuid
from dataclasses import dataclass, field


@dataclass
class SipMessage:
    first_line: str
    headers: list[tuple[str, str]]
    body: str

    @property
    def status(self) -> int:
        """The response's code; 0 for a request."""
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if parts[0] == "SIP/2.0" else 0

    @property
    def method(self) -> str:
        return "" if self.status else self.first_line.split(" ", 1)[0]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return ""


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # SIP's digest is MD5


def digest_authorization(challenge: str, method: str, uri: str, user: str, password: str) -> str:
    """The Authorization header answering a `WWW-Authenticate: Digest ...` challenge."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
    realm, nonce = params["realm"], params["nonce"]
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
    fields += [f'response="{response}"', "algorithm=MD5"]
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


def sdes_offer(host: str, port: int, *, srtp: bool) -> str:
    """An audio offer (PCMA/PCMU): RTP/SAVP with an SDES key (a=crypto), or plain RTP/AVP."""
    lines = [
        "v=0",
        f"o=tls-test 1 1 IN IP4 {host}",
        "s=-",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} {'RTP/SAVP' if srtp else 'RTP/AVP'} 8 0 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendrecv",
    ]
    if srtp:
        key = base64.b64encode(os.urandom(30)).decode()
        lines.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}")
    return "\r\n".join(lines) + "\r\n"


@dataclass
class TlsSipClient:
    """One operator's phone on a TLS connection to Asterisk."""

    sock: ssl.SSLSocket
    user: str
    password: str
    domain: str  # host:port of Asterisk's TLS transport
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    cseq: int = 0
    branch: str = ""  # of the last request: an ACK of a non-2xx answer reuses it
    _buffer: bytes = b""

    @classmethod
    def connect(cls, host: str, port: int, cafile: str, user: str, password: str) -> TlsSipClient:
        context = ssl.create_default_context(cafile=cafile)  # verifies Asterisk's certificate
        raw = socket.create_connection((host, port), timeout=10)
        return cls(context.wrap_socket(raw, server_hostname=host), user, password, f"{host}:{port}")

    def close(self) -> None:
        self.sock.close()

    @property
    def local(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.local};transport=tls>"

    def send(
        self,
        method: str,
        uri: str,
        *,
        to: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        body: str = "",
        cseq: int | None = None,
        branch: str | None = None,
    ) -> None:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        self.branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
        headers = [
            ("Via", f"SIP/2.0/TLS {self.local};branch={self.branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.user}@{self.domain}>;tag={self.tag}"),
            ("To", to or f"<sip:{self.user}@{self.domain}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", self.contact),
            ("User-Agent", "siaga-tls-test"),
            *(extra or []),
        ]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        headers.append(("Content-Length", str(len(body.encode()))))
        text = f"{method} {uri} SIP/2.0\r\n"
        text += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n" + body
        self.sock.sendall(text.encode())

    def receive(self) -> SipMessage:
        while b"\r\n\r\n" not in self._buffer:
            self._read()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        pairs = [(h[0], h[1]) for h in headers if len(h) == 2]
        length = int(next((v for k, v in pairs if k.lower() in ("content-length", "l")), "0"))
        while len(rest) < length:
            self._read()
            rest = self._buffer.partition(b"\r\n\r\n")[2]
        self._buffer = rest[length:]
        return SipMessage(lines[0], pairs, rest[:length].decode())

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("Asterisk closed the TLS connection")
        self._buffer += data

    def final_response(self, method: str) -> SipMessage:
        """The next final (>= 200) response to `method`; requests Asterisk sends meanwhile
        (a BYE of a call it ended) are answered 200."""
        while True:
            message = self.receive()
            if message.method:
                self.answer(message, 200)
                continue
            if message.header("CSeq").endswith(method) and message.status >= 200:
                return message

    def answer(self, request: SipMessage, status: int) -> None:
        names = ("Via", "From", "To", "Call-ID", "CSeq")
        headers = [(k, v) for k, v in request.headers if k in names]
        text = f"SIP/2.0 {status} OK\r\n"
        text += "".join(f"{k}: {v}\r\n" for k, v in headers) + "Content-Length: 0\r\n\r\n"
        self.sock.sendall(text.encode())

    def request(
        self,
        method: str,
        uri: str,
        *,
        to: str | None = None,
        body: str = "",
        extra: list[tuple[str, str]] | None = None,
    ) -> SipMessage:
        """Send `method`; answer a digest challenge once; return the final response."""
        self.send(method, uri, to=to, body=body, extra=extra)
        response = self.final_response(method)
        if response.status not in (401, 407):
            return response
        if method == "INVITE":
            self.ack(uri, response, branch=self.branch)
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        name = "Authorization" if response.status == 401 else "Proxy-Authorization"
        auth = digest_authorization(response.header(header), method, uri, self.user, self.password)
        self.send(method, uri, to=to, body=body, extra=[*(extra or []), (name, auth)])
        return self.final_response(method)

    def ack(self, uri: str, response: SipMessage, *, branch: str | None = None) -> None:
        """The ACK of an INVITE's final response (same CSeq number, the response's To; a
        non-2xx answer's ACK belongs to the INVITE's transaction: its `branch`)."""
        number = int(response.header("CSeq").split()[0])
        self.send("ACK", uri, to=response.header("To"), cseq=number, branch=branch)
