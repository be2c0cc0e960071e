"""The sensor's rolling sweep, where the database does not track changes (`db.changes`): a window
of card ids at a time, each card assessed (`state.assess`), and the ones needing work that no
index can find flagged in the ledger, so the sensor's backlog sees them (the nightly reconcile
covers everything)."""

import sqlalchemy as sa

from pd_pipeline.db import ledger, schema
from pd_pipeline.db.engine import write_transaction
from pd_pipeline.images import state
from pd_pipeline.images.state import Policy
from pd_pipeline.images.survey import notice


def sweep(
    engine: sa.Engine, policy: Policy, card_type: str, after_id: int, limit: int
) -> tuple[int, int]:
    """Assess the `limit` cards after `after_id`; flag the ones needing work (and note when NULL
    ones were first seen waiting). Returns the cursor for the next sweep (0 to start over) and
    how many cards it flagged."""
    card = schema.CARD_TABLES[card_type]
    window = sa.select(card.c.id).where(card.c.id > after_id).order_by(card.c.id).limit(limit)
    with engine.connect() as conn:
        ids = list(conn.scalars(window))
        rows = notice(conn, policy, card_type, ids, ledger.utcnow(), state.FoundBy.SWEEP)
    if rows:
        with write_transaction(engine) as conn:
            ledger.upsert(conn, rows, **state.WAITING_UPSERT)
    next_cursor = ids[-1] if len(ids) == limit else 0
    return next_cursor, sum(row.get("flag") is not None for row in rows)


def window(last_id: int, cards: int, pass_minutes: int | None, interval_s: int) -> int:
    """Cards a tick sweeps per type in a table whose ids reach `last_id`: `cards`
    (PD_SENSOR_SWEEP_CARDS), or, with `pass_minutes`, what covers the table in that time."""
    if pass_minutes is None:
        return cards
    ticks = max(1, pass_minutes * 60 // interval_s)
    return max(1, -(-last_id // ticks))


def last_ids(conn: sa.Connection) -> dict[str, int]:
    """The highest card id of each card type (what a sweep's pass runs through)."""
    return {
        card_type: conn.scalar(sa.select(sa.func.max(table.c.id))) or 0
        for card_type, table in schema.CARD_TABLES.items()
    }
