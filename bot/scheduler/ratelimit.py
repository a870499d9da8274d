"""A token bucket for outgoing messages, and per-chat spacing."""

from __future__ import annotations

import asyncio
import time

#: Telegram Bot API: about 30 messages per second overall before HTTP 429.
TELEGRAM_MESSAGES_PER_SECOND = 30
#: Telegram Bot API: about one message per second into one chat.
PER_CHAT_INTERVAL_SECONDS = 1.0


class TokenBucket:
    """Hands out send slots ``1 / rate`` seconds apart, one waiter at a time.

    A token bucket with room for one token, kept on a fixed grid: a waiter that wakes
    up less than half a slot late keeps the grid, so late wake-ups do not slow the rate
    down, and one that wakes later restarts the grid from its wake-up, so two sends are
    never closer than half a slot. After an idle spell the first slot is "now". A
    sliding second therefore sees at most about ``rate + 1`` sends, which keeps 29/s
    under a server that allows 30.
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
            self._next_slot = (slot if lateness < self._interval / 2 else woke) + self._interval

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
