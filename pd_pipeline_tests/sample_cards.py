"""A sample card of each type, in the database's shape, for tests without a database."""

import copy
import math

from pd_pipeline.model import CHANCES_PER_SIDE, RESULTS, Card

# A slugger vs LHP / RHP and an ace's sides (each sums to 108), in the DB's shape.
BATTING = {
    "L": {"homerun": 10, "bp_homerun": 2.5, "triple": 0.45, "double_three": 1.2,
          "double_two": 4.3, "double_pull": 2.1, "single_two": 3.4, "single_one": 6.75,
          "single_center": 2.6, "bp_single": 4.2, "walk": 14.35, "hbp": 1.05, "lineout": 3.2,
          "popout": 2.45, "flyout_a": 1.8, "flyout_bq": 2.25, "flyout_rf_b": 3.6,
          "groundout_c": 1.9, "strikeout": 12.5, "flyout_lf_b": 7.4, "groundout_a": 8.0,
          "groundout_b": 12.0},
    "R": {"homerun": 7.65, "bp_homerun": 1.9, "triple": 0.9, "double_three": 0.75,
          "double_two": 5.1, "double_pull": 1.55, "single_two": 4.05, "single_one": 8.2,
          "single_center": 3.3, "bp_single": 3.5, "walk": 12.4, "hbp": 0.6, "lineout": 2.9,
          "popout": 3.15, "flyout_a": 1.35, "flyout_bq": 2.7, "flyout_rf_b": 3.25,
          "groundout_c": 2.8, "strikeout": 19.0, "flyout_lf_b": 8.1, "groundout_a": 6.75,
          "groundout_b": 8.1},
}  # fmt: skip
PITCHING = {
    "L": {"homerun": 0.9, "bp_homerun": 1.25, "triple": 0.3, "double_two": 1.6,
          "double_cf": 1.05, "single_two": 2.2, "single_one": 5.4, "single_center": 2.45,
          "bp_single": 3.1, "walk": 4.6, "hbp": 0.35, "strikeout": 26.0, "flyout_lf_b": 6.3,
          "flyout_cf_b": 5.9, "flyout_rf_b": 5.9, "groundout_a": 6.7, "groundout_b": 14.0,
          "xcheck_p": 1, "xcheck_c": 2, "xcheck_1b": 2, "xcheck_2b": 5, "xcheck_3b": 3,
          "xcheck_lf": 2, "xcheck_cf": 3, "xcheck_rf": 2},
    "R": {"homerun": 1.2, "bp_homerun": 1.5, "triple": 0.45, "double_two": 2.05,
          "double_cf": 1.3, "single_two": 2.6, "single_one": 6.1, "single_center": 2.8,
          "bp_single": 3.4, "walk": 5.3, "hbp": 0.5, "strikeout": 22.5, "flyout_lf_b": 6.8,
          "flyout_cf_b": 6.2, "flyout_rf_b": 6.2, "groundout_a": 7.9, "groundout_b": 11.2,
          "xcheck_p": 1, "xcheck_c": 2, "xcheck_1b": 2, "xcheck_2b": 5, "xcheck_3b": 3,
          "xcheck_lf": 2, "xcheck_cf": 3, "xcheck_rf": 2},
}  # fmt: skip


def side(card_type: str, chances: dict[str, float]) -> dict[str, float | None]:
    full = {result: 0 for result in RESULTS[card_type]}
    full.update(chances)
    assert math.isclose(sum(full.values()), CHANCES_PER_SIDE)
    return {**full, "avg": 0.281, "obp": 0.352, "slg": 0.54}


def make_card(card_type: str = "battingcard", variant: int = 0, name: str = "Roger Maris") -> Card:
    sides = BATTING if card_type == "battingcard" else PITCHING
    fields = {
        "battingcard": {"steal_low": 8, "steal_high": 12, "steal_auto": True, "steal_jump": 0.75,
                        "bunting": "B", "hit_and_run": "C", "running": 14, "offense_col": 1,
                        "hand": "L"},
        "pitchingcard": {"balk": 0, "wild_pitch": 4, "hold": -2, "starter_rating": 8,
                         "relief_rating": 2, "closer_rating": None, "batting": "1W",
                         "offense_col": 1, "hand": "L"},
    }[card_type]  # fmt: skip
    inputs = {
        "player": {"id": 7, "name": name, "mlbclub": "New York Yankees", "franchise": "NYY",
                   "bbref_id": "marisro01", "positions": ["RF", "C"]},
        "cardset": {"id": 3, "name": "1961 Season"},
        "rarity": {"name": "MVP", "color": "e63946", "value": 5},
        "variant": variant,
        "card": fields,
        "ratings": {hand: side(card_type, sides[hand]) for hand in ("L", "R")},
        "fielding": [
            {"position": "RF", "innings": 1200, "range": 2, "error": 6, "arm": -2, "pb": None,
             "overthrow": None},
            {"position": "C", "innings": 10, "range": 3, "error": 9, "arm": 1, "pb": 4,
             "overthrow": 7},
        ],
    }  # fmt: skip
    return Card(card_type, 12, 7, variant, 3, None, inputs)


def with_inputs(card: Card, change) -> Card:
    inputs = copy.deepcopy(card.inputs)
    change(inputs)
    return Card(card.card_type, card.card_id, card.player_id, card.variant, 3, None, inputs)
