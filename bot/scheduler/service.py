"""The reminder scheduler: ownership lock, APScheduler jobs and the delivery worker.

Two periodic jobs live in APScheduler's SQLAlchemyJobStore (table ``apscheduler_jobs``
in the application database):

- ``spin-plan`` plans ledger rows for upcoming events, then wakes the worker;
- ``spin-wake`` wakes the worker, so rows planned by another process (a chat turn in
  the action server) are sent within one interval.

Both are idempotent, so they are configured with ``coalesce=True``: runs missed while
the loop was busy or the process was down collapse into one. ``misfire_grace_time=None``
lets a late run still happen, where APScheduler's default of 1 s would drop it and log
it as missed. ``max_instances=1`` keeps a slow planning pass from overlapping the next
one. Sending is not a job: the worker sleeps until the next row falls due, so a
reminder goes out on time rather than at the next job tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, text

from bot.channels.base import Channel
from bot.scheduler import ledger
from bot.scheduler.clock import Clock, SystemClock
from bot.scheduler.lock import SchedulerLock, scheduler_lock
from bot.scheduler.planning import plan_upcoming
from bot.scheduler.policy import ReminderPolicy
from bot.scheduler.worker import DeliveryWorker
from bot.settings import Settings
from bot.storage.db import create_db_engine, session_scope

logger = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
PLAN_JOB_ID = "spin-plan"
WAKE_JOB_ID = "spin-wake"
#: How often the owner checks that it still holds the lock.
LOCK_CHECK_SECONDS = 5.0
#: Maximum wait for messages in flight when the scheduler stops.
DRAIN_TIMEOUT_SECONDS = 30.0
JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


@dataclasses.dataclass
class _Runtime:
    service: SchedulerService


#: The running service, for the job functions APScheduler calls by reference.
_current: _Runtime | None = None


async def plan_job() -> None:
    """APScheduler job: plan upcoming events and wake the worker."""
    if _current is not None:
        await _current.service.plan_now()


async def wake_job() -> None:
    """APScheduler job: wake the delivery worker."""
    if _current is not None:
        _current.service.wake()


class SchedulerService:
    """Owns the lock, the APScheduler jobs and the delivery worker of one process."""

    def __init__(
        self,
        engine: Engine,
        channels: Mapping[str, Channel],
        settings: Settings,
        *,
        clock: Clock | None = None,
        rate_per_second: float | None = None,
        lock: SchedulerLock | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.policy = ReminderPolicy.from_settings(settings)
        self.clock = clock or SystemClock()
        self.lock = lock or scheduler_lock(engine, settings.var_dir / "run")
        self._channels = dict(channels)
        self._rate_per_second = rate_per_second
        self.worker = self._new_worker()
        self._stop = asyncio.Event()
        #: Set when :meth:`run` has returned (stopped, or never got the lock before stop).
        self.finished = asyncio.Event()
        self.owner = False

    def _new_worker(self) -> DeliveryWorker:
        return DeliveryWorker(
            self.engine,
            self._channels,
            self.policy,
            clock=self.clock,
            rate_per_second=self._rate_per_second,
            concurrency=self.settings.delivery_concurrency,
        )

    def wake(self) -> None:
        """Wake the delivery worker."""
        self.worker.wake()

    def stop(self) -> None:
        """Ask :meth:`run` to finish; messages in flight are confirmed first."""
        self._stop.set()
        self.worker.stop()

    async def plan_now(self) -> int:
        """Run one planning pass and return the rows it added."""
        now = self.clock.now()

        def plan() -> int:
            with session_scope(self.engine) as session:
                return plan_upcoming(session, now, self.policy).inserted

        inserted = await asyncio.to_thread(plan)
        if inserted:
            self.wake()
        return inserted

    async def _wait_for_lock(self) -> bool:
        announced = False
        while not self._stop.is_set():
            if await asyncio.to_thread(self.lock.acquire):
                logger.info("scheduler took ownership of %s", self.lock.describe())
                return True
            if not announced:
                logger.info("%s is held by another scheduler; waiting as standby", self.lock.describe())
                announced = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.settings.scheduler_standby_poll_seconds)
        return False

    def _start_jobs(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(
            # The job store gets its own engine because its shutdown() disposes the engine.
            jobstores={
                "default": SQLAlchemyJobStore(
                    engine=create_db_engine(self.engine.url.render_as_string(hide_password=False)), tablename=JOBSTORE_TABLE
                )
            },
            job_defaults=JOB_DEFAULTS,
            timezone=dt.UTC,
        )
        scheduler.start(paused=True)
        wanted = {
            PLAN_JOB_ID: (plan_job, self.settings.scheduler_plan_interval_seconds),
            WAKE_JOB_ID: (wake_job, self.settings.scheduler_wake_interval_seconds),
        }
        for job_id, (function, seconds) in wanted.items():
            job = scheduler.get_job(job_id)
            interval = dt.timedelta(seconds=seconds)
            if job is not None and isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == interval:
                logger.info("kept job %s from the job store (next run %s)", job_id, job.next_run_time)
                continue
            scheduler.add_job(
                function, IntervalTrigger(seconds=seconds, timezone=dt.UTC), id=job_id, replace_existing=True, **JOB_DEFAULTS
            )
            logger.info("scheduled job %s every %s s", job_id, seconds)
        scheduler.resume()
        return scheduler

    async def _hold_lock(self) -> bool:
        """Return True when asked to stop, False when the lock was lost."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=LOCK_CHECK_SECONDS)
            if not self._stop.is_set() and not await asyncio.to_thread(self.lock.is_held):
                logger.error("scheduler lost %s: stopping deliveries until it is taken again", self.lock.describe())
                return False
        return True

    async def run(self) -> None:
        """Own the scheduler whenever the lock is free, until :meth:`stop`.

        Waits as a standby while another process holds the lock; after losing the lock
        (a dropped PostgreSQL connection) it stops sending and waits again.
        """
        try:
            while not self._stop.is_set():
                if not await self._wait_for_lock():
                    break
                await self._own()
        finally:
            self.finished.set()

    async def _own(self) -> None:
        global _current
        self.owner = True
        self.worker = self._new_worker()
        scheduler: AsyncIOScheduler | None = None
        worker_task: asyncio.Task[None] | None = None
        lost = False
        try:
            await asyncio.to_thread(self._recover)
            _current = _Runtime(self)
            await self.plan_now()
            scheduler = self._start_jobs()
            worker_task = asyncio.create_task(self.worker.run_forever(), name="spin-delivery-worker")
            lost = not await self._hold_lock()
        finally:
            self.worker.stop()
            if worker_task is not None:
                try:
                    await asyncio.wait_for(worker_task, timeout=DRAIN_TIMEOUT_SECONDS)
                except TimeoutError:
                    logger.warning(
                        "delivery worker did not finish within %.0f s; its claimed rows are re-sent on the next start",
                        DRAIN_TIMEOUT_SECONDS,
                    )
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            _current = None
            await asyncio.to_thread(self.lock.release)
            self.owner = False
            logger.info("scheduler %s: %s", "lost the lock" if lost else "stopped", self.worker.stats)

    def _recover(self) -> None:
        with session_scope(self.engine) as session:
            ledger.recover_unconfirmed(session)


def drop_job_store(engine: Engine) -> None:
    """Remove APScheduler's table (tests and ``spin db`` resets)."""
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {JOBSTORE_TABLE}"))
