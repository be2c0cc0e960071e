"""Ratings from real stats: a player's 108 chances per side, his card fields and fielding.

Chances follow his real rates, split by handedness; variants are the same card with a few
chances moved. Chances are counted in units of 0.05, as on the real cards.
"""

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pd_pipeline.model import CHANCES_PER_SIDE

MIN_POSITION_GAMES = 3  # fewer games at a position are cameos (his main position always counts)
UNITS = 20  # chances are multiples of 0.05, as on the real cards
TOTAL_UNITS = CHANCES_PER_SIDE * UNITS

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

_STANDARD_NORMAL = statistics.NormalDist()


def _zscore(values: pd.Series) -> pd.Series:
    std = values.std()
    return (values - values.mean()) / (std if std > 0 else 1.0)


def _normal_scores(values: pd.Series) -> pd.Series:
    """Ranks mapped onto a standard normal: like z-scores, but immune to skewed rates."""
    pct = (values.rank() - 0.5) / len(values)
    return pct.map(_STANDARD_NORMAL.inv_cdf)


def rarity_tiers(score: pd.Series, shares: Sequence[float]) -> pd.Series:
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


def side_row(units: dict[str, int]) -> dict[str, float]:
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
    return chances, max(CHANCES_PER_SIDE - sum(chances.values()), 0.0)


def _platoon(hand: str, favoured_vs: str, rng: np.random.Generator) -> dict[str, float]:
    """Multiplier on good outcomes per opposing hand; the two sides average to 1 (his real line)."""
    edge = PLATOON.get(hand, PLATOON["R"]) * rng.uniform(0.6, 1.4)
    if hand == "S":  # switch hitters / pitchers: a small edge either way
        favoured_vs = str(rng.choice(["L", "R"]))
    other = "R" if favoured_vs == "L" else "L"
    return {favoured_vs: 1 + edge, other: 1 - edge}


def tweak_units(units: dict[str, int], rng: np.random.Generator) -> dict[str, int]:
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


def batting_sides(h: dict, rng: np.random.Generator) -> dict[str, dict[str, int]]:
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


def hitter_scores(hit: pd.DataFrame, league: dict[str, float]) -> pd.DataFrame:
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
    return rarity_tiers(score, shares).map(dict(enumerate("ABCD")))


def batting_card(h: dict, rng: np.random.Generator) -> dict[str, Any]:
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


def pitching_sides(p: dict, league: dict, rng: np.random.Generator) -> dict[str, dict[str, int]]:
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


def pitcher_value(pit: pd.DataFrame, league: dict) -> pd.Series:
    """Runs saved over a replacement pitcher, from an ERA/FIP blend shrunk toward the league."""
    fip = (13 * pit["HR"] + 3 * (pit["BB"] + pit["HBP"]) - 2 * pit["SO"]) / pit["IP"]
    era = 9 * pit["ER"] / pit["IP"]
    runs = 0.5 * era + 0.5 * (fip + league["fip_constant"])
    shrunk = (runs * pit["IP"] + league["era"] * 30) / (pit["IP"] + 30)
    return (1.3 * league["era"] - shrunk) * pit["IP"] / 9


def pitching_card(
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


def fielding_ratings(fld: pd.DataFrame) -> pd.DataFrame:
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


def position_rows(fielding: list[dict]) -> list[dict[str, Any]]:
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


def listed_positions(games: Iterable[tuple[str, float]]) -> list[str]:
    """Positions by games, best first; cameos dropped but his main position always kept."""
    ordered = sorted(games, key=lambda pg: -pg[1])
    return [pos for i, (pos, g) in enumerate(ordered) if i == 0 or g >= MIN_POSITION_GAMES][:8]


def pitcher_roles(p: dict) -> list[tuple[str, float]]:
    """SP and/or RP with their games; a role under a fifth of his outings is left out."""
    roles = [("SP", p["GS"]), ("RP", p["G"] - p["GS"])]
    return [(r, g) for r, g in roles if g > 0 and g >= 0.2 * p["G"]]
