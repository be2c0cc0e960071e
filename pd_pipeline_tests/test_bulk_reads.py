"""Reading a whole cardset: the collector is held off while rows become objects, never left off;
with a card cache, a card read again from unchanged rows is reused, and every change is read."""

import gc

import pytest
import sqlalchemy as sa

from pd_pipeline.db import ledger, schema
from pd_pipeline.db.cards import CardCache, load_cards
from pd_pipeline.db.engine import gc_paused
from pd_pipeline_tests.helpers import move_chances, seed_small_demo


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


def _by_id(read) -> dict:
    return {c.card_id: c for c in read}


def test_a_cardset_read_again_reuses_its_unchanged_cards_and_rebuilds_every_changed_one(
    sqlite_url,
):
    engine, cache = seed_small_demo(sqlite_url, seasons=(2008, 2009)), CardCache()
    with engine.connect() as conn:
        first = _by_id(load_cards(conn, "battingcard", cardset_id=1, cache=cache))
    ids = sorted(first)
    rated, shown, renamed = ids[0], ids[1], first[ids[2]]
    fielded = next(
        c for c in first.values() if c.inputs["fielding"] and c.player_id != renamed.player_id
    )
    move_chances(engine, rated)  # its ratings
    with engine.begin() as conn:
        conn.execute(sa.update(schema.battingcard).where(schema.battingcard.c.id == shown)
                     .values(image_url="https://elsewhere.example/card.png"))  # fmt: skip
        conn.execute(sa.update(schema.player).where(schema.player.c.player_id == renamed.player_id)
                     .values(p_name="Someone Else"))  # fmt: skip
        conn.execute(sa.update(schema.cardposition)
                     .where(schema.cardposition.c.player_id == fielded.player_id)
                     .values(error=schema.cardposition.c.error + 1))  # fmt: skip
    with engine.connect() as conn:
        second = _by_id(load_cards(conn, "battingcard", cardset_id=1, cache=cache))
        by_id = _by_id(load_cards(conn, "battingcard", card_ids=ids))
    changed = {rated, shown, fielded.card_id} | {
        c.card_id for c in first.values() if c.player_id == renamed.player_id
    }
    assert second == by_id  # what a fresh read of every card makes of them
    for card_id, card in second.items():
        assert (card is first[card_id]) is (card_id not in changed), card.label
    assert second[rated].data_hash != first[rated].data_hash
    assert second[rated].inputs["ratings"] != first[rated].inputs["ratings"]
    assert second[shown].image_url == "https://elsewhere.example/card.png"
    assert second[renamed.card_id].inputs["player"]["name"] == "Someone Else"
    assert second[fielded.card_id].inputs["fielding"] != fielded.inputs["fielding"]


def test_cards_kept_for_reuse_are_bounded(sqlite_url):
    engine = seed_small_demo(sqlite_url, seasons=(2008, 2009))
    cache = CardCache(keep_cards=1)  # one cardset, however big

    def read(cardset_id: int):
        return load_cards(conn, "battingcard", cardset_id=cardset_id, cache=cache)

    with engine.connect() as conn:
        one, two = read(1), read(2)
        assert read(2)[0] is two[0]  # the last is kept
        one_again = read(1)
        fresh = load_cards(conn, "battingcard", cardset_id=1)
    assert one_again == one and one_again[0] is not one[0]  # made again: it was let go
    assert fresh == one and fresh[0] is not one[0]  # no cache, no reuse
