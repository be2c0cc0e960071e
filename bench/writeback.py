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
from pd_pipeline.db.indexes import add_indexes
from pd_pipeline.db.urls import candidate_ids, candidates_query
from pd_pipeline.images import state
from pd_pipeline.images.writeback import write_back
from pd_pipeline.model import BATTING_RESULTS
from pd_pipeline.render.pages import pages_for

# The policy of a run whose PNGs are served from a CDN.
POLICY = state.Policy(pages_for().version, "https://cdn.example")

CARDS_PER_CARDSET = 10_000
# The server the tests use (trust auth on loopback, as on CI); the bench makes its own database.
PG_ADMIN_URL = os.environ.get(
    "PD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _numbers(dialect: str, n: int) -> str:
    if dialect == "postgresql":
        return f"SELECT g AS n FROM generate_series(1, {n}) AS g"
    return f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {n}) "\
        "SELECT n FROM seq"  # fmt: skip


def fill(engine: sa.Engine, rows: int, with_ledger: bool = True) -> list[int]:
    """`rows` batting cards (one per player) in cardsets of 10,000; returns the cardset ids."""
    dialect = engine.dialect.name
    cardsets = -(-rows // CARDS_PER_CARDSET)
    numbers = _numbers(dialect, rows)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        sets = _numbers(dialect, cardsets)
        run(f"INSERT INTO cardset (id, name) SELECT n, 'Set ' || n FROM ({sets}) s")
        run("INSERT INTO rarity (id, value, name, color) VALUES (1, 1, 'Starter', '#8fb4dc')")
        run(
            "INSERT INTO player (player_id, p_name, cardset_id, rarity_id, mlbclub, pos_1) "
            f"SELECT n, 'Player ' || n, 1 + (n - 1) / {CARDS_PER_CARDSET}, 1, 'Club', 'SS' "
            f"FROM ({numbers}) s"
        )
        run(
            "INSERT INTO battingcard (id, player_id, variant, steal_low, steal_high, running, "
            f"hand) SELECT n, n, 0, 3, 12, 11, 'R' FROM ({numbers}) s"
        )
        results = ", ".join(BATTING_RESULTS)
        values = ", ".join(["4.0"] * len(BATTING_RESULTS))
        run(
            f"INSERT INTO battingcardratings (battingcard_id, vs_hand, {results}) "
            f"SELECT n, h.hand, {values} FROM ({numbers}) s CROSS JOIN "
            "(SELECT 'L' AS hand UNION ALL SELECT 'R') h"
        )
        run(
            "INSERT INTO cardposition (player_id, variant, position, range, error) "
            f"SELECT n, 0, 'SS', 3, 10 FROM ({numbers}) s"
        )
    add_indexes(engine)
    ids = list(range(1, cardsets + 1))
    if with_ledger:
        _ledger(engine, ids)
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
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
