"""An event store for streamable HTTP, so a dropped SSE stream can be resumed with ``Last-Event-ID``.

A generation call streams progress for up to ``wait_seconds`` before its result; a proxy or a flaky
network may cut that stream. With an event store the SDK numbers every SSE event and sends a priming
event first (2025-11-25 and later); the client reconnects with ``GET /mcp`` and ``Last-Event-ID``,
and gets what it missed and then the rest, result included. The store keeps the most recent events
in memory (bounded), which is what a resumed wait needs: a job itself outlives any stream anyway
(``wait_for_job`` picks it up). Event ids are random, so one client cannot guess another's stream.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage

MAX_EVENTS = 10_000


class MemoryEventStore(EventStore):
    """The last ``max_events`` events of every stream, in order."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.max_events = max_events
        self._events: OrderedDict[EventId, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = secrets.token_urlsafe(12)
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self.max_events:
            self._events.popitem(last=False)
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        """Send the stream's events after ``last_event_id``; None if that event is unknown (or forgotten)."""
        if last_event_id not in self._events:
            return None
        stream_id = self._events[last_event_id][0]
        after = False
        for event_id, (stream, message) in list(self._events.items()):
            if event_id == last_event_id:
                after = True
            elif after and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id
