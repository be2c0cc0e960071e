"""The SQL of write-back: which rows may need a URL, and the conditional UPDATE that sets it."""

from collections.abc import Sequence

import sqlalchemy as sa

from pd_pipeline.db import schema


def candidate_ids(conn: sa.Connection, card_type: str, cardset_id: int) -> list[int]:
    """Rows of the cardset whose image_url differs from the URL of their stored object (the
    cheap prefilter: whether a URL may be written is decided per card, under lock)."""
    return list(conn.scalars(candidates_query(card_type, cardset_id)))


def candidates_query(card_type: str, cardset_id: int) -> sa.Select:
    card, entry = schema.CARD_TABLES[card_type], schema.card_render
    return (
        sa.select(card.c.id)
        .join(schema.player, schema.player.c.player_id == card.c.player_id)
        .join(entry, sa.and_(entry.c.card_type == card_type, entry.c.card_id == card.c.id))
        .where(
            schema.player.c.cardset_id == cardset_id,
            entry.c.status == "stored",
            card.c.image_url.is_distinct_from(entry.c.url),
        )
        .order_by(card.c.id)
    )


def set_urls(conn: sa.Connection, card_type: str, updates: Sequence[tuple]) -> None:
    """Set each `(id, expected_url, url)` row's image_url to url, only where it is still
    expected_url (so a row changed behind the caller's back is never overwritten)."""
    table = schema.CARD_TABLES[card_type]
    if conn.dialect.name == "postgresql":
        # One set-based statement per batch: ~3x faster than a statement per row, even pipelined.
        ids, seen, urls = (list(column) for column in zip(*updates, strict=True))
        conn.execute(
            sa.text(
                f"UPDATE {table.name} AS card SET image_url = new.url "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:seen AS text[]), "
                "CAST(:urls AS text[])) AS new(id, seen, url) "
                "WHERE card.id = new.id AND card.image_url IS NOT DISTINCT FROM new.seen"
            ),
            {"ids": ids, "seen": seen, "urls": urls},
        )
        return
    conn.execute(
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("b_id"),
            table.c.image_url.is_not_distinct_from(sa.bindparam("b_seen")),
        )
        .values(image_url=sa.bindparam("b_url")),
        [{"b_id": i, "b_seen": seen, "b_url": url} for i, seen, url in updates],
    )
