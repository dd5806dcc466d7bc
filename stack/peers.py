"""The other machines an app of a high-availability topology must reach to act (docs/ha.md).

With [ha] and several [[asterisk.nodes]] behind an [edge], the topology has at least three
machines: the edge and two nodes. An app that reaches none of the others is on the losing side
of a partition: as the active app it halts (ari_app/isolation.py), as a standby it does not try
for the lease. Reaching a machine means any HTTP answer from it within the timeout: each other
node's ARI (`GET /ari/asterisk/info`) and the edge's JSON-RPC (what the presence watch asks).
"""

from __future__ import annotations

import asyncio

import aiohttp
import structlog

from ari_app.ari.config import AriConfig
from edge.registrations import DUMP_REQUEST
from edge.render import rpc_url
from siaga.config import Config

log = structlog.get_logger(__name__)


class Peers:
    """Asks the other machines of `config`'s topology, seen from node `node`."""

    def __init__(self, config: Config, node: str, timeout: float = 1.0) -> None:
        ast = config.asterisk
        self.ari_urls = tuple(
            f"{n.ari_url.rstrip('/')}/ari/asterisk/info" for n in ast.nodes if n.name != node
        )
        self.edge_url = rpc_url(config.edge) if config.edge is not None else None
        self.timeout = timeout
        ari = AriConfig(username=ast.ari_user, password=ast.ari_password, app=ast.app)
        self._headers = {"Authorization": ari.authorization()}
        self._session: aiohttp.ClientSession | None = None
        self.alone = False  # the last `reachable` found nobody

    @classmethod
    def of(cls, config: Config, node: str | None) -> Peers | None:
        """The peers of a node of a topology with an edge; None for the single box."""
        if node is None or config.edge is None or len(config.asterisk.nodes) < 2:
            return None
        return cls(config, node)

    async def answering(self) -> int:
        """How many of the other machines answer now."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        asks = [self._answers("GET", url, headers=self._headers) for url in self.ari_urls]
        if self.edge_url is not None:
            asks.append(self._answers("POST", self.edge_url, json=DUMP_REQUEST))
        return sum(await asyncio.gather(*asks))

    async def reachable(self) -> bool:
        """Whether any other machine answers (a standby alone does not try for the lease)."""
        answered = await self.answering() > 0
        if answered == self.alone:  # logged once at each change, not every try
            self.alone = not answered
            if self.alone:
                log.warning("peers.none_answered", nodes=self.ari_urls, edge=self.edge_url)
            else:
                log.info("peers.answered_again")
        return answered

    async def _answers(self, method: str, url: str, **options: object) -> bool:
        assert self._session is not None
        try:
            async with self._session.request(method, url, **options) as response:  # type: ignore[arg-type]
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
