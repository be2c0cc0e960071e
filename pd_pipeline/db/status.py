"""Per-cardset counts of where every card's image stands."""

from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import ledger, schema
from pd_pipeline.db.cards import CARD_TYPES


@dataclass(frozen=True)
class CardsetStatus:
    cardset_id: int
    card_type: str
    total: int
    with_url: int  # image_url is the URL of the card's confirmed object
    missing: int  # image_url is NULL
    failed: int  # the last render of the card failed


def cardset_status(conn: sa.Connection) -> list[CardsetStatus]:
    out = []
    for card_type in CARD_TYPES:
        card, entry, player = schema.CARD_TABLES[card_type], schema.card_render, schema.player
        query = (
            sa.select(
                player.c.cardset_id,
                sa.func.count(),
                sa.func.count().filter(
                    sa.and_(entry.c.status == ledger.STORED, card.c.image_url == entry.c.url)
                ),
                sa.func.count().filter(card.c.image_url.is_(None)),
                sa.func.count().filter(entry.c.status == ledger.FAILED),
            )
            .select_from(card)
            .join(player, player.c.player_id == card.c.player_id)
            .outerjoin(entry, sa.and_(entry.c.card_type == card_type, entry.c.card_id == card.c.id))
            .where(player.c.cardset_id.is_not(None))
            .group_by(player.c.cardset_id)
        )
        out += [CardsetStatus(row[0], card_type, *row[1:]) for row in conn.execute(query)]
    return sorted(out, key=lambda s: (s.cardset_id, s.card_type))


def example_urls(conn: sa.Connection) -> list[str]:
    """One written URL per card type, to show people where to look."""
    urls = []
    for table in schema.CARD_TABLES.values():
        query = sa.select(table.c.image_url).where(table.c.image_url.is_not(None)).limit(1)
        urls += list(conn.scalars(query))
    return urls
