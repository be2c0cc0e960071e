"""Named locks kept by the card database's server (or beside its file), so that they hold across
processes and machines: whoever holds one does a piece of work alone, whatever launched it.

PostgreSQL: a session-level advisory lock, taken on a connection of its own that stays out of
any transaction (no snapshot held, no idle-in-transaction timeout) and is closed, not pooled, at
the end: the server releases the lock when that session ends, so a process that dies never
leaves it behind. SQLite (one machine by nature): an exclusive `flock` on a file in a folder
beside the database, which the kernel releases when the holder's process dies.

A lock is `(scope, number)`, e.g. `("battingcard_pngs", 12)`; `owner` names the holder to
whoever waits for it (the PostgreSQL session's `application_name`, the lock file's contents).
"""

import fcntl
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa

POLL_SECONDS = 0.25  # a waiter asks again this often: a lock freed is taken over at once
PG_NAME_MAX = 63  # PostgreSQL cuts application_name to this many bytes
NAME_PREFIX = "pd_pipeline lock: "  # how pg_stat_activity shows a lock's session


class LockTimeout(TimeoutError):
    """The lock stayed held by someone else for longer than the caller would wait."""

    def __init__(self, holder: str | None, waited: float):
        super().__init__(f"held by {holder or 'someone else'} for {waited:.0f}s")
        self.holder, self.waited = holder, waited


class Lock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""

    def holder(self) -> str | None:
        """The owner that holds the lock, as far as can be told (None: unknown)."""

    def release(self) -> bool:
        """Let the lock go (or stop trying); False if it had been lost while held."""


@dataclass
class Holding:
    waited: float  # seconds spent waiting for the lock
    lost: bool = False  # set on leaving: the lock had gone before its work was done


def lock_for(engine: sa.Engine, scope: str, number: int, owner: str) -> Lock:
    """The lock `(scope, number)` in the card database of `engine`, for `owner` to take."""
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock(engine, scope, number, owner)
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            raise ValueError("locks need an SQLite database file, not an in-memory database")
        folder = Path(f"{database}-locks")  # beside the database, like its -wal and -shm files
        return _FileLock(folder / f"{scope}-{number}.lock", owner)
    raise ValueError(f"no locks for {engine.dialect.name} databases")


@contextmanager
def held(
    lock: Lock,
    *,
    wait: float,
    waiting: Callable[[float, str | None], None] = lambda _seconds, _holder: None,
    every: float = 5.0,
) -> Iterator[Holding]:
    """Hold `lock` for the block. Waits at most `wait` seconds for it (0: not at all), calling
    `waiting(seconds so far, holder)` every `every` seconds, then raises LockTimeout. Whoever
    holds one lock at a time, never waiting for another while holding it, cannot deadlock."""
    started = told = time.monotonic()
    try:
        while not lock.try_acquire():
            now = time.monotonic()
            if now - started >= wait:
                raise LockTimeout(lock.holder(), now - started)
            if now - told >= every:
                told = now
                waiting(now - started, lock.holder())
            time.sleep(POLL_SECONDS)
    except BaseException:
        lock.release()
        raise
    holding = Holding(waited=time.monotonic() - started)
    try:
        yield holding
    finally:
        holding.lost = not lock.release()


def _scope_key(scope: str) -> int:
    """A stable int4 for the scope (non-negative, so pg_locks.classid shows it as it is). Other
    applications' advisory locks in the card database share the key space: a clash would only
    make one of them wait for the other, never let two holders in."""
    return zlib.crc32(scope.encode()) & 0x7FFFFFFF


_KEYS = "CAST(:scope AS integer), CAST(:number AS integer)"  # the two-int4 form of the key


class _AdvisoryLock:
    _TRY = sa.text(f"SELECT pg_try_advisory_lock({_KEYS})")
    _UNLOCK = sa.text(f"SELECT pg_advisory_unlock({_KEYS})")
    # Granted advisory locks of the two-int4 form (objsubid 2) in this database, and who holds
    # them: the application_name the holder's session set.
    _HOLDER = sa.text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid = CAST(CAST(:scope AS integer) AS oid) "
        "AND l.objid = CAST(CAST(:number AS integer) AS oid)"
    )

    def __init__(self, engine: sa.Engine, scope: str, number: int, owner: str):
        self.engine, self.owner = engine, owner
        self.keys = {"scope": _scope_key(scope), "number": number}
        self.conn: sa.Connection | None = None
        self.holding = False

    def _session(self) -> sa.Connection:
        if self.conn is None:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            conn.detach()  # closed at the end, never pooled: the session and its lock end then
            name = (NAME_PREFIX + self.owner).encode()[:PG_NAME_MAX].decode("utf-8", "ignore")
            conn.execute(sa.text("SELECT set_config('application_name', :n, false)"), {"n": name})
            self.conn = conn
        return self.conn

    def try_acquire(self) -> bool:
        self.holding = bool(self._session().scalar(self._TRY, self.keys))
        return self.holding

    def holder(self) -> str | None:
        with self.engine.connect() as conn:
            name = conn.scalar(self._HOLDER, self.keys)
        return name.removeprefix(NAME_PREFIX) if name else None

    def release(self) -> bool:
        conn, self.conn = self.conn, None
        holding, self.holding = self.holding, False
        if conn is None:
            return True
        try:
            # A waiter giving up only closes its session: unlocking what it does not hold would
            # put a WARNING in the server's log.
            return bool(conn.scalar(self._UNLOCK, self.keys)) if holding else True
        except sa.exc.DBAPIError:
            return False  # the session is gone, and its lock with it
        finally:
            conn.close()


class _FileLock:
    def __init__(self, path: Path, owner: str):
        self.path, self.owner = path, owner
        self.file: IO[str] | None = None
        self.holding = False

    def try_acquire(self) -> bool:
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Lock files stay: deleting one while another process opens it would split the lock.
            self.file = open(self.path, "a+")  # noqa: SIM115 (kept open while held)
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.holding = True
        self.file.truncate(0)
        self.file.write(self.owner)
        self.file.flush()
        return True

    def holder(self) -> str | None:
        try:
            return self.path.read_text().strip() or None
        except OSError:
            return None

    def release(self) -> bool:
        file, self.file = self.file, None
        if file is not None:
            if self.holding:
                file.truncate(0)  # no stale owner for the next waiter to name
            file.close()  # closing the file lets the flock go
        self.holding = False
        return True
