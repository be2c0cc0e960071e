"""One season of the demo: its qualifying players and the cards each one gets."""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pd_pipeline.demo.lahman import batting_totals, fielding_totals, pitching_totals, season_totals
from pd_pipeline.demo.ratings import (
    batting_card,
    batting_sides,
    fielding_ratings,
    hitter_scores,
    listed_positions,
    pitcher_roles,
    pitcher_value,
    pitching_card,
    pitching_sides,
    position_rows,
    rarity_tiers,
    tweak_units,
)

MIN_PA = 150  # plate appearances for a batting card

MIN_IPOUTS = 120  # 40 innings for a pitching card

RARITY_SHARES = (0.02, 0.05, 0.12, 0.23, 0.28, 0.30)


@dataclass
class PlayerCards:
    """One player of a cardset: his row and his cards, before the database gives them ids."""

    player: dict[str, Any]
    # per card type: (card row, {vs_hand: chances in units}) for variant 0 and any extra variants
    cards: dict[str, list[tuple[dict[str, Any], dict[str, dict[str, int]]]]] = field(
        default_factory=dict
    )
    positions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Season:
    """One season's qualifying players and what their cards are made from."""

    league: dict[str, float]
    batting: dict[str, dict]  # everybody's batting totals (pitchers' own batting included)
    hitters: dict[str, dict]  # batting-card players: totals, scores and grades
    pitchers: dict[str, dict]
    positions: dict[str, list[str]]
    fielding: dict[str, list[dict]]
    clubs: dict[str, dict]
    tier: dict[str, int]  # rarity tier, 0 = best


def load_season(data: dict[str, pd.DataFrame], year: int) -> _Season:
    batting = batting_totals(data, year)
    pitching = pitching_totals(data, year)
    league = _league(batting, pitching)
    hitters = batting[batting["PA"] >= MIN_PA].copy()
    pitchers = pitching[pitching["IPouts"] >= MIN_IPOUTS]
    pitcher_rows = pitchers.to_dict("index")
    fielding = _by_player(
        fielding_ratings(fielding_totals(data, year)).sort_values("innings", ascending=False)
    )
    games = {pid: [(f["POS"], f["G"]) for f in rows] for pid, rows in fielding.items()}
    dh_games = season_totals(data["Appearances"], year)["G_dh"].to_dict()
    positions = {
        pid: listed_positions(
            _position_games(games.get(pid, []), dh_games.get(pid, 0), pid in hitters.index)
            + (pitcher_roles(pitcher_rows[pid]) if pid in pitcher_rows else [])
        )
        for pid in hitters.index.union(pitchers.index)
    }
    hitters["main_pos"] = [_main_position(positions[pid]) for pid in hitters.index]
    hitters = hitters.join(hitter_scores(hitters, league))
    tier = pd.concat(
        [
            rarity_tiers(hitters["value"], RARITY_SHARES),
            rarity_tiers(pitcher_value(pitchers, league), RARITY_SHARES),
        ]
    )
    return _Season(
        league=league,
        batting=batting.to_dict("index"),
        hitters=hitters.to_dict("index"),
        pitchers=pitcher_rows,
        positions=positions,
        fielding=fielding,
        clubs=_clubs(data, year).to_dict("index"),
        tier=tier.groupby(level=0).min().to_dict(),  # a two-way player: his better card
    )


def _by_player(frame: pd.DataFrame) -> dict[str, list[dict]]:
    """A frame's rows as dicts grouped by player, in frame order (pandas groupby is slow here)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for row in frame.to_dict("records"):
        out[row["playerID"]].append(row)
    return out


def _position_games(games: list[tuple[str, float]], dh: float, hitter: bool) -> list:
    """A hitter's fielding positions and DH games (pitching cameos left out)."""
    if not hitter:
        return []
    return [(pos, g) for pos, g in [*games, ("DH", dh)] if pos != "P" and g > 0]


def _main_position(positions: list[str]) -> str:
    return next((pos for pos in positions if pos not in ("SP", "RP")), "DH")


def _league(bat: pd.DataFrame, pit: pd.DataFrame) -> dict[str, float]:
    """Season-wide rates: OPS+ and ERA baselines, hit mix for pitchers, FIP constant."""
    lg, pl = bat.sum(), pit.sum()
    era = 9 * pl["ER"] / pl["IP"]
    fip_raw = (13 * pl["HR"] + 3 * (pl["BB"] + pl["HBP"]) - 2 * pl["SO"]) / pl["IP"]
    hits = lg["H"] - lg["HR"]
    return {
        "OBP": (lg["H"] + lg["BB"] + lg["HBP"]) / (lg["AB"] + lg["BB"] + lg["HBP"] + lg["SF"]),
        "SLG": (lg["1B"] + 2 * lg["2B"] + 3 * lg["3B"] + 4 * lg["HR"]) / lg["AB"],
        "AVG": lg["H"] / lg["AB"],
        "era": era,
        "fip_constant": era - fip_raw,
        "double_share": lg["2B"] / hits,
        "triple_share": lg["3B"] / hits,
        "hr_rate": pl["HR"] / pl["BFP"],
    }


def _clubs(data: dict[str, pd.DataFrame], year: int) -> pd.DataFrame:
    """Per player the club he played most games for, and its franchise's latest name."""
    app = data["Appearances"][data["Appearances"]["yearID"] == year]
    main = app.sort_values(["G_all", "teamID"], ascending=[False, True])
    club = main.drop_duplicates("playerID").set_index("playerID")["teamID"]
    teams = data["Teams"]
    latest = teams.sort_values("yearID").drop_duplicates("franchID", keep="last")
    this_year = teams[teams["yearID"] == year].set_index("teamID")
    return pd.DataFrame(
        {
            "mlbclub": club.map(this_year["name"]),
            "franchise": club.map(this_year["franchID"]).map(latest.set_index("franchID")["name"]),
        }
    )


def player_cards(
    season: _Season,
    pid: str,
    person: dict,
    rarity_id: int,
    rng: np.random.Generator,
    extra_share: float,
) -> PlayerCards:
    bats = _text(person["bats"]).replace("B", "S") or "R"  # Lahman's B(oth) is a switch hitter
    throws = _text(person["throws"]) or "R"
    positions = season.positions[pid]
    club = season.clubs.get(pid, {})
    entry = PlayerCards(
        player={
            "p_name": f"{_text(person['nameFirst'])} {_text(person['nameLast'])}".strip(),
            "rarity_id": rarity_id,
            "mlbclub": _text(club.get("mlbclub")) or None,
            "franchise": _text(club.get("franchise")) or None,
            **{f"pos_{i}": pos for i, pos in enumerate((positions + [None] * 8)[:8], 1)},
            "bbref_id": _text(person["bbrefID"]) or None,
        }
    )
    fielded = {*positions, "P"} if pid in season.pitchers else set(positions)
    entry.positions = position_rows(
        [f for f in season.fielding.get(pid, []) if f["POS"] in fielded]
    )
    if pid in season.hitters:
        h = season.hitters[pid] | {"hand": bats}
        card = batting_card(h, rng)
        sides = batting_sides(h, rng)
        entry.cards["battingcard"] = _with_variants(card, sides, rng, extra_share)
    if pid in season.pitchers:
        p = season.pitchers[pid] | {"hand": throws}
        card = pitching_card(p, bats, season.batting.get(pid), rng)
        sides = pitching_sides(p, season.league, rng)
        entry.cards["pitchingcard"] = _with_variants(card, sides, rng, extra_share)
    return entry


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _with_variants(
    card: dict, sides: dict, rng: np.random.Generator, share: float
) -> list[tuple[dict, dict]]:
    """The base card (variant 0) and, for about `share` of cards, 1-3 tweaked variants."""
    out = [({**card, "variant": 0}, sides)]
    if rng.random() < share:
        wanted = int(rng.integers(1, 4))
        numbers: set[int] = set()
        while len(numbers) < wanted:
            numbers.add(int(rng.integers(100_000_000, 1_000_000_000)))
        for number in sorted(numbers):
            tweaked = {vs: tweak_units(units, rng) for vs, units in sides.items()}
            out.append(({**card, "variant": number}, tweaked))
    return out
