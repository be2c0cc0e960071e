"""The card data model every layer shares: card types, their outcomes, their images, `Card`.

A `Card` is one `battingcard` or `pitchingcard` row with everything its image shows (`inputs`,
JSON-able: what templates render). Two hashes name those inputs: `data_hash` (the card's data
alone) and `input_hash` (the data and the card design), so a changed card and a changed design
can be told apart.
"""

import functools
import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CARD_TYPES = ("battingcard", "pitchingcard")
TIERS = 4  # variants' tiers, T1 to T4 (T0 is the base card)


def tier_of(variant: int) -> int:
    """The tier (0-4) of a variant: 0 for the base card, else 1-4 from a stable hash (the
    database computes the same: `db.tiers`)."""
    if variant == 0:
        return 0
    digest = hashlib.sha256(str(int(variant)).encode()).digest()
    return 1 + digest[0] % TIERS


BATTING_RESULTS = (
    "homerun", "bp_homerun", "triple", "double_three", "double_two", "double_pull",
    "single_two", "single_one", "single_center", "bp_single", "hbp", "walk", "strikeout",
    "lineout", "popout", "flyout_a", "flyout_bq", "flyout_lf_b", "flyout_rf_b",
    "groundout_a", "groundout_b", "groundout_c",
)  # fmt: skip
PITCHING_RESULTS = (
    "homerun", "bp_homerun", "triple", "double_three", "double_two", "double_cf",
    "single_two", "single_one", "single_center", "bp_single", "hbp", "walk", "strikeout",
    "flyout_lf_b", "flyout_cf_b", "flyout_rf_b", "groundout_a", "groundout_b",
    "xcheck_p", "xcheck_c", "xcheck_1b", "xcheck_2b", "xcheck_3b", "xcheck_ss",
    "xcheck_lf", "xcheck_cf", "xcheck_rf",
)  # fmt: skip
RESULTS = {"battingcard": BATTING_RESULTS, "pitchingcard": PITCHING_RESULTS}
CHANCES_PER_SIDE = 108
SIDES = ("L", "R")
CARD_FIELDS = {
    "battingcard": (
        "steal_low", "steal_high", "steal_auto", "steal_jump", "bunting", "hit_and_run",
        "running", "offense_col", "hand",
    ),
    "pitchingcard": (
        "balk", "wild_pitch", "hold", "starter_rating", "relief_rating", "closer_rating",
        "batting", "offense_col", "hand",
    ),
}  # fmt: skip
FIELDING_FIELDS = ("position", "innings", "range", "error", "arm", "pb", "overthrow")


class Image(StrEnum):
    """The images a card can have: its static PNG, and for the tiers its design animates an
    APNG. The value names the ledger's entry and the object's extension."""

    STATIC = "png"
    ANIMATED = "apng"


@dataclass(frozen=True)
class Card:
    """One card row and the data its image shows."""

    card_type: str
    card_id: int
    player_id: int
    variant: int
    cardset_id: int | None
    image_url: str | None
    inputs: dict[str, Any]
    animated_url: str | None = None  # NULL, or no such column in this database

    def url(self, image: Image) -> str | None:
        """The row's URL of one of its images."""
        return self.image_url if image is Image.STATIC else self.animated_url

    @property
    def label(self) -> str:
        """How errors and logs name the card."""
        try:
            who = f"player {self.player_id} {self.inputs['player']['name']!r}, "
        except (KeyError, TypeError):  # inputs without a player
            who = f"player {self.player_id}, "
        return f"{self.card_type} #{self.card_id} ({who}variant {self.variant})"

    @functools.cached_property
    def _inputs_json(self) -> str:
        # Made once per card: every rule that compares hashes asks for them.
        return _json(self.inputs)

    @functools.cached_property
    def data_hash(self) -> str:
        """sha256 of the card's data: equal hashes mean the same card, whatever the design."""
        return _sha256(f'{{"inputs":{self._inputs_json},"type":{_json(self.card_type)}}}')

    def input_hash(self, template_version: str) -> str:
        """sha256 of everything that decides the PNG: equal hashes mean an identical image."""
        made = self._input_hashes.get(template_version)
        if made is None:  # every rule asks, and a card read again from equal rows is reused
            template, kind = _json(template_version), _json(self.card_type)
            made = _sha256(f'{{"inputs":{self._inputs_json},"template":{template},"type":{kind}}}')
            self._input_hashes[template_version] = made
        return made

    @functools.cached_property
    def _input_hashes(self) -> dict[str, str]:
        return {}


# The hashes are of {"inputs": ..., "template": ..., "type": ...} as compact JSON with sorted
# keys, built from the cached inputs' JSON.
_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
