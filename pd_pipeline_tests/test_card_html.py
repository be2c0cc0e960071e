"""Card markup, validation and chart layout: fast, no browser."""

import copy
import math
import random
import re
import shutil
from collections import defaultdict

import pytest

from pd_pipeline.db.cards import Card
from pd_pipeline.db.schema import CHANCES_PER_SIDE, RESULTS
from pd_pipeline.render.chart import CardDataError, chart, validate
from pd_pipeline.render.html import FONTS, TEMPLATE_DIR, CardTemplates, tier_of

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
# Layout error allowed per outcome: one d20 point of the biggest row (6/20 of a chance).
D20_PRECISION = 6 / 20 + 1e-9


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


@pytest.fixture(scope="module")
def templates() -> CardTemplates:
    return CardTemplates()


# ---- escaping and page safety ----


def test_hostile_text_is_escaped(templates):
    def hostile(inputs):
        inputs["player"]["name"] = "<script>alert(1)</script><img src=http://x onerror=alert(2)>"
        inputs["player"]["mlbclub"] = '"><b onclick="x()">Team</b>'
        inputs["cardset"]["name"] = "</style><style>body{display:none}</style>"
        inputs["rarity"] = {"name": "<i>MVP</i>", "color": "red;background:url(http://x)"}
        inputs["player"]["positions"] = ["<svg onload=alert(3)>"]

    body = templates.body(with_inputs(make_card(), hostile))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=http://x" in body
    assert "&lt;/style&gt;" in body and "&lt;i&gt;MVP&lt;/i&gt;" in body
    assert not re.search(r"<(script|img|svg|style|b|i)\b", body, re.I)
    assert not re.search(r"\son\w+\s*=\s*['\"]", body, re.I)
    assert "url(" not in body  # a bad rarity colour falls back to the default
    assert "--rarity: #8d99ae" in body


def test_shell_has_fonts_and_no_script_or_url(templates):
    shell = templates.shell()
    assert shell.startswith("<!doctype html>")
    assert '<main id="card"></main>' in shell
    assert shell.count("@font-face") == len(FONTS) and "data:font/woff2;base64," in shell
    assert not re.search(r"<script|https?://|javascript:|\son\w+\s*=", shell, re.I)


def test_document_is_the_shell_with_the_body_swapped_in(templates):
    card = make_card("pitchingcard", variant=415156387)
    body = templates.body(card)
    expected = templates.shell().replace(
        '<main id="card"></main>', f'<main id="card">{body}</main>'
    )
    assert templates.document(card) == expected


def test_body_shows_what_the_card_says(templates):
    body = templates.body(make_card())
    for text in ("Roger Maris", "New York Yankees", "1961 Season", "MVP", "Bats L", "vs LHP",
                 "vs RHP", ".281", "8-12 (*) .75", "1-14", "RF-2 (-2) e6",
                 "C-3 (+1) e9 T-7 pb-4", "HOMERUN", "base card"):  # fmt: skip
        assert text in body, text
    pitching = templates.body(make_card("pitchingcard"))
    for text in ("Throws L", "vs LHB", "vs RHB", "X-CHECK 2B", "-2", "1W", ">4<"):
        assert text in pitching, text


def test_missing_optional_fields_render_a_dash(templates):
    def blank(inputs):
        inputs["card"] = dict.fromkeys(inputs["card"])
        inputs["ratings"]["L"].update(avg=None, obp=None, slg=None)
        inputs["player"]["mlbclub"] = None
        inputs["cardset"]["name"] = None
        inputs["rarity"] = {"name": None, "color": None, "value": None}
        inputs["fielding"] = []

    body = templates.body(with_inputs(make_card(), blank))
    assert body.count("\u2014") >= 10


def test_long_and_unicode_names_shrink_and_stay_on_one_line(templates):
    long_name = ("Bartholomew Maximilian " * 10)[:200]
    body = templates.body(make_card(name=long_name))
    assert long_name in body and 'style="font-size: 30px"' in body
    short = templates.body(make_card(name="Ott"))
    assert 'style="font-size: 78px"' in short
    rtl = templates.body(make_card(name="محمد عبد الرحمن 大谷翔平 ⚾"))
    assert 'dir="auto"' in rtl and "大谷翔平" in rtl


# ---- validation ----


def drop(path):
    def change(inputs):
        *parents, last = path
        target = inputs
        for key in parents:
            target = target[key]
        del target[last]

    return change


def put(path, value):
    def change(inputs):
        *parents, last = path
        target = inputs
        for key in parents:
            target = target[key]
        target[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (put(("ratings", "L", "strikeout"), 13.5), "ratings.L", "sums to 109, must be 108"),
        (put(("ratings", "R", "walk"), -3), "ratings.R.walk", "is -3, must be >= 0"),
        (drop(("ratings", "L")), "ratings.L", "is missing"),
        (put(("ratings", "R", "homerun"), None), "ratings.R.homerun", "is missing"),
        (drop(("ratings", "R", "lineout")), "ratings.R.lineout", "is missing"),
        (put(("ratings", "L", "triple"), math.nan), "ratings.L.triple", "finite number"),
        (put(("ratings", "L", "triple"), "1"), "ratings.L.triple", "finite number"),
        (put(("ratings", "L", "triple"), 1e300), "ratings.L.triple", "must be <= 108"),
        (put(("ratings", "R", "avg"), 7.5), "ratings.R.avg", "must be <= 1"),
        (put(("card", "running"), 10**12), "card.running", "must be <= 20"),
        (put(("card", "steal_low"), 2.5), "card.steal_low", "whole number"),
        (put(("card", "hand"), "X"), "card.hand", "is 'X'"),
        (put(("card", "bunting"), "A" * 50), "card.bunting", "longer than 2"),
        (put(("fielding", 0, "error"), -1), "fielding[0].error", "must be >= 0"),
        (put(("player", "name"), "  "), "player.name", "is missing"),
    ],
)
def test_validate_names_card_and_field(templates, change, field, problem):
    card = with_inputs(make_card(), change)
    with pytest.raises(CardDataError) as error:
        templates.body(card)
    message = str(error.value)
    assert message.startswith(card.label + ": ")
    assert f": {field} " in message and problem in message
    assert isinstance(error.value, ValueError)


def test_valid_cards_pass():
    for card_type in ("battingcard", "pitchingcard"):
        validate(make_card(card_type, variant=415156387))


# ---- chart layout ----


def laid_out(columns) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for rows in columns:
        for row in rows:
            for part in row.parts:
                total[part.result] += row.chances(part)
    return total


def check_layout(chances: dict[str, float], card_type: str) -> list:
    columns = chart(chances, card_type)
    assert len(columns) == 3
    for rows in columns:
        assert [row.roll for row in rows] == list(range(2, 13))
        assert sum(row.weight for row in rows) == 36
        for row in rows:
            assert row.parts[0].low == 1 and row.parts[-1].high == 20
            for before, after in zip(row.parts, row.parts[1:], strict=False):
                assert before.low <= before.high and after.low == before.high + 1
    got = laid_out(columns)
    assert math.isclose(sum(got.values()), CHANCES_PER_SIDE)
    for result in RESULTS[card_type]:
        assert abs(got[result] - (chances.get(result) or 0)) <= D20_PRECISION, result
    return columns


@pytest.mark.parametrize(
    ("card_type", "hand"), [(t, h) for t in ("battingcard", "pitchingcard") for h in "LR"]
)
def test_chart_lays_out_every_chance(card_type, hand):
    chances = side(card_type, (BATTING if card_type == "battingcard" else PITCHING)[hand])
    columns = check_layout(chances, card_type)
    # Real cards share a row between two outcomes at most.
    assert all(len(row.parts) <= 2 for rows in columns for row in rows)
    assert columns == chart(chances, card_type)  # deterministic


def test_chart_whole_chances_take_whole_rows():
    chances = side("pitchingcard", PITCHING["L"])
    columns = chart(chances, "pitchingcard")
    assert laid_out(columns)["xcheck_2b"] == 5
    whole = {p.result for rows in columns for row in rows if len(row.parts) == 1 for p in row.parts}
    assert {"xcheck_p", "xcheck_c", "xcheck_2b", "xcheck_cf"} <= whole


@pytest.mark.parametrize("seed", range(40))
def test_chart_random_sides(seed):
    rng = random.Random(seed)
    card_type = rng.choice(("battingcard", "pitchingcard"))
    names = rng.sample(RESULTS[card_type], rng.randint(1, len(RESULTS[card_type])))
    step = rng.choice((1, 0.05, 0.01))
    cuts = sorted(rng.randint(0, round(CHANCES_PER_SIDE / step)) for _ in names[1:])
    bounds = [0, *cuts, round(CHANCES_PER_SIDE / step)]
    chances = {name: (b - a) * step for name, a, b in zip(names, bounds, bounds[1:], strict=False)}
    check_layout(chances, card_type)


def test_chart_labels_hits_in_caps():
    columns = chart(side("battingcard", BATTING["L"]), "battingcard")
    labels = {p.result: (p.label, p.kind) for rows in columns for row in rows for p in row.parts}
    assert labels["homerun"] == ("HOMERUN", "hit")
    assert labels["double_two"] == ("DOUBLE**", "hit")
    assert labels["walk"] == ("WALK", "onbase")
    assert labels["strikeout"] == ("strikeout", "out")


# ---- tiers and version ----


def test_tier_of_is_deterministic_and_covers_all_tiers():
    assert tier_of(0) == 0
    tiers = [tier_of(v) for v in range(1, 400)]
    assert set(tiers) == {1, 2, 3, 4}
    assert tiers == [tier_of(v) for v in range(1, 400)]
    assert tier_of(415156387) == tier_of(415156387) in {1, 2, 3, 4}
    assert tier_of(2**62 + 1) in {1, 2, 3, 4}


def test_tier_shows_on_the_card(templates):
    variant = next(v for v in range(1, 100) if tier_of(v) == 3)
    body = templates.body(make_card(variant=variant))
    assert "tier-3" in body and ">T3<" in body and f"variant {variant}" in body
    assert "tier-0" in templates.body(make_card()) and ">T0<" not in templates.body(make_card())


def test_version_changes_when_a_template_changes(tmp_path, templates):
    copied = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, copied)
    assert CardTemplates(copied).version == templates.version
    css = copied / "card.css"
    css.write_text(css.read_text() + "\n.card { outline: 0; }\n")
    changed = CardTemplates(copied)
    assert changed.version != templates.version and len(changed.version) == 12
    assert ".card { outline: 0; }" in changed.shell()
