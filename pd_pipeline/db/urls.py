"""The SQL of write-back: which rows may need a URL, and the conditional UPDATE that sets it."""

from collections.abc import Sequence

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.ledger import LedgerStatus


def candidate_ids(
    conn: sa.Connection,
    card_type: str,
    cardset_id: int,
    image: str = "png",
    column: str | None = "image_url",
) -> list[int]:
    """Rows of the cardset whose URL `column` differs from the URL of their stored `image`, and
    flagged ones (the cheap prefilter: what happens to each is decided per card, under lock).
    Without the column (`animated_url` not added yet), the flagged ones."""
    return list(conn.scalars(candidates_query(card_type, cardset_id, image, column)))


def candidates_query(
    card_type: str, cardset_id: int, image: str = "png", column: str | None = "image_url"
) -> sa.Select:
    card, entry = schema.CARD_TABLES[card_type], schema.card_render
    differs = sa.false()
    if column is not None:
        differs = sa.and_(entry.c.status == LedgerStatus.MADE,
                          card.c[column].is_distinct_from(entry.c.url))  # fmt: skip
    return (
        sa.select(card.c.id)
        .join(schema.player, schema.player.c.player_id == card.c.player_id)
        .join(entry, sa.and_(entry.c.card_type == card_type, entry.c.card_id == card.c.id))
        .where(
            entry.c.image == image,
            schema.player.c.cardset_id == cardset_id,
            sa.or_(differs, entry.c.flag.is_not(None)),
        )
        .order_by(card.c.id)
    )


def set_urls(
    conn: sa.Connection, card_type: str, updates: Sequence[tuple], column: str = "image_url"
) -> None:
    """Set each `(id, expected_url, url)` row's URL `column` to url (None clears it), only where
    it is still expected_url (so a row changed behind the caller's back is never overwritten)."""
    if not updates:
        return
    table = schema.CARD_TABLES[card_type]
    if conn.dialect.name == "postgresql":
        # One set-based statement per batch: ~3x faster than a statement per row, even pipelined.
        ids, seen, urls = (list(column) for column in zip(*updates, strict=True))
        conn.execute(
            sa.text(
                f"UPDATE {table.name} AS card SET {column} = new.url "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:seen AS text[]), "
                "CAST(:urls AS text[])) AS new(id, seen, url) "
                f"WHERE card.id = new.id AND card.{column} IS NOT DISTINCT FROM new.seen"
            ),
            {"ids": ids, "seen": seen, "urls": urls},
        )
        return
    conn.execute(
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("b_id"),
            table.c[column].is_not_distinct_from(sa.bindparam("b_seen")),
        )
        .values({column: sa.bindparam("b_url")}),
        [{"b_id": i, "b_seen": seen, "b_url": url} for i, seen, url in updates],
    )
