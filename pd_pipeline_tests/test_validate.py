"""Card data validation: every problem names the card and the field."""

import math

import pytest

from pd_pipeline.render.pages import CardPages
from pd_pipeline.render.validate import CardDataError, validate
from pd_pipeline_tests.sample_cards import make_card, with_inputs


@pytest.fixture(scope="module")
def templates() -> CardPages:
    return CardPages()


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
