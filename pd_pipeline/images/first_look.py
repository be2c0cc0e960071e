"""The first look at a database: every card row the ledger has never seen gets an entry, at
database speed, a cardset at a time. A row with a URL is flagged (`unseen_url`: the next run of
its cardset adopts it or renders the card, as PD_ADOPT and PD_ADOPT_OUTSIDE say), a row without
one is noted as waiting. It is what the rolling sweep would note of each such card
(`state.noticed`), done in one statement per cardset and card type instead of a window of cards
per tick: on a million rows carrying another renderer's URLs, the sensor then launches their
cardsets at its usual pace. `pd-pipeline track-changes` runs it whole; the sensor's first ticks
run it within a time budget, picking up where they left off.
"""

import time
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline import __version__
from pd_pipeline.db import schema, statistics
from pd_pipeline.db.cards import cardset_ids
from pd_pipeline.db.engine import write_transaction
from pd_pipeline.db.ledger import LedgerStatus, utcnow
from pd_pipeline.images.state import FoundBy, Reason
from pd_pipeline.model import CARD_TYPES


@dataclass(frozen=True)
class Look:
    cardsets: list[int]  # looked at, in this call
    noted: int  # entries made
    left: list[int]  # cardsets not looked at yet (the budget ran out)


def first_look(engine: sa.Engine, after: int = 0, budget_s: float | None = None) -> Look:
    """Look at every cardset after id `after`, in id order, until `budget_s` seconds are spent
    (every one without a budget)."""
    started = time.monotonic()
    with engine.connect() as conn:
        todo = [i for i in cardset_ids(conn) if i > after]
    looked, noted, unanalyzed = [], 0, 0
    for cardset_id in todo:
        if budget_s is not None and looked and time.monotonic() - started > budget_s:
            break
        with write_transaction(engine) as conn:
            made = sum(_note(conn, card_type, cardset_id) for card_type in CARD_TYPES)
        looked.append(cardset_id)
        noted, unanalyzed = noted + made, unanalyzed + made
        # The next cardset's query looks for its cards in the ledger this one grew.
        if made and statistics.keep_current(engine, changed=unanalyzed):
            unanalyzed = 0
    return Look(looked, noted, todo[len(looked) :])


def _note(conn: sa.Connection, card_type: str, cardset_id: int) -> int:
    card, entry, player = schema.CARD_TABLES[card_type], schema.card_render, schema.player
    seen = sa.and_(
        entry.c.card_type == card_type, entry.c.card_id == card.c.id, entry.c.image == "png"
    )
    has_url = card.c.image_url.is_not(None)
    unseen = (
        sa.select(
            sa.literal(card_type),
            card.c.id,
            sa.literal("png"),
            player.c.cardset_id,
            card.c.player_id,
            card.c.variant,
            sa.literal(LedgerStatus.TAKEN.value),
            sa.case((has_url, Reason.UNSEEN_URL.name.lower()), else_=None),
            sa.case((has_url, FoundBy.FIRST_LOOK.value), else_=FoundBy.NO_URL.value),
            sa.literal(utcnow()),
            sa.literal(__version__),
        )  # fmt: skip
        .select_from(card.join(player, player.c.player_id == card.c.player_id))
        .where(player.c.cardset_id == cardset_id, ~sa.exists().where(seen))
    )
    columns = ["card_type", "card_id", "image", "cardset_id", "player_id", "variant", "status",
               "flag", "found_by", "first_pending_at", "release"]  # fmt: skip
    # Counted by what it returns: drivers do not all count an INSERT ... SELECT's rows.
    made = sa.insert(entry).from_select(columns, unseen).returning(entry.c.card_id)
    return len(conn.execute(made).all())


def unseen_cards(conn: sa.Connection) -> int:
    """Card rows the ledger has never seen (a scan of the card tables: for `pd-pipeline status`)."""
    entry, total = schema.card_render, 0
    for card_type, card in schema.CARD_TABLES.items():
        seen = sa.and_(
            entry.c.card_type == card_type, entry.c.card_id == card.c.id, entry.c.image == "png"
        )
        total += conn.scalar(sa.select(sa.func.count()).where(~sa.exists().where(seen)))
    return total
