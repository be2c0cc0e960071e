"""SQLAlchemy engines for the card database: SQLite (the default) and PostgreSQL (psycopg 3)."""

import functools
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from pd_pipeline.db import tiers
from pd_pipeline.db.migrations import migrate
from pd_pipeline.model import tier_of

SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalise_url(url: str) -> str:
    """One driver on purpose: psycopg 3 for PostgreSQL; SQLite paths made absolute."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
    return parsed.render_as_string(hide_password=False)


@functools.cache
def make_engine(url: str) -> sa.Engine:
    """One engine per URL and process (engines pool connections; make them once)."""
    engine = sa.create_engine(normalise_url(url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record):
        # We issue BEGIN ourselves (below), so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # wait out other writers
        cursor.close()
        dbapi_conn.create_function(tiers.SQLITE_FUNCTION, 1, tier_of, deterministic=True)

    @sa.event.listens_for(engine, "begin")
    def on_begin(conn):
        immediate = conn.get_execution_options().get("write_lock")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@functools.cache
def _probe_engine(url: str, timeout_s: int) -> sa.Engine:
    # No pool: each probe connects afresh, as a new run would, and holds no connection between.
    normalised = normalise_url(url)
    postgres = sa.make_url(normalised).get_backend_name() == "postgresql"
    args = {"connect_timeout": timeout_s} if postgres else {}
    return sa.create_engine(normalised, poolclass=sa.pool.NullPool, connect_args=args)


def ping(url: str, timeout_s: int) -> None:
    """Raise the database's error unless it answers `SELECT 1` on a new connection; a PostgreSQL
    server gets `timeout_s` to accept it (without, an unanswering host holds the caller for the
    OS's TCP timeout, minutes)."""
    with _probe_engine(url, timeout_s).connect() as conn:
        conn.exec_driver_sql("SELECT 1")


@functools.cache
def ready_engine(url: str) -> sa.Engine:
    """The engine for `url`, with the pipeline's tables created or migrated to this release's
    version on first use (`db.migrations`)."""
    engine = make_engine(url)
    migrate(engine)
    return engine


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that reads then writes with nobody writing in between.

    SQLite: BEGIN IMMEDIATE takes the write lock before the first read (a deferred transaction
    that later upgrades fails with "database is locked" instead of waiting). PostgreSQL: READ
    COMMITTED plus the row locks the caller takes with SELECT ... FOR UPDATE.
    """
    with engine.connect() as conn:
        conn.execution_options(write_lock=True)
        with conn.begin():
            yield conn


def chunks(items: Sequence, size: int = 5000) -> Iterator[Sequence]:
    """`items` in slices of `size`: bounded IN (...) lists and statement batches."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic garbage collection held off while rows become objects. A cardset's cards are
    ~100 objects each and make no cycles, yet every full collection the allocations set off
    walks every live object (a run's Dagster and SQLAlchemy state too): a quarter of a bulk
    read's time, more the longer a run has gone. Nests; the collector is on again after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
