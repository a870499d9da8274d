"""The webhook endpoint: an aiohttp server that checks Telegram's secret token on every request."""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.channels.telegram.limits import SECRET_TOKEN_HEADER, SECRET_TOKEN_PATTERN
from bot.settings import Settings

logger = logging.getLogger(__name__)

#: Largest update body accepted; Telegram updates are a few kilobytes.
MAX_UPDATE_BYTES = 1024 * 1024

#: Refused requests logged one by one; after that every 100th is logged, with the count.
REFUSALS_LOGGED_IN_FULL = 10
REFUSAL_LOG_EVERY = 100


def webhook_secret(settings: Settings) -> str:
    """Return the configured secret token, or a new random one (the bot registers it itself)."""
    secret = settings.telegram_webhook_secret
    if not secret:
        logger.info("TELEGRAM_WEBHOOK_SECRET is empty; using a random secret for this run")
        return secrets.token_urlsafe(32)
    if not SECRET_TOKEN_PATTERN.match(secret):
        raise ValueError("TELEGRAM_WEBHOOK_SECRET is invalid: use 1-256 characters from A-Z, a-z, 0-9, _ and -")
    return secret


def webhook_path(url: str) -> str:
    """Return the path part of the public webhook URL, where the server listens."""
    return urlsplit(url).path or "/"


class WebhookServer:
    """Receives updates at ``path`` and queues them for the application; 403 without the secret."""

    def __init__(self, application: Application, *, path: str, secret: str, listen: str, port: int) -> None:  # type: ignore[type-arg]
        self.application = application
        self.path = path
        self.listen = listen
        self.port = port
        self._secret = secret.encode("utf-8")
        self._runner: web.AppRunner | None = None
        self.refused = 0

    async def start(self) -> None:
        """Start listening; ``port`` 0 picks a free port, readable afterwards as ``self.port``."""
        app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        app.router.add_post(self.path, self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        await site.start()
        server = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        logger.info("webhook server listening on %s:%s%s", self.listen, self.port, self.path)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            logger.info("webhook server on %s:%s stopped", self.listen, self.port)

    async def handle(self, request: web.Request) -> web.Response:
        """Queue one update; refuse (403) a request whose secret token is missing or wrong."""
        token = request.headers.get(SECRET_TOKEN_HEADER)
        if token is None or not hmac.compare_digest(token.encode("utf-8"), self._secret):
            self.refused += 1
            if self.refused <= REFUSALS_LOGGED_IN_FULL or self.refused % REFUSAL_LOG_EVERY == 0:
                reason = "no" if token is None else "a wrong"
                logger.warning(
                    "webhook request from %s rejected (HTTP 403): %s secret token (%d rejected so far)",
                    request.remote,
                    reason,
                    self.refused,
                )
            return web.Response(status=403, text="Forbidden")
        try:
            data = await request.json()
        except ValueError:
            logger.warning("webhook request from %s rejected: the body is not valid JSON", request.remote)
            return web.Response(status=400, text="Bad Request: body must be a JSON Update")
        try:
            update = Update.de_json(data, self.application.bot) if isinstance(data, dict) else None
        except (KeyError, TypeError, ValueError):
            update = None
        if update is None:
            logger.warning("webhook request from %s rejected: the body is not a valid Update", request.remote)
            return web.Response(status=400, text="Bad Request: body must be a JSON Update")
        await self.application.update_queue.put(update)
        return web.Response(status=200)
