"""Reading cards with everything their image shows (their render inputs) from the card tables."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from pd_pipeline.db import schema as s
from pd_pipeline.db.engine import gc_paused
from pd_pipeline.model import CARD_FIELDS, FIELDING_FIELDS, RESULTS, Card


def _num(value: Any) -> Any:
    # Floats that are whole numbers hash and render the same on SQLite and PostgreSQL. Past
    # 2**53 a float is no exact whole number: it stays a float (1e+300, not 300 digits).
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def load_cards(
    conn: sa.Connection,
    card_type: str,
    *,
    cardset_id: int | None = None,
    card_ids: Sequence[int] | None = None,
    lock: bool = False,
    no_cardset: bool = False,
) -> list[Card]:
    """Cards of one type in a cardset (or by id), with player, rarity, ratings and fielding.

    `no_cardset` selects the cards whose player has no cardset instead: no partition renders
    them, so they are reported as failed cards (validation names `player.cardset_id`).
    `lock` takes row locks (PostgreSQL `FOR UPDATE` on the cards, `FOR SHARE` on their data) so a
    write-back can compare the data and update the row with nobody changing either in between.
    """
    card, ratings = s.CARD_TABLES[card_type], s.RATINGS_TABLES[card_type]
    p, r, cs = s.player, s.rarity, s.cardset
    chosen = []
    if cardset_id is not None:
        chosen.append(p.c.cardset_id == cardset_id)
    if card_ids is not None:
        chosen.append(card.c.id.in_(card_ids))
    if no_cardset:
        chosen.append(p.c.cardset_id.is_(None))
    cards_of = card.join(p, card.c.player_id == p.c.player_id)
    query = (
        sa.select(
            card,
            p.c.p_name,
            p.c.cardset_id,
            p.c.mlbclub,
            p.c.franchise,
            p.c.bbref_id,
            *[p.c[f"pos_{i}"] for i in range(1, 9)],
            r.c.name.label("rarity_name"),
            r.c.color.label("rarity_color"),
            r.c.value.label("rarity_value"),
            cs.c.name.label("cardset_name"),
        )  # fmt: skip
        .select_from(cards_of)
        .outerjoin(r, p.c.rarity_id == r.c.id)
        .outerjoin(cs, p.c.cardset_id == cs.c.id)
        .where(*chosen)
        .order_by(card.c.id)
    )
    lockable = lock and conn.dialect.name == "postgresql"
    if lockable:
        query = query.with_for_update(of=card)
    with gc_paused():
        rows = conn.execute(query).mappings().all()
        if not rows:
            return []
        # The cards' ratings and fielding, selected by the same conditions in the database: a
        # cardset's thousands of ids never travel as IN (...) lists.
        ids = sa.select(card.c.id).select_from(cards_of).where(*chosen)
        players = sa.select(card.c.player_id).select_from(cards_of).where(*chosen)
        ratings_by_card = _ratings(conn, card_type, ratings, ids, lockable)
        fielding = _fielding(conn, players, lockable)
        return [_card(card_type, row, ratings_by_card, fielding) for row in rows]


def _ratings(conn, card_type, table, ids, lock) -> dict[int, dict[str, dict]]:
    fk = table.c[f"{card_type}_id"]
    names = (*RESULTS[card_type], "avg", "obp", "slg")
    query = (
        sa.select(fk, table.c.vs_hand, *[table.c[k] for k in names])
        .where(fk.in_(ids))
        .order_by(table.c.id)
    )
    if lock:
        query = query.with_for_update(read=True)
    out: dict[int, dict[str, dict]] = defaultdict(dict)
    for card_id, hand, *values in conn.execute(query).all():  # tuples: ~25 values a side
        out[card_id][hand] = dict(zip(names, map(_num, values), strict=True))
    return out


def _fielding(conn, players, lock) -> dict[tuple[int, int], list[dict]]:
    t = s.cardposition
    query = (
        sa.select(t.c.player_id, t.c.variant, *[t.c[f] for f in FIELDING_FIELDS])
        .where(t.c.player_id.in_(players))
        .order_by(t.c.id)
    )
    if lock:
        query = query.with_for_update(read=True)
    out: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for player_id, variant, *values in conn.execute(query).all():
        out[(player_id, variant)].append(dict(zip(FIELDING_FIELDS, values, strict=True)))
    return out


def _card(card_type, row, ratings_by_card, fielding) -> Card:
    positions = [row[f"pos_{i}"] for i in range(1, 9) if row[f"pos_{i}"]]
    # A variant without its own fielding rows plays like the base card.
    field = fielding.get((row["player_id"], row["variant"])) or fielding.get(
        (row["player_id"], 0), []
    )
    inputs = {
        "player": {
            "id": row["player_id"],
            "name": row["p_name"],
            "mlbclub": row["mlbclub"],
            "franchise": row["franchise"],
            "bbref_id": row["bbref_id"],
            "positions": positions,
        },
        "cardset": {"id": row["cardset_id"], "name": row["cardset_name"]},
        "rarity": {
            "name": row["rarity_name"],
            "color": row["rarity_color"],
            "value": row["rarity_value"],
        },
        "variant": row["variant"],
        "card": {f: _num(row[f]) for f in CARD_FIELDS[card_type]},
        "ratings": dict(sorted(ratings_by_card.get(row["id"], {}).items())),
        "fielding": field,
    }
    return Card(
        card_type=card_type,
        card_id=row["id"],
        player_id=row["player_id"],
        variant=row["variant"],
        cardset_id=row["cardset_id"],
        image_url=row["image_url"],
        inputs=inputs,
    )


def cardset_ids(conn: sa.Connection) -> list[int]:
    """Every cardset that has players (whether or not the cardset row exists)."""
    query = sa.select(s.player.c.cardset_id).where(s.player.c.cardset_id.is_not(None)).distinct()
    return sorted(conn.scalars(query))
