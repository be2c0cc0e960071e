"""Per-cardset counts of where every card's image stands, for `pd-pipeline status`."""

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.cards import cardset_ids
from pd_pipeline.images.audit import audit_cardset
from pd_pipeline.images.state import Context, State
from pd_pipeline.model import CARD_TYPES


@dataclass(frozen=True)
class CardsetStatus:
    cardset_id: int
    card_type: str
    total: int
    valid: int  # the canonical URL of a current image of ours
    adopted: int  # a URL someone else made, confirmed and kept
    old_design: int  # a valid image of the current data, in an older design
    waiting: int  # no URL yet, or one to confirm or write
    stale: int  # the image shows data that has changed since
    failed: int  # the last render failed
    oldest_wait: dt.timedelta | None

    @property
    def lacking(self) -> int:
        """Cards without a valid URL of an image of their current data."""
        return self.waiting + self.stale + self.failed


def cardset_status(engine: sa.Engine, ctx: Context) -> list[CardsetStatus]:
    """Every cardset's cards by state, from the database and the ledger (no object is read)."""
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        ids = cardset_ids(conn)
    out = []
    for cardset_id in ids:
        for card_type in CARD_TYPES:
            audit = audit_cardset(engine, None, ctx, card_type, cardset_id, check_objects=False)
            if not audit.cards:
                continue
            out.append(
                CardsetStatus(
                    cardset_id,
                    card_type,
                    total=audit.cards,
                    valid=audit.count(State.SETTLED),
                    adopted=audit.count(State.ADOPTED),
                    old_design=audit.count(State.STALE_BY_DESIGN),
                    waiting=audit.count(State.UNSEEN, State.PENDING, State.STORED),
                    stale=audit.count(State.STALE),
                    failed=audit.count(State.FAILED),
                    oldest_wait=now - audit.first_pending if audit.first_pending else None,
                )
            )
    return out


def example_urls(conn: sa.Connection) -> list[str]:
    """One written URL per card type, to show people where to look."""
    urls = []
    for table in schema.CARD_TABLES.values():
        query = sa.select(table.c.image_url).where(table.c.image_url.is_not(None)).limit(1)
        urls += list(conn.scalars(query))
    return urls
