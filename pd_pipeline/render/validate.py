"""Card data validation: whether a card's inputs make a correct card, and if not, which field.

Every problem is a `CardDataError` naming the card (player, variant) and the field, so one bad
card fails alone with an error a person can act on.
"""

import math
from typing import Any

from pd_pipeline.model import CHANCES_PER_SIDE, RESULTS, SIDES, Card

# Inclusive bounds of card fields with a known range (Strat-O-Matic scales).
CARD_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "battingcard": {
        "steal_low": (0, 20),
        "steal_high": (0, 20),
        "steal_jump": (0, 1),
        "running": (0, 20),
        "offense_col": (0, 9),
    },
    "pitchingcard": {
        "balk": (0, 20),
        "wild_pitch": (0, 20),
        "hold": (-20, 20),
        "starter_rating": (0, 20),
        "relief_rating": (0, 20),
        "closer_rating": (0, 20),
        "offense_col": (0, 9),
    },
}
FIELDING_BOUNDS = {
    "innings": (0, 100_000),
    "range": (0, 9),
    "error": (0, 99),
    "arm": (-9, 9),
    "pb": (0, 99),
    "overthrow": (0, 99),
}
STAT_BOUNDS = {"avg": (0, 1), "obp": (0, 1), "slg": (0, 4)}
HANDS = {"L", "R", "S", "B"}  # B: Lahman's "both", i.e. a switch hitter
MAX_TEXT = {"bunting": 2, "hit_and_run": 2, "batting": 16}


class CardDataError(ValueError):
    """The card's data cannot make a correct card; the message names the card and the field."""


def validate(card: Card) -> None:
    """Raise CardDataError unless `card.inputs` can be rendered as a correct card."""
    inputs = card.inputs
    name = (inputs.get("player") or {}).get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(card, "player.name", "is missing")
    if card.card_type not in RESULTS:
        raise _fail(card, "card_type", f"is {card.card_type!r}, not a known card type")
    if card.cardset_id is None:
        raise _fail(
            card,
            "player.cardset_id",
            "is missing, so no partition renders the card: give the player a cardset",
        )
    _check_int(card, "variant", inputs.get("variant"), 0, 2**63 - 1, required=True)
    ratings = inputs.get("ratings") or {}
    for side in SIDES:
        _check_side(card, side, ratings.get(side))
    _check_card_fields(card, inputs.get("card") or {})
    for i, field in enumerate(inputs.get("fielding") or []):
        for key, (low, high) in FIELDING_BOUNDS.items():
            _check_int(card, f"fielding[{i}].{key}", field.get(key), low, high)


def _fail(card: Card, field: str, problem: str) -> CardDataError:
    return CardDataError(f"{card.label}: {field} {problem}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_number(card: Card, field: str, value: Any, low: float, high: float) -> None:
    if value is None:
        return
    if not _is_number(value) or not math.isfinite(value):
        raise _fail(card, field, f"is {value!r}, must be a finite number")
    if value < low:
        raise _fail(card, field, f"is {value!r}, must be >= {low}")
    if value > high:
        raise _fail(card, field, f"is {value!r}, must be <= {high}")


def _check_int(card: Card, field: str, value: Any, low: int, high: int, required=False) -> None:
    if value is None and required:
        raise _fail(card, field, "is missing")
    if value is not None and not (_is_number(value) and float(value).is_integer()):
        raise _fail(card, field, f"is {value!r}, must be a whole number")
    _check_number(card, field, value, low, high)


def _check_side(card: Card, side: str, chances: dict[str, Any] | None) -> None:
    if not chances:
        raise _fail(card, f"ratings.{side}", "is missing (each card needs both L and R ratings)")
    for result in RESULTS[card.card_type]:
        field = f"ratings.{side}.{result}"
        value = chances.get(result)
        if value is None:
            raise _fail(card, field, "is missing")
        _check_number(card, field, value, 0, CHANCES_PER_SIDE)
    total = sum(chances[result] for result in RESULTS[card.card_type])
    if abs(total - CHANCES_PER_SIDE) > 1e-6:
        raise _fail(card, f"ratings.{side}", f"sums to {total:g}, must be {CHANCES_PER_SIDE}")
    for stat, (low, high) in STAT_BOUNDS.items():
        _check_number(card, f"ratings.{side}.{stat}", chances.get(stat), low, high)


def _check_card_fields(card: Card, fields: dict[str, Any]) -> None:
    for key, (low, high) in CARD_BOUNDS[card.card_type].items():
        field = f"card.{key}"
        if key == "steal_jump":
            _check_number(card, field, fields.get(key), low, high)
        else:
            _check_int(card, field, fields.get(key), int(low), int(high))
    hand = fields.get("hand")
    if hand is not None and hand not in HANDS:
        raise _fail(card, "card.hand", f"is {hand!r}, must be one of {', '.join(sorted(HANDS))}")
    for key, limit in MAX_TEXT.items():
        value = fields.get(key)
        if value is not None and len(str(value)) > limit:
            raise _fail(card, f"card.{key}", f"is {str(value)[:40]!r}, longer than {limit}")
