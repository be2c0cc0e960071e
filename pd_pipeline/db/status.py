"""Per-cardset counts of where every card's image stands, for `pd-pipeline status`."""

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.audit import audit_cardset
from pd_pipeline.db import schema
from pd_pipeline.db.cards import CARD_TYPES, cardset_ids
from pd_pipeline.storage.stores import ObjectStore


@dataclass(frozen=True)
class CardsetStatus:
    cardset_id: int
    card_type: str
    total: int
    valid: int  # image_url is the canonical URL of a current image
    pending: int  # no URL yet, or a URL that is not the canonical one
    stale: int  # the image shows data that has changed since (queued ones included)
    failed: int  # the last render failed
    oldest_wait: dt.timedelta | None


def cardset_status(
    engine: sa.Engine, store: ObjectStore, template_version: str
) -> list[CardsetStatus]:
    """Audits every cardset from the database and the ledger (objects are not fetched)."""
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        ids = cardset_ids(conn)
    out = []
    for cardset_id in ids:
        for card_type in CARD_TYPES:
            audit = audit_cardset(
                engine, store, card_type, cardset_id, template_version, check_objects=False
            )
            if not audit.cards:
                continue
            out.append(
                CardsetStatus(
                    cardset_id,
                    card_type,
                    total=audit.cards,
                    valid=audit.cards - len(audit.waiting()),
                    pending=len(audit.missing) + len(audit.not_canonical) + len(audit.unseen),
                    stale=len(audit.stale) + len(audit.queued),
                    failed=len(audit.failed),
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
