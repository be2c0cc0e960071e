"""The chart layout: every chance of a side laid out on three 2d6 columns."""

import math
import random
from collections import defaultdict

import pytest

from pd_pipeline.model import CHANCES_PER_SIDE, RESULTS
from pd_pipeline.render.chart import chart
from pd_pipeline_tests.sample_cards import BATTING, PITCHING, side

# Layout error allowed per outcome: one d20 point of the biggest row (6/20 of a chance).
D20_PRECISION = 6 / 20 + 1e-9

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
