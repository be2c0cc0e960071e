"""The pipeline's own table, `card_render`: what was made for each card and whether it is stored."""

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pd_pipeline.db.schema import card_render

STORED, FAILED, PENDING, STALE = "stored", "failed", "pending", "stale"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def entries(conn: sa.Connection, card_type: str, card_ids: Sequence[int]) -> dict[int, Any]:
    """Ledger rows by card id (cards never seen have none)."""
    out = {}
    for start in range(0, len(card_ids), 5000):
        chunk = card_ids[start : start + 5000]
        query = sa.select(card_render).where(
            card_render.c.card_type == card_type, card_render.c.card_id.in_(chunk)
        )
        out.update({row.card_id: row for row in conn.execute(query)})
    return out


def upsert(conn: sa.Connection, rows: list[dict[str, Any]], *, keep: Sequence[str] = ()) -> None:
    """Insert or update ledger rows (keyed by card_type, card_id) in one statement.

    Columns named in `keep` keep their stored value when it is not NULL (e.g. first_pending_at:
    the time the pipeline *first* saw the card pending).
    """
    if not rows:
        return
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        card_render
    )
    columns = [c for c in rows[0] if c not in ("card_type", "card_id")]
    updates = {
        c: sa.func.coalesce(card_render.c[c], insert.excluded[c])
        if c in keep
        else insert.excluded[c]
        for c in columns
    }
    statement = insert.on_conflict_do_update(index_elements=["card_type", "card_id"], set_=updates)
    # Key order: two workers upserting overlapping cards lock rows in the same order, no deadlock.
    rows = sorted(rows, key=lambda row: (row["card_type"], row["card_id"]))
    for start in range(0, len(rows), 1000):
        conn.execute(statement, rows[start : start + 1000])


def failures(conn: sa.Connection, card_type: str, cardset_id: int) -> list[tuple[int, str]]:
    """(card id, error) of the cardset's cards whose last attempt failed."""
    query = (
        sa.select(card_render.c.card_id, card_render.c.error)
        .where(
            card_render.c.card_type == card_type,
            card_render.c.cardset_id == cardset_id,
            card_render.c.status == FAILED,
        )
        .order_by(card_render.c.card_id)
    )
    return [(row.card_id, row.error) for row in conn.execute(query)]
