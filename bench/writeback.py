"""Write-back at scale: N confirmed URLs written to a fresh card database, and the plans of the
write-back's own queries on a large table.

    python -m bench writeback --rows 100000 [--database-url postgresql://...]

The card tables are filled in bulk with SQL (players in cardsets of 10,000 cards, a batting card
each with its two ratings rows); each card's ledger row says its PNG is stored, with the input
hash of its current data, as the PNG step leaves it. Then `write_back` runs cardset by cardset,
timed: every row must end with its URL.
"""

import os
import time
import uuid

import sqlalchemy as sa

from pd_pipeline.db import ledger, schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.engine import make_engine
from pd_pipeline.db.urls import candidate_ids, candidates_query
from pd_pipeline.images import state
from pd_pipeline.images.writeback import write_back
from pd_pipeline.render.pages import pages_for
from pd_pipeline_tests.bulk import batting_cards

# The policy of a run whose PNGs are served from a CDN.
POLICY = state.Policy(pages_for().version, "https://cdn.example")

CARDS_PER_CARDSET = 10_000
# The server the tests use (trust auth on loopback, as on CI); the bench makes its own database.
PG_ADMIN_URL = os.environ.get(
    "PD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def fill(engine: sa.Engine, rows: int, with_ledger: bool = True) -> list[int]:
    """`rows` valid batting cards in cardsets of 10,000 (`bulk.batting_cards`), with a ledger
    entry each as the PNG step leaves it; returns the cardset ids."""
    ids = batting_cards(engine, rows, CARDS_PER_CARDSET)
    if with_ledger:
        _ledger(engine, ids)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE card_render")
    return ids


def _ledger(engine: sa.Engine, cardset_ids: list[int]) -> None:
    """A stored PNG for every card, recorded as the PNG step records it."""
    now = ledger.utcnow()
    for cardset_id in cardset_ids:
        with engine.begin() as conn:
            cards = load_cards(conn, "battingcard", cardset_id=cardset_id)
            rows = [
                state.object_confirmed(
                    c, POLICY, sha256="0" * 64, md5=None, size=190_000, now=now, run_id=None
                )
                for c in cards
            ]
            ledger.upsert(conn, rows)


def fresh_postgres(admin_url: str = PG_ADMIN_URL) -> tuple[str, sa.Engine]:
    name = f"pd_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return name, make_engine(sa.make_url(admin_url).set(database=name).render_as_string(False))


def drop_postgres(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def bench_write_back(engine: sa.Engine, rows: int) -> dict:
    schema.create_card_tables(engine)
    started = time.monotonic()
    cardsets = fill(engine, rows)
    filled = time.monotonic() - started
    started = time.monotonic()
    written = 0
    for cardset_id in cardsets:
        written += write_back(engine, POLICY, "battingcard", cardset_id).written
    seconds = time.monotonic() - started
    with engine.connect() as conn:
        t = schema.battingcard
        with_url = conn.execute(
            sa.select(sa.func.count()).select_from(t).where(t.c.image_url.is_not(None))
        ).scalar_one()
    return {
        "database": engine.dialect.name,
        "rows": rows,
        "written": written,
        "rows_with_url": with_url,
        "seconds": seconds,
        "rows_per_s": written / seconds if seconds else 0.0,
        "fill_seconds": filled,
    }


def explain_candidates(engine: sa.Engine, rows: int) -> dict:
    """The plan of the write-back's candidate query for one cardset on a table of `rows`."""
    schema.create_card_tables(engine)
    fill(engine, rows, with_ledger=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO card_render (card_type, card_id, cardset_id, player_id, variant, "
            "input_hash, url, status) SELECT 'battingcard', id, 1 + (id - 1) / "
            f"{CARDS_PER_CARDSET}, id, 0, 'x', 'https://cdn.example/' || id, 'stored' "
            "FROM battingcard"
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    with engine.connect() as conn:
        started = time.monotonic()
        found = len(candidate_ids(conn, "battingcard", 7))
        seconds = time.monotonic() - started
        query = candidates_query("battingcard", 7)
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        plan = [" ".join(map(str, row)) for row in conn.exec_driver_sql(prefix + str(compiled))]
    return {"rows": rows, "candidates": found, "seconds": seconds, "plan": plan}
