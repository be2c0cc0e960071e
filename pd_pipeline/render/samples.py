"""Built-in sample cards, for previewing a design without a card database.

They cover what a design must cope with: both card types, every tier (T0-T4), the longest name
a card can hold, names in scripts the fallback fonts draw, the extremes of the chart (a side of
home runs, a side of strikeouts, rows split many ways) and cards with no optional data at all
(every such field a dash).
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pd_pipeline.model import CHANCES_PER_SIDE, RESULTS, SIDES, Card, tier_of
from pd_pipeline.render.view import TEXT_MAX

# A good hitter's and a good pitcher's chances per side (each sums to 108).
BATTING = {
    "homerun": 6, "bp_homerun": 2, "triple": 0.75, "double_three": 1, "double_two": 4.5,
    "double_pull": 2, "single_two": 4, "single_one": 7.5, "single_center": 3, "bp_single": 4,
    "walk": 12.5, "hbp": 1, "lineout": 3, "popout": 3, "flyout_a": 1.5, "flyout_bq": 2.5,
    "flyout_rf_b": 3.5, "groundout_c": 2.25, "strikeout": 16, "flyout_lf_b": 7.5,
    "groundout_a": 8, "groundout_b": 12.5,
}  # fmt: skip
PITCHING = {
    "homerun": 1, "bp_homerun": 1.5, "triple": 0.5, "double_two": 2, "double_cf": 1.25,
    "single_two": 2.5, "single_one": 5.75, "single_center": 2.5, "bp_single": 3.25,
    "walk": 5, "hbp": 0.5, "strikeout": 24, "flyout_lf_b": 6.5, "flyout_cf_b": 6,
    "flyout_rf_b": 6, "groundout_a": 7.25, "groundout_b": 12.5, "xcheck_p": 1, "xcheck_c": 2,
    "xcheck_1b": 2, "xcheck_2b": 5, "xcheck_3b": 3, "xcheck_lf": 2, "xcheck_cf": 3,
    "xcheck_rf": 2,
}  # fmt: skip
FIELDS = {
    "battingcard": {"steal_low": 8, "steal_high": 12, "steal_auto": True, "steal_jump": 0.75,
                    "bunting": "B", "hit_and_run": "C", "running": 14, "offense_col": 1,
                    "hand": "L"},
    "pitchingcard": {"balk": 0, "wild_pitch": 4, "hold": -2, "starter_rating": 8,
                     "relief_rating": 2, "closer_rating": None, "batting": "1W",
                     "offense_col": 1, "hand": "R"},
}  # fmt: skip
FIELDING = [
    {"position": "RF", "innings": 1200, "range": 2, "error": 6, "arm": -2, "pb": None,
     "overthrow": None},
    {"position": "C", "innings": 10, "range": 3, "error": 9, "arm": 1, "pb": 4, "overthrow": 7},
]  # fmt: skip
LONGEST_NAME = ("Wolfgang Amadeus Theophilus Bartholomew Montgomery-Featherstonehaugh III " * 4)[
    :TEXT_MAX
]


@dataclass(frozen=True)
class Sample:
    """A card to preview and why it was picked (how the contact sheet labels it)."""

    label: str
    card: Card


def first_variant(tier: int) -> int:
    """The smallest variant number with the look of `tier` (0 is the base card)."""
    return 0 if tier == 0 else next(v for v in range(1, 1000) if tier_of(v) == tier)


def builtin_samples() -> list[Sample]:
    """Both card types in every tier, then the hardest names and data, in that order."""
    samples = []
    for tier in range(5):
        for card_type in RESULTS:
            samples.append(Sample(f"T{tier}", _card(card_type, variant=first_variant(tier))))
    hard: list[tuple[str, str, Callable[[dict], None]]] = [
        ("battingcard", "longest name", lambda i: _set(i, "player", "name", LONGEST_NAME)),
        ("pitchingcard", "longest name", lambda i: _set(i, "player", "name", LONGEST_NAME)),
        ("battingcard", "fallback scripts", lambda i: _set(i, "player", "name", "大谷 翔平 ⚾")),
        ("pitchingcard", "right to left", lambda i: _set(i, "player", "name", "דוד בן-גוריון")),
        ("battingcard", "most home runs", lambda i: _shift(i, "strikeout", "homerun", 12)),
        ("pitchingcard", "most strikeouts", lambda i: _shift(i, "groundout_b", "strikeout", 12)),
        ("battingcard", "rows split many ways", _splinter),
        ("pitchingcard", "extreme ratings", _extreme_pitcher),
        ("battingcard", "no optional data", _bare),
        ("pitchingcard", "no optional data", _bare),
    ]
    for card_type, label, change in hard:
        card = _card(card_type, variant=first_variant(4) if "most" in label else 0)
        inputs = copy.deepcopy(card.inputs)
        change(inputs)
        samples.append(Sample(label, _card(card_type, card.variant, inputs)))
    return samples


def _card(card_type: str, variant: int = 0, inputs: dict[str, Any] | None = None) -> Card:
    if inputs is None:
        chances = BATTING if card_type == "battingcard" else PITCHING
        inputs = {
            "player": {"id": 1, "name": "Roger Maris", "mlbclub": "New York Yankees",
                       "franchise": "NYY", "bbref_id": "marisro01", "positions": ["RF", "C"]},
            "cardset": {"id": 1, "name": "Sample Cardset"},
            "rarity": {"name": "All-Star", "color": "e63946", "value": 5},
            "variant": variant,
            "card": dict(FIELDS[card_type]),
            "ratings": {side: _side(card_type, chances) for side in SIDES},
            "fielding": copy.deepcopy(FIELDING),
        }  # fmt: skip
    card_id = 1 + list(RESULTS).index(card_type)
    return Card(card_type, card_id, 1, variant, 1, None, inputs)


def _side(card_type: str, chances: dict[str, float]) -> dict[str, float | None]:
    side: dict[str, float | None] = {
        result: chances.get(result, 0) for result in RESULTS[card_type]
    }
    assert abs(sum(side.values()) - CHANCES_PER_SIDE) < 1e-9, card_type  # type: ignore[arg-type]
    return {**side, "avg": 0.281, "obp": 0.352, "slg": 0.54}


def _set(inputs: dict, part: str, field: str, value: Any) -> None:
    inputs[part][field] = value


def _shift(inputs: dict, source: str, target: str, amount: float) -> None:
    for side in inputs["ratings"].values():
        side[source] -= amount
        side[target] += amount


def _splinter(inputs: dict) -> None:
    """Every result a little, so chart rows hold three and more outcomes."""
    results = RESULTS["battingcard"]
    for side in inputs["ratings"].values():
        share = CHANCES_PER_SIDE / len(results)
        side.update({result: share for result in results})
    inputs["player"]["positions"] = ["C", "1B", "2B", "3B", "SS", "LF", "CF", "RF"]
    inputs["fielding"] = [
        {"position": p, "innings": 100, "range": 5, "error": 99, "arm": -9, "pb": 99,
         "overthrow": 99}
        for p in inputs["player"]["positions"]
    ]  # fmt: skip


def _extreme_pitcher(inputs: dict) -> None:
    inputs["card"].update(balk=20, wild_pitch=20, hold=-20, starter_rating=20, relief_rating=0,
                          closer_rating=20, batting="9W")  # fmt: skip
    inputs["rarity"] = {"name": "Hall of Fame Legend", "color": "ffd60a", "value": 99}
    for side in inputs["ratings"].values():
        side.update(avg=1.0, obp=1.0, slg=4.0)


def _bare(inputs: dict) -> None:
    inputs["player"].update(mlbclub=None, positions=[])
    inputs["cardset"]["name"] = None
    inputs["rarity"] = {"name": None, "color": None, "value": None}
    inputs["card"] = {}
    inputs["fielding"] = []
    for side in inputs["ratings"].values():
        side.update(avg=None, obp=None, slg=None)
