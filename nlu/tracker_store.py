"""A Rasa tracker store that keeps only the latest events of each conversation.

Rasa's in-memory store serialises the whole conversation after every turn, replays it
on the next, and sends it to the action server, so a turn gets slower as a
conversation grows (56 ms at turn 1 to 210 ms at turn 200 in a probe on 2 cores).
SPIN keeps its conversation state in its own database and its rules look at one turn,
so Rasa needs only a short window of events.

Use it in the endpoints file::

    tracker_store:
      type: nlu.tracker_store.WindowedTrackerStore
      max_events: 100
"""

from __future__ import annotations

from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

#: Events kept per conversation; one turn adds about five.
DEFAULT_MAX_EVENTS = 100


class WindowedTrackerStore(InMemoryTrackerStore):
    """In-memory tracker store whose trackers hold at most ``max_events`` events."""

    def __init__(
        self,
        domain: Domain,
        event_broker: EventBroker | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(domain, event_broker, **kwargs)
        if int(max_events) < 10:
            raise ValueError(f"max_events={max_events} is too small for a turn: use at least 10")
        self._max_events = int(max_events)
        self.max_event_history = self._max_events

    async def get_or_create_tracker(
        self,
        sender_id: str,
        max_event_history: int | None = None,
        append_action_listen: bool = True,
    ) -> DialogueStateTracker:
        """Return the tracker, bounded by this store's window whatever the caller asks."""
        return await super().get_or_create_tracker(sender_id, self._max_events, append_action_listen)

    def init_tracker(self, sender_id: str) -> DialogueStateTracker:
        """Return an empty tracker whose event history is bounded by the window."""
        self.max_event_history = self._max_events
        return super().init_tracker(sender_id)
