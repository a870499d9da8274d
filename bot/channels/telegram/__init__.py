"""The Telegram channel (python-telegram-bot 22): long polling or webhook, inline keyboards, handoff.

Entry points: :func:`run_telegram` (``spin run`` with ``TELEGRAM_BOT_TOKEN`` set),
:func:`running_bot` (the same as an async context manager, for tests and benchmarks) and
:class:`TelegramChannel` (scheduled messages: ``await channel.send(external_id, message)``).
"""

from bot.channels.telegram.app import build_application, run_telegram, running_bot
from bot.channels.telegram.channel import TelegramChannel, make_rate_limiter

__all__ = ["TelegramChannel", "build_application", "make_rate_limiter", "run_telegram", "running_bot"]
