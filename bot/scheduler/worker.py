"""The delivery worker: sends due ledger rows through the channels, at most ``rate`` per second.

Each message goes through three steps, each its own short transaction:

1. claim: ``pending -> sending`` (only if still pending), committed before the send;
2. send through :meth:`bot.channels.base.Channel.send`;
3. confirm: ``sending -> sent``, committed as soon as the channel returns.

A row stays in ``sending`` from the claim to the confirm: while it waits for a token
and while its message is in flight. If the process dies there, the next scheduler to
take the ownership lock puts it back to ``pending`` and sends it again
(:func:`bot.scheduler.ledger.recover_unconfirmed`). Delivery is therefore at least
once, and a duplicate needs a crash inside the HTTP round trip.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine, Row, func, select, update
from sqlalchemy.orm import Session

from bot.channels.base import Channel, DeliveryError, OutgoingMessage
from bot.events.audience import followers
from bot.events.records import STATUS_CANCELLED
from bot.scheduler import kinds, ledger
from bot.scheduler.clock import Clock, SystemClock
from bot.scheduler.messages import render_delivery
from bot.scheduler.policy import ReminderPolicy
from bot.scheduler.quiet_hours import adjust_for_quiet_hours, is_quiet, zone
from bot.scheduler.ratelimit import PER_CHAT_INTERVAL_SECONDS, ChatSpacing, TokenBucket
from bot.storage.db import session_scope
from bot.storage.models import Event, ReminderDelivery, User

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Rows examined per database round trip.
BATCH_SIZE = 200
#: Maximum sleep between passes when nothing is due (the scheduler's wake job is shorter).
MAX_IDLE_SECONDS = 300.0
#: Shortest sleep between passes, so rows that stay due cannot make the loop spin.
MIN_IDLE_SECONDS = 0.05
#: Pause after a pass failed with an unexpected error.
ERROR_BACKOFF_SECONDS = 5.0
#: 429 responses waited out for one message before it is put back in the queue.
MAX_RATE_LIMIT_RETRIES = 10
#: Wait before re-sending after a temporary error: doubles per attempt, up to the cap.
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
#: A message sent this late is logged.
LATE_LOG_SECONDS = 60.0
#: Maximum length of the error text stored in ``reminder_deliveries.error``.
ERROR_MAX_LENGTH = 500


@dataclasses.dataclass
class DeliveryStats:
    """Counts of what the worker did since it started."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    postponed: int = 0
    obsolete: int = 0
    expired: int = 0
    missed: int = 0
    skipped: int = 0
    late: int = 0


@dataclasses.dataclass(frozen=True)
class _Candidate:
    delivery_id: int
    user_id: int
    channel: str
    external_id: str
    message: OutgoingMessage
    due_at: dt.datetime


def retry_after_seconds(error: BaseException) -> float | None:
    """Return the wait in seconds that a rate-limit error requests (``retry_after``), or None.

    Looks at the error and its cause, so a channel may raise DeliveryError from
    python-telegram-bot's RetryAfter or set ``retry_after`` on its own error.
    """
    for candidate in (error, error.__cause__, error.__context__):
        value = getattr(candidate, "retry_after", None)
        if isinstance(value, dt.timedelta):
            return value.total_seconds()
        if isinstance(value, int | float):
            return float(value)
    return None


class DeliveryWorker:
    """Sends due rows of the ledger through ``channels`` (by ``users.channel`` name).

    ``rate_per_second`` None leaves throttling to the channel (python-telegram-bot's
    AIORateLimiter); a number adds a token bucket and per-chat spacing here. Use one
    or the other, not both.
    """

    def __init__(
        self,
        engine: Engine,
        channels: Mapping[str, Channel],
        policy: ReminderPolicy,
        *,
        clock: Clock | None = None,
        rate_per_second: float | None = None,
        concurrency: int = 4,
        per_chat_interval: float | None = PER_CHAT_INTERVAL_SECONDS,
    ) -> None:
        if not channels:
            raise ValueError("no channel to deliver to: pass at least one Channel")
        self._engine = engine
        self._channels = dict(channels)
        self._policy = policy
        self._clock = clock or SystemClock()
        self._bucket = TokenBucket(rate_per_second) if rate_per_second else None
        self._spacing = ChatSpacing(per_chat_interval) if rate_per_second and per_chat_interval else None
        self._concurrency = max(1, concurrency)
        self._paused_until = 0.0
        self._stopping = False
        self._wake = asyncio.Event()
        # Database calls get their own threads, so they do not queue behind the
        # channel's to_thread work in the loop's default executor.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._concurrency + 2, thread_name_prefix="spin-delivery"
        )
        self.stats = DeliveryStats()

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run a blocking database call on the worker's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))

    # ------------------------------------------------------------------ control

    def wake(self) -> None:
        """Start the next pass now (new rows were planned)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the messages in flight, claim no more, and leave :meth:`run_forever`."""
        self._stopping = True
        self._wake.set()

    async def run_forever(self) -> None:
        """Run passes until :meth:`stop`, sleeping until the next row falls due."""
        logger.info("delivery worker started for channels %s", ", ".join(sorted(self._channels)))
        while not self._stopping:
            # Cleared before the pass, so a wake() during the pass starts another one.
            self._wake.clear()
            try:
                await self.run_pass()
                delay = await self._in_thread(self._seconds_until_next_due)
            except Exception:
                logger.exception("delivery pass failed; retrying in %.0f s", ERROR_BACKOFF_SECONDS)
                delay = ERROR_BACKOFF_SECONDS
            await self._sleep(max(MIN_IDLE_SECONDS, min(delay, MAX_IDLE_SECONDS)))
        self._executor.shutdown(wait=False)
        logger.info("delivery worker stopped: %s", self.stats)

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def run_pass(self) -> DeliveryStats:
        """Send every row that is due now; return the running totals.

        One producer prepares batches while ``concurrency`` senders work through a
        queue, so preparing the next batch never stalls sending. Rows handed out but
        not yet claimed are still ``pending`` and are kept out of the next batch.
        """
        queue: asyncio.Queue[_Candidate | None] = asyncio.Queue(maxsize=BATCH_SIZE)
        handed_out: set[int] = set()

        async def produce() -> None:
            try:
                while not self._stopping:
                    candidates, examined = await self._in_thread(self._prepare_batch, frozenset(handed_out))
                    for candidate in candidates:
                        handed_out.add(candidate.delivery_id)
                        await queue.put(candidate)
                    if examined == 0:
                        break
            finally:
                for _sender in range(self._concurrency):
                    await queue.put(None)

        async def send() -> None:
            while (candidate := await queue.get()) is not None:
                try:
                    await self._deliver(candidate)
                except Exception:
                    # A database error: the row stays pending (or sending, re-sent at the
                    # next start) and the other senders carry on.
                    logger.exception("delivery %s failed with an unexpected error", candidate.delivery_id)
                finally:
                    handed_out.discard(candidate.delivery_id)

        await asyncio.gather(produce(), *(send() for _sender in range(self._concurrency)))
        return self.stats

    # ------------------------------------------------------------------ choosing rows

    def _seconds_until_next_due(self) -> float:
        with session_scope(self._engine) as session:
            next_due = session.scalar(
                select(func.min(ReminderDelivery.due_at))
                .join(User, User.id == ReminderDelivery.user_id)
                .where(ReminderDelivery.status == ledger.PENDING, User.channel.in_(list(self._channels)))
            )
        if next_due is None:
            return MAX_IDLE_SECONDS
        if next_due.tzinfo is None:
            next_due = next_due.replace(tzinfo=dt.UTC)
        return max(0.0, (next_due - self._clock.now()).total_seconds())

    def _sweep(self, session: Session, now: dt.datetime) -> None:
        """Close pending rows that can no longer be sent: the event started, or the grace window passed."""
        started = (
            select(ReminderDelivery.id)
            .join(Event, Event.id == ReminderDelivery.event_id)
            .where(ReminderDelivery.status == ledger.PENDING, Event.starts_at <= now)
        )
        expired_ids = list(session.scalars(started))
        if expired_ids:
            session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.id.in_(expired_ids))
                .values(status=ledger.EXPIRED, error="event started")
            )
            self.stats.expired += len(expired_ids)
            logger.warning(
                "%d deliveries expired unsent because their event had started (ids %s)", len(expired_ids), _some(expired_ids)
            )
        cutoff = now - self._policy.grace
        missed_ids = list(
            session.scalars(
                select(ReminderDelivery.id).where(ReminderDelivery.status == ledger.PENDING, ReminderDelivery.due_at < cutoff)
            )
        )
        if missed_ids:
            session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.id.in_(missed_ids))
                .values(status=ledger.MISSED, error="past the grace window")
            )
            self.stats.missed += len(missed_ids)
            logger.warning(
                "%d deliveries missed: due more than %s ago (ids %s)", len(missed_ids), self._policy.grace, _some(missed_ids)
            )

    def _verdict(self, delivery: ReminderDelivery, user: User, event: Event, now: dt.datetime) -> tuple[str, Any]:
        """Return ("send", kind), ("postpone", due) or (final status, reason) for one due row."""
        if not user.active:
            return ledger.SKIPPED, "owner inactive"
        try:
            kind = kinds.parse_kind(delivery.kind)
        except ValueError as error:
            return ledger.FAILED, str(error)
        cancelled = event.status == STATUS_CANCELLED
        if kind.type in (kinds.REMIND, kinds.NEW, kinds.CHANGED) and cancelled:
            return ledger.OBSOLETE, "event cancelled"
        if kind.type == kinds.CANCELLED and not cancelled:
            return ledger.OBSOLETE, "event no longer cancelled"
        if (
            kind.type == kinds.REMIND
            and kind.starts_at is not None
            and kinds.stamp(kind.starts_at) != kinds.stamp(event.starts_at)
        ):
            return ledger.OBSOLETE, "event moved"
        if event.starts_at <= now:
            return ledger.EXPIRED, "event started"
        timezone = zone(user.timezone, self._policy.default_timezone)
        if is_quiet(now, timezone, self._policy.quiet_hours):
            due = adjust_for_quiet_hours(now, event.starts_at, timezone, self._policy.quiet_hours, not_before=now)
            if due > now:
                return "postpone", due
        return "send", kind

    def _prepare_batch(self, handed_out: frozenset[int] = frozenset()) -> tuple[list[_Candidate], int]:
        """Return (rows to send now, rows examined); closes or postpones the others.

        ``handed_out`` lists rows already queued for sending in this pass.
        """
        now = self._clock.now()
        candidates: list[_Candidate] = []
        with session_scope(self._engine) as session:
            self._sweep(session, now)
            rows = session.execute(
                select(ReminderDelivery, User, Event)
                .join(User, User.id == ReminderDelivery.user_id)
                .join(Event, Event.id == ReminderDelivery.event_id)
                .where(
                    ReminderDelivery.status == ledger.PENDING,
                    ReminderDelivery.due_at <= now,
                    User.channel.in_(list(self._channels)),
                    ReminderDelivery.id.not_in(list(handed_out)),
                )
                .order_by(ReminderDelivery.due_at, ReminderDelivery.id)
                .limit(BATCH_SIZE)
            ).all()
            following = self._following(session, rows)
            for delivery, user, event in rows:
                verdict: str
                detail: Any
                if (event.id, user.id) not in following:
                    verdict, detail = ledger.OBSOLETE, "owner no longer follows the event"
                else:
                    verdict, detail = self._verdict(delivery, user, event, now)
                if verdict == "send":
                    language = user.language or "en"
                    message = render_delivery(detail, event, language, now)
                    candidates.append(_Candidate(delivery.id, user.id, user.channel, user.external_id, message, delivery.due_at))
                elif verdict == "postpone":
                    delivery.due_at = detail
                    self.stats.postponed += 1
                    logger.info("delivery %s postponed to %s: quiet hours for user %s", delivery.id, detail.isoformat(), user.id)
                else:
                    delivery.status = verdict
                    delivery.error = str(detail)[:ERROR_MAX_LENGTH]
                    self._count_final(verdict)
                    logger.info("delivery %s closed as %s: %s", delivery.id, verdict, detail)
        return candidates, len(rows)

    @staticmethod
    def _following(session: Session, rows: Sequence[Row[ReminderDelivery, User, Event]]) -> set[tuple[int, int]]:
        """Return (event id, user id) pairs whose owner still follows the event (unsubscribing stops queued rows)."""
        by_event: dict[int, tuple[Event, list[int]]] = {}
        for _delivery, user, event in rows:
            by_event.setdefault(event.id, (event, []))[1].append(user.id)
        pairs: set[tuple[int, int]] = set()
        for event_id, (event, user_ids) in by_event.items():
            pairs.update((event_id, user_id) for user_id in followers(session, event, user_ids))
        return pairs

    def _count_final(self, status: str) -> None:
        if status == ledger.OBSOLETE:
            self.stats.obsolete += 1
        elif status == ledger.EXPIRED:
            self.stats.expired += 1
        elif status == ledger.SKIPPED:
            self.stats.skipped += 1
        elif status == ledger.FAILED:
            self.stats.failed += 1

    # ------------------------------------------------------------------ sending one row

    async def _deliver(self, candidate: _Candidate) -> None:
        # The claim comes before the wait for a token, so the HTTP request leaves right
        # when the token does and the server sees evenly spaced messages.
        if self._stopping:
            return
        await self._wait_out_pause()
        attempts = await self._in_thread(self._claim, candidate.delivery_id)
        if attempts is None:
            return
        await self._take_slot()
        if self._spacing is not None:
            await self._spacing.wait(f"{candidate.channel}:{candidate.external_id}")
        if self._stopping:
            await self._in_thread(self._release, candidate.delivery_id)
            return
        await self._send_claimed(candidate, attempts)

    async def _take_slot(self) -> None:
        """Wait for a send slot of the token bucket; a slot that falls in a 429 pause is taken again after it."""
        if self._bucket is None:
            return
        while True:
            await self._bucket.acquire()
            if self._paused_until <= time.monotonic():
                return
            await self._wait_out_pause()

    async def _send_claimed(self, candidate: _Candidate, attempts: int) -> None:
        channel = self._channels[candidate.channel]
        for _retry in range(MAX_RATE_LIMIT_RETRIES + 1):
            try:
                await channel.send(candidate.external_id, candidate.message)
            except DeliveryError as error:
                wait = retry_after_seconds(error)
                if wait is not None and not error.permanent:
                    await self._pause_for_rate_limit(wait, candidate)
                    continue
                if error.permanent:
                    await self._in_thread(self._fail_permanently, candidate, str(error))
                else:
                    await self._in_thread(self._retry_later, candidate, attempts, str(error))
                return
            except Exception as error:  # a channel bug or a network error it did not wrap
                wait = retry_after_seconds(error)
                if wait is not None:
                    await self._pause_for_rate_limit(wait, candidate)
                    continue
                logger.exception(
                    "delivery %s to user %s failed with an unexpected error", candidate.delivery_id, candidate.user_id
                )
                await self._in_thread(self._retry_later, candidate, attempts, f"{type(error).__name__}: {error}")
                return
            await self._in_thread(self._confirm, candidate)
            return
        await self._in_thread(self._retry_later, candidate, attempts, f"still rate limited after {MAX_RATE_LIMIT_RETRIES} waits")

    async def _pause_for_rate_limit(self, seconds: float, candidate: _Candidate) -> None:
        self.stats.rate_limited += 1
        logger.warning(
            "channel %s returned 429: pausing all sends for %.1f s (delivery %s)",
            candidate.channel,
            seconds,
            candidate.delivery_id,
        )
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        if self._bucket is not None:
            self._bucket.defer(self._paused_until)
        await self._wait_out_pause()
        await self._take_slot()

    async def _wait_out_pause(self) -> None:
        while (remaining := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(remaining)

    # ------------------------------------------------------------------ ledger updates

    def _claim(self, delivery_id: int) -> int | None:
        """Mark the row ``sending`` if it is still pending; return its attempt number or None."""
        now = self._clock.now()
        with session_scope(self._engine) as session:
            claimed = session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.id == delivery_id, ReminderDelivery.status == ledger.PENDING)
                .values(status=ledger.SENDING, claimed_at=now, attempts=ReminderDelivery.attempts + 1)
                .returning(ReminderDelivery.attempts)
            ).scalar()
        return int(claimed) if claimed is not None else None

    def _release(self, delivery_id: int) -> None:
        """Put a claimed row back to ``pending`` without counting the attempt (nothing was sent)."""
        with session_scope(self._engine) as session:
            session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.id == delivery_id, ReminderDelivery.status == ledger.SENDING)
                .values(status=ledger.PENDING, attempts=ReminderDelivery.attempts - 1)
            )

    def _confirm(self, candidate: _Candidate) -> None:
        now = self._clock.now()
        with session_scope(self._engine) as session:
            session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.id == candidate.delivery_id, ReminderDelivery.status == ledger.SENDING)
                .values(status=ledger.SENT, sent_at=now, error=None)
            )
        self.stats.sent += 1
        lateness = (now - candidate.due_at).total_seconds()
        if lateness > LATE_LOG_SECONDS:
            self.stats.late += 1
            logger.info("delivery %s sent %.0f s after it was due", candidate.delivery_id, lateness)

    def _fail_permanently(self, candidate: _Candidate, error: str) -> None:
        now = self._clock.now()
        with session_scope(self._engine) as session:
            session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.id == candidate.delivery_id)
                .values(status=ledger.FAILED, error=error[:ERROR_MAX_LENGTH])
            )
            session.execute(update(User).where(User.id == candidate.user_id).values(active=False, blocked_at=now))
        self.stats.failed += 1
        logger.warning("user %s cannot be reached on %s (%s): marked inactive", candidate.user_id, candidate.channel, error)

    def _retry_later(self, candidate: _Candidate, attempts: int, error: str) -> None:
        now = self._clock.now()
        values: dict[str, Any] = {"error": error[:ERROR_MAX_LENGTH]}
        if attempts >= self._policy.max_attempts:
            values["status"] = ledger.FAILED
            self.stats.failed += 1
            logger.warning("delivery %s failed after %d attempts: %s", candidate.delivery_id, attempts, error)
        else:
            delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
            values["status"] = ledger.PENDING
            values["due_at"] = now + dt.timedelta(seconds=delay)
            self.stats.retried += 1
            logger.info("delivery %s attempt %d failed (%s); retrying in %.0f s", candidate.delivery_id, attempts, error, delay)
        with session_scope(self._engine) as session:
            session.execute(update(ReminderDelivery).where(ReminderDelivery.id == candidate.delivery_id).values(**values))


def _some(ids: list[int], shown: int = 10) -> str:
    text = ", ".join(str(value) for value in ids[:shown])
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
