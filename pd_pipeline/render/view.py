"""What card templates are given: `card_view(card)`, every field already formatted.

This is the documented, stable context of every design (docs/design.md, "The context"): a
template uses `card.name`, `card.sides`, ... and never reads the database's shape. A dash stands
where the data has none.
"""

import re
import unicodedata
from functools import lru_cache
from typing import Any

from PIL import ImageFont

from pd_pipeline.model import SIDES, Card, tier_of
from pd_pipeline.render.chart import chart
from pd_pipeline.render.fonts import FONT_DIR

SIDE_TITLES = {
    "battingcard": {"L": "vs LHP", "R": "vs RHP"},
    "pitchingcard": {"L": "vs LHB", "R": "vs RHB"},
}
# Strat-O-Matic numbers the batter's columns 1-3 and the pitcher's 4-6.
FIRST_COLUMN = {"battingcard": 1, "pitchingcard": 4}
ARM_POSITIONS = {"C", "LF", "CF", "RF", "OF"}
DASH = "\u2014"
NAME_WIDTH_PX = 690
NAME_SIZES_PX = (30, 78)  # smallest and largest name size; longer names end in an ellipsis
DEFAULT_RARITY = "#8d99ae"
# Text beyond this is clipped by the layout anyway; cutting it keeps hostile data from bloating
# the page (SQLite does not enforce the schema's string lengths).
TEXT_MAX = 255
# The version of what templates are given (`card_view` and the chart layout): part of every
# card's input hash with the design's own files. Bump it when a change to this code changes
# what a card shows (test_reference_cards pins the markup of its cards to it).
VIEW_VERSION = "1"
HEX_COLOR = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def card_view(card: Card) -> dict[str, Any]:
    """Everything a card template shows, formatted (a dash where the data has none)."""
    inputs = card.inputs
    player, fields = inputs["player"], inputs.get("card") or {}
    rarity = inputs.get("rarity") or {}
    color = _color(rarity.get("color"))
    name = player["name"].strip()[:TEXT_MAX]
    return {
        "type": card.card_type,
        "name": name,
        "name_px": _name_px(name),
        "team": _text(player.get("mlbclub")),
        "cardset": _text((inputs.get("cardset") or {}).get("name")),
        "positions": [_text(p) for p in player.get("positions") or []],
        "hand": _hand(card.card_type, fields.get("hand")),
        "rarity": _text(rarity.get("name")),
        "rarity_color": color,
        "rarity_ink": _ink(color),
        "tier": tier_of(card.variant),
        "variant": card.variant,
        "sides": [_side(card, side) for side in SIDES],
        "ratings": _ratings(card.card_type, fields),
        "fielding": [_fielding(f) for f in inputs.get("fielding") or []],
    }


def _side(card: Card, side: str) -> dict[str, Any]:
    ratings = card.inputs["ratings"][side]
    first = FIRST_COLUMN[card.card_type]
    columns = chart(ratings, card.card_type)
    return {
        "title": SIDE_TITLES[card.card_type][side],
        "stats": [(stat.upper(), _average(ratings.get(stat))) for stat in ("avg", "obp", "slg")],
        "columns": [(first + i, rows) for i, rows in enumerate(columns)],
    }


def _ratings(card_type: str, f: dict[str, Any]) -> list[tuple[str, str]]:
    if card_type == "battingcard":
        return [
            ("Stealing", _stealing(f)),
            ("Bunting", _text(f.get("bunting"))),
            ("Hit & Run", _text(f.get("hit_and_run"))),
            ("Running", _running(f.get("running"))),
        ]
    return [
        ("Starter", _text(f.get("starter_rating"))),
        ("Relief", _text(f.get("relief_rating"))),
        ("Closer", _text(f.get("closer_rating"))),
        ("Hold", _signed(f.get("hold"))),
        ("Balk", _text(f.get("balk"))),
        ("Wild P.", _text(f.get("wild_pitch"))),
        ("Batting", _text(f.get("batting"))),
    ]


def _stealing(f: dict[str, Any]) -> str:
    low, high, jump = f.get("steal_low"), f.get("steal_high"), f.get("steal_jump")
    if low is None or high is None:
        return DASH
    text = f"{low}-{high}" if low != high else str(low)
    if f.get("steal_auto"):
        text += " (*)"
    if jump is not None:
        text += " " + _decimal(jump, 2)
    return text


def _running(value: Any) -> str:
    # Strat-O-Matic prints a runner as the d20 range he is safe on: "1-14".
    return f"1-{value}" if isinstance(value, int) and value > 1 else _text(value)


def _fielding(f: dict[str, Any]) -> str:
    # Strat-O-Matic style: "SS-2 e12", "CF-1 (+2) e3", "C-2 (-1) e5 T-4 pb-3".
    position = str(f.get("position") or "?").upper()
    text = position if f.get("range") is None else f"{position}-{_text(f['range'])}"
    if f.get("arm") is not None and position in ARM_POSITIONS:
        text += f" ({_signed(f['arm'])})"
    if f.get("error") is not None:
        text += f" e{_text(f['error'])}"
    if position == "C":
        if f.get("overthrow") is not None:
            text += f" T-{_text(f['overthrow'])}"
        if f.get("pb") is not None:
            text += f" pb-{_text(f['pb'])}"
    return text


def _hand(card_type: str, hand: Any) -> str:
    if hand is None:
        return DASH
    verb = "Bats" if card_type == "battingcard" else "Throws"
    return f"{verb} {'S' if hand == 'B' else hand}"


def _average(value: Any) -> str:
    return DASH if value is None else _decimal(value, 3)


def _decimal(value: float, places: int) -> str:
    # Baseball style: ".312", but "1.000".
    text = f"{value:.{places}f}"
    return text[1:] if text.startswith("0.") else text


def _signed(value: Any) -> str:
    return DASH if value is None else f"{int(value):+d}"


def _text(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)[:TEXT_MAX]


def _color(value: Any) -> str:
    # Goes into a style attribute, so only a well-formed hex colour gets through.
    match = HEX_COLOR.fullmatch(str(value or "").strip())
    return f"#{match.group(1).lower()}" if match else DEFAULT_RARITY


def _ink(color: str) -> str:
    """Black or white text, whichever reads better on `color`."""
    digits = color[1:] if len(color) == 7 else "".join(c * 2 for c in color[1:])
    r, g, b = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
    luminance = 0.2126 * r**2.2 + 0.7152 * g**2.2 + 0.0722 * b**2.2
    return "#101418" if luminance > 0.28 else "#ffffff"


def _name_px(name: str) -> int:
    """The biggest font size (px) at which the name fits its line, within NAME_SIZES_PX."""
    smallest, largest = NAME_SIZES_PX
    width_em = sum(_char_em(char) for char in name) or 1.0
    return max(smallest, min(largest, int(NAME_WIDTH_PX / width_em)))


@lru_cache(maxsize=4096)
def _char_em(char: str) -> float:
    # Bebas Neue's own advance where it has the glyph; an estimate for fallback fonts.
    if unicodedata.combining(char):
        return 0.0
    if unicodedata.east_asian_width(char) in "WF":
        # Colour emoji are wider than an em (Noto's advance is 1.25 em); CJK is one em.
        return 1.3 if unicodedata.category(char) == "So" else 1.0
    if ord(char) < 0x250:
        return _bebas().getlength(char) / 100 + 0.02  # + letter-spacing
    return 0.65


@lru_cache(maxsize=1)
def _bebas() -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / "BebasNeue-Regular.otf"), 100)
