"""A token bucket for outgoing messages, and per-chat spacing."""

from __future__ import annotations

import asyncio
import time

#: Telegram Bot API: about 30 messages per second overall before HTTP 429.
TELEGRAM_MESSAGES_PER_SECOND = 30
#: Telegram Bot API: about one message per second into one chat.
PER_CHAT_INTERVAL_SECONDS = 1.0


class TokenBucket:
    """Allows ``rate`` acquisitions per second with bursts of at most ``capacity``.

    With ``capacity`` 1 no sliding one-second window sees more than ``rate + 1``
    acquisitions, which keeps a 29/s bucket under a server that allows 30 per second.
    """

    def __init__(self, rate: float, capacity: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate {rate} is invalid: use a positive number of messages per second")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a token is available and take it (first come, first served)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)

    def drain(self) -> None:
        """Drop every saved token, e.g. after the server answered 429."""
        self._tokens = 0
        self._updated = time.monotonic()


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
