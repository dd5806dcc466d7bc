"""A node that takes calls and never answers them, for the edge's tests (docs/ha.md).

It stands where a node's Asterisk was: it answers Kamailio's OPTIONS probes (so the node
stays in the dispatcher's set) and answers every INVITE with 100 Trying and nothing more, as a
node cut off the instant after it took the INVITE, or hung, looks to the edge. A CANCEL gets
its 200 and the INVITE its 487, as RFC 3261 asks of any UAS. Run as
`python -m testbed.silent_node ADDRESS PORT`; it logs each request it takes on stdout.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

HEADERS_ECHOED = ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
TO_TAG = "silent-node"


def response(request: str, status: str) -> bytes:
    """The response `status` (e.g. "100 Trying") to the SIP request `request`."""
    lines = []
    for line in request.split("\r\n")[1:]:
        if not line:
            break
        name = line.split(":", 1)[0].strip().lower()
        if name in HEADERS_ECHOED:
            if name in ("to", "t") and not status.startswith("100") and ";tag=" not in line:
                line = f"{line};tag={TO_TAG}"
            lines.append(line)
    return "\r\n".join([f"SIP/2.0 {status}", *lines, "Content-Length: 0", "", ""]).encode()


def header(request: str, *names: str) -> str:
    """The value of the first header of `request` called one of `names` (lower case)."""
    for line in request.split("\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() in names:
            return value.strip()
    return ""


def transaction(request: str) -> tuple[str, str]:
    """What an INVITE and its CANCEL share: the Call-ID and the CSeq number."""
    return header(request, "call-id", "i"), header(request, "cseq").split(" ")[0]


class SilentNode(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.invites: dict[tuple[str, str], str] = {}  # transaction() -> the INVITE

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        request = data.decode(errors="replace")
        method = request.split(" ", 1)[0]
        if method.startswith("SIP/"):
            return  # a response: we send no requests
        print(method, flush=True)
        key = transaction(request)
        if method == "OPTIONS":
            self.transport.sendto(response(request, "200 OK"), addr)
        elif method == "INVITE":
            self.invites[key] = request
            self.transport.sendto(response(request, "100 Trying"), addr)
        elif method == "CANCEL":
            self.transport.sendto(response(request, "200 OK"), addr)
            invite = self.invites.pop(key, None)
            if invite is not None:
                self.transport.sendto(response(invite, "487 Request Terminated"), addr)


async def serve(address: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(SilentNode, local_addr=(address, port))
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
