"""Bench data: N demo cards from real Lahman seasons (the demo's own seeding), cut to exactly N."""

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.engine import make_engine
from pd_pipeline.demo import seed_demo

# Recent seasons first: each gives ~1,100 batting and pitching cards with the demo's variants
# (2008: 1,202; 2019: 1,290), fewer before the leagues grew (1975: 853; 1960: 531).
SEASONS = (2008, 2019, *range(2018, 2008, -1), *range(2007, 1950, -1))


def _cards_at_least(season: int) -> int:
    """A safe lower bound on the cards one season gives."""
    return 1_050 if season > 1990 else 750 if season >= 1969 else 400


def _seasons_for(cards: int) -> tuple[int, ...]:
    total = 0
    for count, season in enumerate(SEASONS, 1):
        total += _cards_at_least(season)
        if total >= cards:
            return SEASONS[:count]
    raise ValueError(f"{cards} cards are more than {len(SEASONS)} demo seasons hold")


def seed_cards(url: str, cards: int) -> dict[str, int]:
    """Fill an empty card database with exactly `cards` cards (batting and pitching in the
    demo's proportions), over as many cardsets as that takes; returns cards per type."""
    seasons = _seasons_for(cards)
    engine = make_engine(url)
    schema.create_card_tables(engine)
    seed_demo(engine, seasons=seasons)
    with engine.begin() as conn:
        counts = {
            card_type: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for card_type, table in schema.CARD_TABLES.items()
        }
        total = sum(counts.values())
        if total < cards:
            raise RuntimeError(f"{len(seasons)} seasons gave {total} cards, fewer than {cards}")
        keep = {"battingcard": round(cards * counts["battingcard"] / total)}
        keep["pitchingcard"] = cards - keep["battingcard"]
        for card_type, table in schema.CARD_TABLES.items():
            ratings = schema.RATINGS_TABLES[card_type]
            # Cards past the count go, from the end of the last cardset.
            ranked = (
                sa.select(table.c.id)
                .order_by(table.c.id)
                .offset(keep[card_type])
                .limit(1)
                .scalar_subquery()
            )
            cut = sa.select(table.c.id).where(table.c.id >= ranked)
            conn.execute(sa.delete(ratings).where(ratings.c[f"{card_type}_id"].in_(cut)))
            conn.execute(sa.delete(table).where(table.c.id.in_(cut)))
    if engine.dialect.name == "sqlite":  # fold the write-ahead log into the file, to copy it
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    engine.dispose()
    return keep
