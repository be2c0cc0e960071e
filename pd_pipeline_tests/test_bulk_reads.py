"""Reading a whole cardset: the collector is held off while rows become objects, never left off."""

import gc

import pytest

from pd_pipeline.db import ledger
from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.engine import gc_paused
from pd_pipeline_tests.helpers import seed_small_demo


def test_the_collector_is_paused_inside_and_on_again_after_even_on_an_error():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner one leaves it off
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a broken read")
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_caller_stays_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_cardset_read_whole_equals_its_cards_read_by_id(sqlite_url):
    engine = seed_small_demo(sqlite_url)
    with engine.connect() as conn:
        whole = load_cards(conn, "battingcard", cardset_id=1)
        by_id = load_cards(conn, "battingcard", card_ids=[c.card_id for c in whole])
        assert gc.isenabled()
        assert whole and whole == by_id
        assert all(c.inputs["ratings"].keys() == {"L", "R"} for c in whole)
        assert any(c.inputs["fielding"] for c in whole)
        assert ledger.entries(conn, "battingcard", [c.card_id for c in whole]) == {}
        assert gc.isenabled()
