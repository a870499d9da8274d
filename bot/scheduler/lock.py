"""Scheduler ownership: one process at a time owns the job store and sends reminders.

APScheduler 3.x must never share a job store between two schedulers, and two delivery
workers would race for the same rows. Each database gets one lock:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a
  dedicated connection. The server releases it when that connection closes, so a
  killed process frees it at once (or when TCP keepalive notices a dead peer).
- SQLite: an exclusive ``flock`` on a file beside the database file. The kernel
  releases it when the process dies. SQLite is single-machine, and so is this lock;
  NOTE: ``flock`` is unreliable on network file systems such as NFS.

A second scheduler that finds the lock taken waits as a standby and takes over when
the owner stops or dies.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

#: Advisory lock key of the reminder scheduler (ASCII "SPINSCHD" as a 64-bit integer).
POSTGRES_LOCK_KEY = int.from_bytes(b"SPINSCHD", "big") & 0x7FFF_FFFF_FFFF_FFFF
#: Suffix of the SQLite lock file, next to the database file.
SQLITE_LOCK_SUFFIX = ".scheduler.lock"


class SchedulerLock(abc.ABC):
    """An exclusive, non-blocking lock that dies with its process."""

    @abc.abstractmethod
    def acquire(self) -> bool:
        """Try to take the lock without waiting; return True when this process holds it."""

    @abc.abstractmethod
    def is_held(self) -> bool:
        """Return True while this process still holds the lock."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock up (nothing happens when it is not held)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Return what is locked, for logs."""


class PostgresAdvisoryLock(SchedulerLock):
    """``pg_try_advisory_lock(key)`` on a connection kept open while the lock is held."""

    def __init__(self, engine: Engine, key: int = POSTGRES_LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None:
            return self.is_held()
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar())
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def is_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            held = self._connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objsubid = 1"
                    " AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": self._key},
            ).scalar()
        except SQLAlchemyError as error:
            logger.error("lost the scheduler lock connection: %s", error)
            self._drop_connection()
            return False
        return bool(held)

    def release(self) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        self._drop_connection()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.invalidate()
                self._connection.close()
            self._connection = None

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self._key}"


class FileLock(SchedulerLock):
    """An exclusive ``flock`` on ``path``; the file keeps the owner's pid for people reading it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        if self._handle is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return True

    def is_held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        if self._handle is None:
            return
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    def describe(self) -> str:
        return f"file lock {self._path}"


def scheduler_lock(engine: Engine, fallback_dir: Path) -> SchedulerLock:
    """Return the lock for ``engine``'s database: advisory on PostgreSQL, a file beside SQLite.

    An in-memory SQLite database has no file, so its lock lives in ``fallback_dir``.
    """
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        return PostgresAdvisoryLock(engine)
    if backend == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            path = Path(database).resolve()
            return FileLock(path.with_name(path.name + SQLITE_LOCK_SUFFIX))
        return FileLock(fallback_dir / f"memory{SQLITE_LOCK_SUFFIX}")
    raise NotImplementedError(f"database {backend!r} is not supported by the scheduler lock: use SQLite or PostgreSQL")
