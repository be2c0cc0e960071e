"""The sensor's rolling sweep: a window of card ids at a time, each card assessed
(`state.assess`), and the ones needing work that no index can find flagged in the ledger, so the
sensor's backlog sees them (the nightly reconcile covers everything)."""

import sqlalchemy as sa

from pd_pipeline.db import ledger, schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.engine import write_transaction
from pd_pipeline.images import state
from pd_pipeline.images.state import Context, Next

# What a sweep flags: the work a run would do. Cards rolled out to a new design are paced by the
# rollout, and failed ones wait for their data to change.
FLAGGED = {Next.RENDER, Next.ADOPT, Next.WRITE_URL}


def sweep(
    engine: sa.Engine, ctx: Context, card_type: str, after_id: int, limit: int
) -> tuple[int, int]:
    """Assess the `limit` cards after `after_id`; flag the ones needing work (and note when NULL
    ones were first seen waiting). Returns the cursor for the next sweep (0 to start over) and
    how many cards it flagged."""
    card = schema.CARD_TABLES[card_type]
    window = sa.select(card.c.id).where(card.c.id > after_id).order_by(card.c.id).limit(limit)
    with engine.connect() as conn:
        ids = list(conn.scalars(window))
        made = ledger.entries(conn, card_type, ids)
        cards = load_cards(conn, card_type, card_ids=ids) if ids else []
    now = ledger.utcnow()
    rows, flagged = [], 0
    for c in cards:
        entry = made.get(c.card_id)
        verdict = state.assess(c, entry, ctx)
        if c.cardset_id is None or verdict.next not in FLAGGED:
            continue
        if c.image_url is None and (entry is None or entry.status != state.FAILED):
            # The NULL row is found by its index; the sweep only notes since when it waits. A
            # failed one the backlog leaves out until its data changes: then it is flagged.
            if entry is None or entry.first_pending_at is None:
                rows.append(state.waiting(c, now))
        elif entry is None or entry.flag is None:
            rows.append(state.flagged(c, verdict.reason, now))
            flagged += 1
    if rows:
        with write_transaction(engine) as conn:
            ledger.upsert(conn, rows, **state.WAITING_UPSERT)
    next_cursor = ids[-1] if len(ids) == limit else 0
    return next_cursor, flagged
