"""Append typed events to the right topics with the right keys (the one way services write events)."""

from __future__ import annotations

from collections.abc import Sequence

from events.catalog import Event
from events.codec import Codec
from events.envelope import event_key
from events.log import EventLog, Message, Position
from events.topics import Topics


class Publisher:
    def __init__(self, log: EventLog, topics: Topics, codec: Codec | None = None) -> None:
        self.log = log
        self.topics = topics
        self.codec = codec or Codec()

    def to_message(self, event: Event) -> Message:
        return Message(topic=self.topics.for_event_topic(event.TOPIC), value=self.codec.encode(event),
                       key=event_key(event))

    async def publish(self, events: Sequence[Event]) -> list[Position]:
        """Durably append (acks=all) in order; returns once every event is in the log."""
        return await self.append(self.encode(events))

    def encode(self, events: Sequence[Event]) -> list[Message]:
        """The messages `publish` appends (CPU work a caller may do off its event loop)."""
        return [self.to_message(e) for e in events]

    async def append(self, messages: Sequence[Message]) -> list[Position]:
        """Durably append already encoded events (`encode`), in order."""
        if not messages:
            return []
        return await self.log.append(messages)
