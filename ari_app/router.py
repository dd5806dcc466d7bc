"""One reader, ordered dispatch (docs/architecture.md).

The ARI connection's single reader hands every event here; the router gives it, in order, to the
inbox of the actor that owns one of the event's resources (channel, bridge, playback). Ids are
registered *before* the REST request that creates the resource, because the event
can arrive before the HTTP response does.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from ari_app.ari.events import AriEvent, ResourceId, ResourceKind, StasisStart

log = structlog.get_logger(__name__)


class Actor(Protocol):
    async def deliver(self, event: object) -> None:
        """Put the event in the actor's inbox; waits (never drops) when the inbox is full."""


_RECENT = 16

NewChannelHandler = Callable[[StasisStart], Awaitable[None]]


class Router:
    def __init__(self, on_new_channel: NewChannelHandler) -> None:
        self._owners: dict[ResourceId, Actor] = {}
        self._on_new_channel = on_new_channel
        self._recent: collections.deque[AriEvent] = collections.deque(maxlen=_RECENT)
        self.unrouted = 0
        self.duplicates = 0

    def register(self, kind: ResourceKind, resource_id: str, actor: Actor) -> None:
        self._owners[ResourceId(kind, resource_id)] = actor

    def unregister(self, kind: ResourceKind, resource_id: str) -> None:
        self._owners.pop(ResourceId(kind, resource_id), None)

    def forget(self, actor: Actor) -> None:
        """Drop every id an actor owned (it has finished)."""
        for key in [k for k, owner in self._owners.items() if owner is actor]:
            del self._owners[key]

    def owner(self, kind: ResourceKind, resource_id: str) -> Actor | None:
        return self._owners.get(ResourceId(kind, resource_id))

    async def dispatch(self, event: AriEvent) -> None:
        # Asterisk sends some channel events once per subscription: a caller in the call's own
        # bridge gives each DTMF digit twice (channel and bridge), identical to the millisecond.
        # One key press must stay one digit (55 means "I cannot speak"), so exact twins go.
        if any(event == seen for seen in self._recent):
            self.duplicates += 1
            return
        self._recent.append(event)
        actors: list[Actor] = []
        for rid in getattr(event, "routing_ids", ()):
            actor = self._owners.get(rid)
            if actor is not None and all(actor is not seen for seen in actors):
                actors.append(actor)
        for actor in actors:
            await actor.deliver(event)
        if actors:
            return
        if isinstance(event, StasisStart):
            await self._on_new_channel(event)
            return
        self.unrouted += 1
        log.debug("router.unrouted", type=getattr(event, "type", type(event).__name__))


class Inbox:
    """A bounded queue: a flood of events slows the reader instead of eating memory."""

    def __init__(self, size: int = 512) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue(size)

    async def put(self, item: object) -> None:
        await self.queue.put(item)

    def put_nowait(self, item: object) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def get(self) -> object:
        return await self.queue.get()
