"""A token bucket for outgoing messages, and per-chat spacing."""

from __future__ import annotations

import asyncio
import time

#: Telegram Bot API: about one message per second into one chat.
PER_CHAT_INTERVAL_SECONDS = 1.0
#: Share of a slot a waiter may wake up late and still keep the bucket's grid of slots.
GRID_TOLERANCE = 0.1


class TokenBucket:
    """Hands out send slots ``1 / rate`` seconds apart, one waiter at a time.

    A token bucket with room for one token, kept on a fixed grid of slots. A waiter
    that wakes up at most GRID_TOLERANCE of a slot late (asyncio's usual oversleep)
    keeps the grid, so oversleeping does not slow the rate down. A later wake-up
    restarts the grid from the wake-up, so two slots are never closer than
    ``(1 - GRID_TOLERANCE) / rate``. After an idle spell the first slot is "now". A
    sliding second therefore contains at most about ``rate + 1`` slots. Sends leave a few
    milliseconds after their slot, so the default 28/s leaves room under Telegram's 30.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate {rate} is invalid: use a positive number of messages per second")
        self.rate = rate
        self._interval = 1.0 / rate
        self._next_slot = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for the next slot and take it (first come, first served)."""
        async with self._lock:
            slot = max(time.monotonic(), self._next_slot)
            delay = slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            woke = time.monotonic()
            lateness = woke - slot
            self._next_slot = (slot if lateness <= self._interval * GRID_TOLERANCE else woke) + self._interval

    def defer(self, until: float) -> None:
        """Hand out no slot before ``until`` (a ``time.monotonic()`` value), e.g. after a 429."""
        self._next_slot = max(self._next_slot, until)


class ChatSpacing:
    """Keeps at least ``interval`` seconds between two sends to the same chat."""

    def __init__(self, interval: float = PER_CHAT_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._next_slot: dict[str, float] = {}

    async def wait(self, chat: str) -> None:
        """Reserve the chat's next slot and sleep until it."""
        now = time.monotonic()
        slot = max(now, self._next_slot.get(chat, now))
        self._next_slot[chat] = slot + self.interval
        if len(self._next_slot) > 10_000:
            self._next_slot = {key: value for key, value in self._next_slot.items() if value > now}
        if slot > now:
            await asyncio.sleep(slot - now)
