"""Animated cards in the pipeline, with real Chromium, a real S3 server and real runs: T3 and T4
cards get looping APNGs beside their PNGs, written back to `animated_url` and checked; T0-T2 get
none; a data change remakes both images; a design that stops animating retires them; a database
without the column gets its APNGs made and its URLs written once the column is added; lost and
altered APNGs are made again; a broken animated card fails alone."""

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema, tiers
from pd_pipeline.db.engine import make_engine
from pd_pipeline.defs.automation.tick import ROLLOUT_TAG
from pd_pipeline.model import tier_of
from pd_pipeline.render.apng import decode_apng, verify_apng
from pd_pipeline.render.png import decode_png
from pd_pipeline.render.samples import first_variant
from pd_pipeline.storage.keys import key_of_url
from pd_pipeline.storage.stores import APNG, PNG
from pd_pipeline_tests.helpers import (
    add_variant,
    materializations,
    memory_instance,
    move_chances,
    open_store,
    run_partition,
    seed_small_demo,
    sensor_tick,
)

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
CLASSIC = Path(__file__).parents[1] / "examples" / "classic"
FRAMES = {3: 12, 4: 24}  # Paper Dynasty's frame plans
DELAYS = {3: 200, 4: 250}
CLI = str(Path(sys.executable).with_name("pd-pipeline"))


def _rows(engine: sa.Engine, card_type: str) -> dict[int, tuple[int, str | None, str | None]]:
    """id -> (variant, image_url, animated_url)."""
    t = schema.CARD_TABLES[card_type]
    with engine.connect() as conn:
        query = sa.select(t.c.id, t.c.variant, t.c.image_url, t.c.animated_url)
        return {i: (v, png, apng) for i, v, png, apng in conn.execute(query)}


def _with_animated_tiers(engine: sa.Engine) -> dict[str, list[int]]:
    """A T3 and a T4 variant of both card types, beside the seeded cards: their ids by type."""
    return {
        card_type: [add_variant(engine, card_type, variant=first_variant(t)) for t in (3, 4)]
        for card_type in schema.CARD_TABLES
    }


def _checks(result, asset: str) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        c.check_name: c
        for c in result.get_asset_check_evaluations()
        if c.asset_key == dg.AssetKey(asset)
    }


def _key(url: str) -> str:
    return key_of_url(open_store().public_base_url, url)


@contextmanager
def _seeded(url: str, monkeypatch) -> Iterator[tuple[sa.Engine, dg.DagsterInstance]]:
    """A cardset of a few players (an APNG is many captures: the fewer cards, the faster) on
    `url`, and an instance for the runs."""
    monkeypatch.setenv("PD_DATABASE_URL", url)
    engine = seed_small_demo(url, players=4)
    with memory_instance() as instance:
        yield engine, instance


@pytest.fixture
def sqlite_seeded(sqlite_url, s3_env, monkeypatch):
    with _seeded(sqlite_url, monkeypatch) as seeded:
        yield seeded


# PostgreSQL: where the database computes the tiers; the other animated tests run on SQLite.
@pytest.fixture
def pg_seeded(pg_url, s3_env, monkeypatch):
    with _seeded(pg_url, monkeypatch) as seeded:
        yield seeded


def test_t3_and_t4_cards_get_apngs_of_their_static_cards(pg_seeded):
    engine, instance = pg_seeded
    added = _with_animated_tiers(engine)
    result = run_partition(instance)
    assert result.success

    store, animated = open_store(), 0
    for card_type in schema.CARD_TABLES:
        for card_id, (variant, png_url, apng_url) in _rows(engine, card_type).items():
            tier = tier_of(variant)
            assert png_url is not None, (card_type, card_id)
            if tier < 3:
                assert apng_url is None, f"T{tier} {card_type} {card_id} got {apng_url}"
                continue
            animated += 1
            assert apng_url.split("?")[0].endswith(f"/{card_type}.apng")
            apng, png = store.get(_key(apng_url)), store.get(_key(png_url))
            assert store.head(_key(apng_url)).content_type == APNG
            assert store.head(_key(png_url)).content_type == PNG
            info = verify_apng(apng, frames=FRAMES[tier])
            assert info.plays == 0 and set(info.delays_ms) == {DELAYS[tier]}
            frames = decode_apng(apng)
            assert np.array_equal(frames[0].reshape(-1), decode_png(png).reshape(-1))
            assert any(not np.array_equal(frames[0], f) for f in frames[1:]), "it does not move"
            # Each later frame is stored as the rectangle that moves: well under the card.
            assert max(w * h for _, _, w, h in info.regions[1:]) < 0.25 * 1200 * 600
            assert len(apng) < len(png) * FRAMES[tier] / 3
    assert animated >= sum(len(ids) for ids in added.values())

    for card_type in schema.CARD_TABLES:
        checks = _checks(result, f"{card_type}_animated_urls")
        assert "animations_match" in checks and all(c.passed for c in checks.values()), {
            name: c.metadata for name, c in checks.items() if not c.passed
        }
        made = materializations(result, f"{card_type}_apngs")
        assert made["rendered"] >= 2 and made["failed"] == 0
        assert "data:image/webp;base64," in made["preview"]  # a card moving, in the UI

    # Again: the same bytes, nothing uploaded, no URL changed.
    before = {t: _rows(engine, t) for t in schema.CARD_TABLES}
    again = run_partition(instance, ops={
        f"{t}_apngs": {"config": {"rerender_all": True}} for t in schema.CARD_TABLES
    })  # fmt: skip
    assert again.success
    for card_type in schema.CARD_TABLES:
        made = materializations(again, f"{card_type}_apngs")
        assert made["rendered"] >= 2 and made["uploaded"] == 0, made
    assert {t: _rows(engine, t) for t in schema.CARD_TABLES} == before


def test_a_data_change_remakes_both_images_of_that_card_only(sqlite_seeded):
    engine, instance = sqlite_seeded
    changed = _with_animated_tiers(engine)["battingcard"][1]  # the T4 batter
    assert run_partition(instance).success
    before = _rows(engine, "battingcard")

    move_chances(engine, changed)
    sensor_tick(instance)  # its sweep finds the change
    assert run_partition(instance).success
    after = _rows(engine, "battingcard")
    old, new = before.pop(changed), after.pop(changed)
    assert new[1] != old[1] and new[2] != old[2], "both images show the new data"
    assert after == before, "no other card was touched"


def test_t0_to_t2_and_a_design_without_animations_get_none(sqlite_seeded, monkeypatch):
    engine, instance = sqlite_seeded
    _with_animated_tiers(engine)
    monkeypatch.setenv("PD_TEMPLATES_DIR", str(CLASSIC))
    result = run_partition(instance)
    assert result.success
    for card_type in schema.CARD_TABLES:
        assert all(apng is None for _, _, apng in _rows(engine, card_type).values())
        made = materializations(result, f"{card_type}_apngs")
        assert made["cards"] == made["rendered"] == 0
    listed = open_store().list("cards/")
    assert not [key for key, _ in listed if key.endswith(".apng")]


def test_a_design_that_stops_animating_retires_them_at_the_rollout_pace(sqlite_seeded, monkeypatch):
    engine, instance = sqlite_seeded
    _with_animated_tiers(engine)
    assert run_partition(instance).success
    animated = {
        t: {i for i, (_, _, a) in _rows(engine, t).items() if a} for t in schema.CARD_TABLES
    }
    assert all(len(ids) >= 2 for ids in animated.values())

    monkeypatch.setenv("PD_TEMPLATES_DIR", str(CLASSIC))
    # An ordinary run leaves them: retiring them is the rollout's.
    assert run_partition(instance).success
    assert all(
        {i for i, (_, _, a) in _rows(engine, t).items() if a} == animated[t]
        for t in schema.CARD_TABLES
    )
    # A rollout run of one card per type retires at most one animation per type.
    rollout = {f"{t}_{i}": {"config": {"roll_out": 1}} for t in schema.CARD_TABLES
               for i in ("pngs", "apngs")}  # fmt: skip
    result = run_partition(instance, ops=rollout)
    assert result.success
    for card_type in schema.CARD_TABLES:
        left = {i for i, (_, _, a) in _rows(engine, card_type).items() if a}
        assert left < animated[card_type] and len(animated[card_type] - left) == 1
        assert materializations(result, f"{card_type}_animated_urls")["animations_retired"] == 1
    # A run with no limit retires the rest; the APNGs are then orphans, for `orphans` to list.
    everything = {k: {"config": {"roll_out": 1000}} for k in rollout}
    assert run_partition(instance, ops=everything).success
    for card_type in schema.CARD_TABLES:
        assert all(apng is None for _, _, apng in _rows(engine, card_type).values())
    entry = schema.card_render
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(entry.c.image == "apng")
        assert conn.scalar(query.select_from(entry)) == 0
    listed = subprocess.run([CLI, "orphans"], capture_output=True, text=True, check=True).stdout
    assert listed.count(".apng") == sum(len(ids) for ids in animated.values())


def test_without_the_column_apngs_are_made_and_their_urls_wait_for_it(sqlite_seeded):
    engine, instance = sqlite_seeded
    ids = _with_animated_tiers(engine)
    with engine.begin() as conn:  # as on a database made before animated cards
        for table in schema.CARD_TABLES.values():
            conn.exec_driver_sql(f"ALTER TABLE {table.name} DROP COLUMN animated_url")

    result = run_partition(instance)
    assert result.success, "a database without the column is not an error"
    for card_type in schema.CARD_TABLES:
        assert materializations(result, f"{card_type}_apngs")["rendered"] >= 2
        assert materializations(result, f"{card_type}_animated_urls")["waiting_for_column"] >= 2
    status = subprocess.run([CLI, "status"], capture_output=True, text=True)
    assert "Animated URLs cannot be written" in status.stdout
    assert "pd-pipeline add-animated-column" in status.stdout
    assert status.returncode == 0, status.stderr
    why = subprocess.run([CLI, "why", "battingcard", str(ids["battingcard"][1]), "--json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    explained = json.loads(why.stdout)
    assert explained["animated_column"] is False
    assert explained["animated"]["ledger"]["status"] == "stored"

    added = subprocess.run([CLI, "add-animated-column"], capture_output=True, text=True, check=True)
    assert added.stdout.count("ADD COLUMN animated_url") == 2
    again = subprocess.run([CLI, "add-animated-column"], capture_output=True, text=True, check=True)
    assert "nothing to do" in again.stdout

    written = run_partition(instance)
    assert written.success
    for card_type in schema.CARD_TABLES:
        assert materializations(written, f"{card_type}_apngs")["rendered"] == 0
        urls = materializations(written, f"{card_type}_animated_urls")
        assert urls["written"] >= 2 and urls["waiting_for_column"] == 0
        assert all(_rows(engine, card_type)[i][2] for i in ids[card_type])


def test_the_reconcile_remakes_lost_and_altered_apngs(sqlite_seeded):
    engine, instance = sqlite_seeded
    ids = _with_animated_tiers(engine)["pitchingcard"]
    assert run_partition(instance).success
    store = open_store()
    rows = _rows(engine, "pitchingcard")
    lost, altered = (_key(rows[i][2]) for i in ids)
    store.delete(lost)
    # A PNG where the APNG was, under metadata claiming it is the current one.
    head, first = store.head(altered), decode_apng(store.get(altered))[0]
    store.put(altered, _png_of(first), sha256=head.sha256, input_hash=head.input_hash)

    verify = {f"{t}_{i}": {"config": {"verify_objects": True}} for t in schema.CARD_TABLES
              for i in ("pngs", "apngs")}  # fmt: skip
    result = run_partition(instance, tags={"pd/reconcile": "test"}, ops=verify)
    assert result.success
    assert materializations(result, "pitchingcard_apngs")["rendered"] == 2
    for key in (lost, altered):
        verify_apng(store.get(key))
    assert all(c.passed for c in _checks(result, "pitchingcard_animated_urls").values())


def _png_of(pixels: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_a_broken_animated_card_fails_alone(sqlite_seeded):
    engine, instance = sqlite_seeded
    good, broken = _with_animated_tiers(engine)["battingcard"]
    # Ratings that do not sum to 108: the card cannot be drawn, in either image.
    ratings = schema.battingcardratings
    with engine.begin() as conn:
        conn.execute(sa.update(ratings).where(ratings.c.battingcard_id == broken)
                     .values(homerun=ratings.c.homerun + 5))  # fmt: skip
    result = run_partition(instance)
    assert not result.success  # the ERROR checks name the card
    rows = _rows(engine, "battingcard")
    assert rows[broken][1] is None and rows[broken][2] is None
    assert rows[good][2] is not None
    made = materializations(result, "battingcard_apngs")
    assert made["failed"] == 1 and made["rendered"] >= 1
    failed = _checks(result, "battingcard_animated_urls")["all_cards_rendered"]
    assert not failed.passed and failed.metadata["count"].value == 1


def test_the_database_knows_each_variants_tier(db_url):
    engine = make_engine(db_url)
    variants = [0, 1, 13, 14, 415156387, *range(2, 1000, 7), first_variant(3), first_variant(4)]
    rows = " UNION ALL ".join(f"SELECT {v} AS v" for v in variants)
    with engine.connect() as conn:
        column = sa.column("v", sa.Integer)
        query = sa.select(column, tiers.tier(conn, column)).select_from(sa.text(f"({rows}) t"))
        found = dict(conn.execute(query).all())
    assert found == {v: tier_of(v) for v in variants}


# PostgreSQL: the tier computed by the database (its sha256); SQLite's calls `tier_of` itself.
def test_adopted_cards_get_their_animations_at_the_rollout_pace(pg_seeded, monkeypatch):
    engine, instance = pg_seeded
    _with_animated_tiers(engine)
    with engine.begin() as conn:  # every card carries a still another renderer made
        for table in schema.CARD_TABLES.values():
            outside = sa.literal("https://elsewhere.example/") + sa.cast(table.c.id, sa.Text)
            conn.execute(table.update().values(image_url=outside))
    monkeypatch.setenv("PD_ADOPT_OUTSIDE", "trust")
    animates = {t: [i for i, (v, _, _) in _rows(engine, t).items() if tier_of(v) >= 3]
                for t in schema.CARD_TABLES}  # fmt: skip
    assert all(len(ids) >= 2 for ids in animates.values())

    # An ordinary run adopts the stills and makes no animation: those are the rollout's.
    result = run_partition(instance)
    assert result.success
    for card_type in schema.CARD_TABLES:
        rows = _rows(engine, card_type).values()
        assert all(png.startswith("https://elsewhere.example/") for _, png, _ in rows)
        assert all(apng is None for _, _, apng in rows)
        checks = _checks(result, f"{card_type}_animated_urls")
        assert all(c.passed for c in checks.values())
        assert checks["images_current"].metadata["in_older_design"].value == len(
            animates[card_type]
        )

    # The sensor rolls them out, as it rolls out a design; a run of one card per type makes one.
    tick, _ = sensor_tick(instance)
    [request] = [r for r in tick.run_requests if r.job_name == "card_images_job"]
    assert request.partition_key == "cardset-001" and ROLLOUT_TAG in request.tags
    rollout = {f"{t}_{i}": {"config": {"roll_out": 1}} for t in schema.CARD_TABLES
               for i in ("pngs", "apngs")}  # fmt: skip
    assert run_partition(instance, ops=rollout).success
    for card_type in schema.CARD_TABLES:
        made = [i for i, (_, _, apng) in _rows(engine, card_type).items() if apng]
        assert made == animates[card_type][:1]
    everything = {k: {"config": {"roll_out": 1000}} for k in rollout}
    assert run_partition(instance, ops=everything).success
    for card_type in schema.CARD_TABLES:
        rows = _rows(engine, card_type)
        assert [i for i, (_, _, apng) in rows.items() if apng] == animates[card_type]
        assert all(png.startswith("https://elsewhere.example/") for _, png, _ in rows.values())
    tick, _ = sensor_tick(instance)
    assert not [r for r in tick.run_requests if r.job_name == "card_images_job"]
