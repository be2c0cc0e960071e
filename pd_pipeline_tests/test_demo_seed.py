"""seed_demo: real Lahman seasons become plausible cardsets, the same on SQLite and PostgreSQL."""

import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema as s
from pd_pipeline.demo import seed_demo

CARD_TABLES = {
    "battingcard": (s.battingcard, s.battingcardratings, s.BATTING_RESULTS),
    "pitchingcard": (s.pitchingcard, s.pitchingcardratings, s.PITCHING_RESULTS),
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """The 2008 season seeded once into a SQLite file; the tests only read it."""
    engine = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'cards.db'}")
    s.create_card_tables(engine)
    counts = seed_demo(engine, (2008,))
    with engine.connect() as conn:
        yield conn, counts
    engine.dispose()


def _player(conn, bbref_id: str) -> dict:
    row = conn.execute(sa.select(s.player).where(s.player.c.bbref_id == bbref_id)).mappings().one()
    rarity = conn.execute(sa.select(s.rarity.c.value).where(s.rarity.c.id == row["rarity_id"]))
    return {**row, "rarity": rarity.scalar_one()}


def _card(conn, card_type: str, bbref_id: str) -> dict:
    """A player's base card (variant 0) with its two sides under 'L' and 'R'."""
    card, ratings, _ = CARD_TABLES[card_type]
    player_id = _player(conn, bbref_id)["player_id"]
    query = sa.select(card).where(card.c.player_id == player_id, card.c.variant == 0)
    row = dict(conn.execute(query).mappings().one())
    sides = conn.execute(sa.select(ratings).where(ratings.c[f"{card_type}_id"] == row["id"]))
    return row | {side["vs_hand"]: dict(side) for side in sides.mappings()}


def _sides_by_hand(conn, card_type: str) -> dict[str, list[tuple[dict, dict]]]:
    """Base cards' (vs L, vs R) sides grouped by the card's hand."""
    card, ratings, _ = CARD_TABLES[card_type]
    query = (
        sa.select(card.c.id, card.c.hand, ratings)
        .join(ratings, ratings.c[f"{card_type}_id"] == card.c.id)
        .where(card.c.variant == 0)
    )
    by_card: dict[int, dict] = {}
    for row in conn.execute(query).mappings():
        by_card.setdefault(row["id"], {"hand": row["hand"]})[row["vs_hand"]] = row
    out: dict[str, list[tuple[dict, dict]]] = {}
    for sides in by_card.values():
        out.setdefault(sides["hand"], []).append((sides["L"], sides["R"]))
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def test_one_cardset_of_hundreds_of_players(seeded):
    conn, counts = seeded
    assert conn.execute(sa.select(s.cardset.c.id, s.cardset.c.name)).all() == [(1, "2008 Season")]
    assert 500 <= counts["players"] <= 1200
    for table, key in [
        (s.rarity, "rarities"),
        (s.player, "players"),
        (s.battingcard, "battingcards"),
        (s.pitchingcard, "pitchingcards"),
        (s.battingcardratings, "battingcardratings"),
        (s.pitchingcardratings, "pitchingcardratings"),
        (s.cardposition, "cardpositions"),
    ]:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == counts[key]
    # every player has a card
    carded = sa.union(sa.select(s.battingcard.c.player_id), sa.select(s.pitchingcard.c.player_id))
    assert len(conn.execute(carded).all()) == counts["players"]


@pytest.mark.parametrize("card_type", CARD_TABLES)
def test_every_side_sums_to_108_without_negative_chances(seeded, card_type):
    conn, _ = seeded
    _, ratings, results = CARD_TABLES[card_type]
    rows = conn.execute(sa.select(ratings)).mappings().all()
    assert rows
    for row in rows:
        assert sum(row[c] for c in results) == pytest.approx(108, abs=1e-6)
        assert min(row[c] for c in results) >= 0
        assert 0 < row["avg"] <= row["obp"] < 1 and row["avg"] <= row["slg"]
    per_card = {}
    for row in rows:
        per_card.setdefault(row[f"{card_type}_id"], set()).add(row["vs_hand"])
    assert set(map(frozenset, per_card.values())) == {frozenset("LR")}


def test_rarities_form_a_pyramid(seeded):
    conn, _ = seeded
    query = (
        sa.select(s.rarity.c.value, sa.func.count())
        .join(s.player, s.player.c.rarity_id == s.rarity.c.id)
        .group_by(s.rarity.c.value)
    )
    per_value = dict(conn.execute(query).all())
    assert sorted(per_value) == [1, 2, 3, 4, 5, 6]
    assert per_value[6] < per_value[5] < per_value[4] < per_value[3]
    colors = conn.execute(sa.select(s.rarity.c.color)).scalars().all()
    assert all(c.startswith("#") and len(c) == 7 for c in colors)


def test_pujols_2008_is_a_star_slugger_on_his_real_line(seeded):
    conn, _ = seeded
    pujols, kendall = _player(conn, "pujolal01"), _player(conn, "kendaja01")
    assert pujols["rarity"] >= 5 > kendall["rarity"]
    assert (pujols["p_name"], pujols["pos_1"]) == ("Albert Pujols", "1B")
    assert pujols["mlbclub"] == "St. Louis Cardinals"
    slugger, light = (
        _card(conn, "battingcard", "pujolal01"),
        _card(conn, "battingcard", "kendaja01"),
    )
    for vs in "LR":
        homers = slugger[vs]["homerun"] + slugger[vs]["bp_homerun"]
        assert homers > 3 * (light[vs]["homerun"] + light[vs]["bp_homerun"])
    # the two sides average to his real .357/.462/.653
    for stat, real in [("avg", 0.357), ("obp", 0.462), ("slg", 0.653)]:
        assert _mean(slugger[vs][stat] for vs in "LR") == pytest.approx(real, abs=0.02)


def test_ichiro_outruns_a_catcher(seeded):
    conn, _ = seeded
    ichiro, catcher = (
        _card(conn, "battingcard", "suzukic01"),
        _card(conn, "battingcard", "molinbe01"),
    )
    assert ichiro["hand"] == "L" and _player(conn, "molinbe01")["pos_1"] == "C"
    assert ichiro["running"] >= catcher["running"] + 4
    assert ichiro["steal_high"] > catcher["steal_high"]
    assert ichiro["steal_jump"] > catcher["steal_jump"]
    assert ichiro["steal_auto"] and not catcher["steal_auto"]
    assert ichiro["steal_low"] < ichiro["steal_high"]


def test_platoon_splits_favour_the_opposite_hand(seeded):
    conn, _ = seeded
    batters = _sides_by_hand(conn, "battingcard")
    assert _mean(r["obp"] - left["obp"] for left, r in batters["L"]) > 0.01
    assert _mean(left["obp"] - r["obp"] for left, r in batters["R"]) > 0.005
    pitchers = _sides_by_hand(conn, "pitchingcard")
    assert _mean(left["obp"] - r["obp"] for left, r in pitchers["R"]) > 0.005
    assert _mean(r["obp"] - left["obp"] for left, r in pitchers["L"]) > 0.005


def test_pitching_cards_follow_roles(seeded):
    conn, _ = seeded
    lee, rivera = _card(conn, "pitchingcard", "leecl02"), _card(conn, "pitchingcard", "riverma01")
    assert lee["hand"] == "L" and _player(conn, "leecl02")["pos_1"] == "SP"
    assert lee["starter_rating"] >= 6 and lee["closer_rating"] == 0
    assert rivera["closer_rating"] >= 5 and rivera["starter_rating"] == 1
    assert lee["L"]["obp"] < lee["R"]["obp"]  # a lefty is tougher on left-handed batters
    xchecks = [c for c in s.PITCHING_RESULTS if c.startswith("xcheck")]
    assert sum(lee["L"][c] for c in xchecks) == pytest.approx(29, abs=0.1)


def test_fielding_rows_match_positions(seeded):
    conn, _ = seeded
    rows = conn.execute(
        sa.select(s.player.c.bbref_id, s.cardposition)
        .join(s.player, s.player.c.player_id == s.cardposition.c.player_id)
        .where(s.player.c.bbref_id.in_(["pujolal01", "molinbe01", "leecl02", "suzukic01"]))
    ).mappings()
    positions = {(r["bbref_id"], r["position"]): r for r in rows}
    assert {"1B", "C", "P", "RF", "CF"} == {pos for _, pos in positions}
    catcher = positions[("molinbe01", "C")]
    assert catcher["pb"] is not None and -5 <= catcher["arm"] <= 5 and catcher["innings"] > 900
    assert positions[("pujolal01", "1B")]["arm"] is None
    assert all(1 <= r["range"] <= 5 and 0 <= r["error"] <= 25 for r in positions.values())


def test_about_a_quarter_of_cards_have_extra_variants(seeded):
    conn, counts = seeded
    for card, _, _ in CARD_TABLES.values():
        variants = conn.execute(sa.select(card.c.player_id, card.c.variant)).all()
        base = {pid for pid, v in variants if v == 0}
        extra = [(pid, v) for pid, v in variants if v]
        assert {pid for pid, _ in extra} <= base
        assert all(100_000_000 <= v < 1_000_000_000 for _, v in extra)
        share = len({pid for pid, _ in extra}) / len(base)
        assert 0.18 <= share <= 0.32
    cards = counts["battingcards"] + counts["pitchingcards"]
    assert counts["variants"] == cards - counts["players"]  # 2008 has no two-way player


def test_a_variant_is_its_card_with_a_few_chances_moved(seeded):
    conn, _ = seeded
    card, ratings, results = CARD_TABLES["battingcard"]
    variant = conn.execute(sa.select(card).where(card.c.variant != 0).limit(1)).mappings().one()
    base = (
        conn.execute(
            sa.select(card).where(card.c.player_id == variant["player_id"], card.c.variant == 0)
        )
        .mappings()
        .one()
    )
    assert {k: v for k, v in variant.items() if k not in ("id", "variant")} == {
        k: v for k, v in base.items() if k not in ("id", "variant")
    }

    def side(card_id: int) -> dict:
        query = sa.select(ratings).where(
            ratings.c.battingcard_id == card_id, ratings.c.vs_hand == "R"
        )
        return conn.execute(query).mappings().one()

    moved = sum(abs(side(variant["id"])[c] - side(base["id"])[c]) for c in results) / 2
    assert 0 < moved <= 4.5 + 1e-9


def test_image_urls_stay_null(seeded):
    conn, _ = seeded
    for card, _, _ in CARD_TABLES.values():
        query = sa.select(sa.func.count()).select_from(card).where(card.c.image_url.is_not(None))
        assert conn.execute(query).scalar() == 0


def test_rejects_unknown_seasons_and_a_database_with_cards(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    s.create_card_tables(engine)
    with pytest.raises(ValueError, match=r"seasons \[2031\] are not in the Lahman data"):
        seed_demo(engine, (2008, 2031))
    assert seed_demo(engine, (1871,))["cardsets"] == 1
    with pytest.raises(ValueError, match="needs an empty card database"):
        seed_demo(engine, (1871,))


def test_postgres_gets_the_same_cards_as_sqlite(seeded, pg_url):
    conn, counts = seeded
    engine = sa.create_engine(pg_url)
    try:
        s.create_card_tables(engine)
        assert seed_demo(engine, (2008,)) == counts
        with engine.begin() as pg:
            for card_type, bbref_id in [
                ("battingcard", "pujolal01"),
                ("battingcard", "suzukic01"),
                ("pitchingcard", "leecl02"),
            ]:
                assert _card(pg, card_type, bbref_id) == _card(conn, card_type, bbref_id)
            # ids come from the sequences, so later inserts without ids do not collide
            new_id = pg.execute(s.cardset.insert().values(name="next").returning(s.cardset.c.id))
            assert new_id.scalar_one() == 2
    finally:
        engine.dispose()
