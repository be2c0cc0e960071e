"""Writing demo cardsets into the card tables."""

from collections import Counter

import sqlalchemy as sa

from pd_pipeline.db import schema as s
from pd_pipeline.demo.ratings import side_row
from pd_pipeline.demo.season import PlayerCards


def require_empty(conn: sa.Connection) -> None:
    for table in (s.cardset, s.rarity, s.player):
        if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar():
            raise ValueError(f"seed_demo needs an empty card database: {table.name} has rows")


def insert_rows(
    conn: sa.Connection, table: sa.Table, rows: list[dict], key: str = "id"
) -> list[int]:
    """Bulk insert; the new ids in the order of `rows`."""
    if not rows:
        return []
    stmt = table.insert().returning(table.c[key], sort_by_parameter_order=True)
    return list(conn.execute(stmt, rows).scalars())


def _insert_all(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    if rows:
        conn.execute(table.insert(), rows)


def write_season(
    conn: sa.Connection, year: int, players: list[PlayerCards], counts: Counter[str]
) -> None:
    description = (
        f"{len(players)} players of the {year} MLB season, rated from their real stats "
        "(Lahman Baseball Databank; demo data)"
    )
    (cardset_id,) = insert_rows(
        conn, s.cardset, [{"name": f"{year} Season", "description": description}]
    )
    rows = [{**p.player, "cardset_id": cardset_id} for p in players]
    player_ids = insert_rows(conn, s.player, rows, key="player_id")
    positions = [
        {**row, "player_id": pid}
        for pid, p in zip(player_ids, players, strict=True)
        for row in p.positions
    ]
    _insert_all(conn, s.cardposition, positions)
    for card_type, table in s.CARD_TABLES.items():
        cards = [
            (pid, card, sides)
            for pid, p in zip(player_ids, players, strict=True)
            for card, sides in p.cards.get(card_type, [])
        ]
        card_ids = insert_rows(conn, table, [{**card, "player_id": pid} for pid, card, _ in cards])
        ratings = [
            {**side_row(units), f"{card_type}_id": card_id, "vs_hand": vs}
            for card_id, (_, _, sides) in zip(card_ids, cards, strict=True)
            for vs, units in sides.items()
        ]
        _insert_all(conn, s.RATINGS_TABLES[card_type], ratings)
        counts[f"{card_type}s"] += len(cards)
        counts[f"{card_type}ratings"] += len(ratings)
        counts["variants"] += sum(1 for _, card, _ in cards if card["variant"])
    counts["cardsets"] += 1
    counts["players"] += len(players)
    counts["cardpositions"] += len(positions)
