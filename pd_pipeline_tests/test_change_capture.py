"""Change capture on both databases: `pd-pipeline track-changes` installs triggers on a database
with data; each kind of change to what a card is made from queues its cards, the pipeline's own
URL writes queue nothing; the sensor drains the queue and flags exactly the changed cards; a
crash while draining loses nothing and flags nothing twice; a change made while a run goes is
not lost; removal leaves the database as it was; a first look at rows carrying another
renderer's URLs flags them all at once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pd_pipeline.db import changes, ledger, schema, urls
from pd_pipeline.db.backlog import backlog
from pd_pipeline.db.cards import load_cards
from pd_pipeline.images import drain, state
from pd_pipeline.images.plan import plan_cardset
from pd_pipeline.images.recorder import Recorder
from pd_pipeline.images.writeback import write_back
from pd_pipeline_tests.helpers import (
    add_variant,
    card_policy,
    memory_instance,
    move_chances,
    run_keys,
    seed_small_demo,
    sensor_tick,
)

PD_PIPELINE = str(Path(sys.executable).with_name("pd-pipeline"))


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PD_DATABASE_URL": db_url}
    done = subprocess.run([PD_PIPELINE, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def settle(engine: sa.Engine, policy: state.Policy, skip: frozenset[int] = frozenset()) -> None:
    """Every card (but the battingcards `skip`) settled, as if rendered: a confirmed object in
    the ledger and its canonical URL in the row, written as write-back writes it."""
    now = ledger.utcnow()
    with engine.begin() as conn:
        for card_type in schema.CARD_TABLES:
            cards = [c for c in load_cards(conn, card_type, cardset_id=1)
                     if not (card_type == "battingcard" and c.card_id in skip)]  # fmt: skip
            rows = [
                state.object_confirmed(c, policy, sha256=f"{c.card_id:064x}", md5=None, size=1,
                                       now=now, run_id="seed")
                for c in cards
            ]  # fmt: skip
            ledger.upsert(conn, rows)
            urls.set_urls(conn, card_type, [
                (c.card_id, c.image_url, row["url"]) for c, row in zip(cards, rows, strict=True)
            ])  # fmt: skip
            ledger.update(conn, card_type, [c.card_id for c in cards], state.written(now, "seed"))


def queued(engine: sa.Engine) -> set[tuple[str, int]]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(changes.queue.c.kind, changes.queue.c.changed_id)))


def flagged(engine: sa.Engine) -> dict[tuple[str, int], str]:
    entry = schema.card_render
    query = sa.select(entry.c.card_type, entry.c.card_id, entry.c.found_by).where(schema.flagged)
    with engine.connect() as conn:
        return {(t, i): found for t, i, found in conn.execute(query)}


@pytest.fixture
def tracked(db_url, s3_env, monkeypatch):
    """A small demo on each database, every card settled, then its changes tracked."""
    monkeypatch.setenv("PD_DATABASE_URL", db_url)
    engine = seed_small_demo(db_url, players=10)  # as other tools leave it: no triggers yet
    settle(engine, card_policy())
    said = _cli(db_url, "track-changes").stdout
    assert "First look: 0 cards new to the ledger" in said
    return engine


def _player_cards(engine: sa.Engine, player_id: int) -> set[tuple[str, int]]:
    with engine.connect() as conn:
        return {
            (card_type, card_id)
            for card_type, table in schema.CARD_TABLES.items()
            for card_id in conn.scalars(sa.select(table.c.id).where(table.c.player_id == player_id))
        }


def test_each_change_to_what_a_card_is_made_from_queues_it(tracked):
    engine = tracked
    assert queued(engine) == set()
    with engine.connect() as conn:
        cards = load_cards(conn, "battingcard", cardset_id=1)
    rated, handed, fielded, deleted = cards[0], cards[1], cards[2], cards[3]
    renamed = next(c for c in cards if c.player_id not in {x.player_id for x in cards[:4]})
    bc, player, position = schema.battingcard, schema.player, schema.cardposition
    move_chances(engine, rated.card_id)
    with engine.begin() as conn:
        conn.execute(sa.update(bc).where(bc.c.id == handed.card_id).values(hand="L"))
        conn.execute(sa.update(bc).where(bc.c.id == rated.card_id).values(hand=bc.c.hand))  # no-op
        conn.execute(sa.update(player).where(player.c.player_id == renamed.player_id)
                     .values(p_name="Someone Else"))  # fmt: skip
        conn.execute(sa.update(position).where(position.c.player_id == fielded.player_id)
                     .values(error=position.c.error + 1))  # fmt: skip
        conn.execute(
            sa.delete(schema.battingcardratings).where(
                schema.battingcardratings.c.battingcard_id == deleted.card_id
            )
        )
        conn.execute(sa.delete(bc).where(bc.c.id == deleted.card_id))
        conn.execute(sa.update(schema.cardset).where(schema.cardset.c.id == 1)
                     .values(name="Renamed Set"))  # fmt: skip
        conn.execute(
            sa.update(schema.rarity).where(schema.rarity.c.id == 1).values(color="#123456")
        )
    added = add_variant(engine, variant=4242)
    assert queued(engine) == {
        ("battingcard", rated.card_id), ("battingcard", handed.card_id),
        ("player", renamed.player_id), ("player", fielded.player_id),
        ("battingcard", deleted.card_id), ("battingcard", added),
        ("cardset", 1), ("rarity", 1),
    }  # fmt: skip


def test_the_sensor_drains_changes_flagging_exactly_the_changed_cards(tracked):
    engine = tracked
    with engine.connect() as conn:
        cards = load_cards(conn, "battingcard", cardset_id=1)
    rated, renamed = cards[0], next(c for c in cards if c.player_id != cards[0].player_id)
    move_chances(engine, rated.card_id)
    with engine.begin() as conn:
        conn.execute(sa.update(schema.player).where(schema.player.c.player_id == renamed.player_id)
                     .values(p_name="Someone Else"))  # fmt: skip
    with memory_instance() as instance:
        tick, _ = sensor_tick(instance)
    expected = {("battingcard", rated.card_id)} | _player_cards(engine, renamed.player_id)
    assert flagged(engine) == dict.fromkeys(expected, "tracked change")
    assert queued(engine) == set()
    assert "cardset-001" in run_keys(tick)
    why = json.loads(_cli(str(engine.url.render_as_string(hide_password=False)), "why",
                          "battingcard", str(rated.card_id), "--json").stdout)  # fmt: skip
    assert why["ledger"]["found_by"] == "tracked change" and why["state"] == "stale"
    assert why["changes"].startswith("changes tracked by the database's triggers")


def test_a_crash_while_draining_loses_nothing_and_flags_nothing_twice(tracked, monkeypatch):
    engine, policy = tracked, card_policy()
    move_chances(engine, 1)
    before = queued(engine)

    def crash(conn, ids):
        raise RuntimeError("the sensor's process dies here")

    monkeypatch.setattr(changes, "forget", crash)
    with pytest.raises(RuntimeError):
        drain.drain(engine, policy, 100)
    assert queued(engine) == before and flagged(engine) == {}  # nothing half done
    monkeypatch.undo()
    done = drain.drain(engine, policy, 100)
    assert done.changes >= len(before) and (done.cards, done.flagged) == (1, 1)
    assert queued(engine) == set() and list(flagged(engine)) == [("battingcard", 1)]
    assert drain.drain(engine, policy, 100).changes == 0


def test_a_change_made_while_a_run_goes_is_not_lost(tracked):
    """A run reads its cards and renders; meanwhile one card it took and one it found current
    change. Whatever the order, both are flagged for the next run, neither is written."""
    engine, policy = tracked, card_policy()
    taken = add_variant(engine, variant=777)  # a new card: the run takes it
    plan = plan_cardset(engine, policy, "battingcard", 1, run_id="run-1")
    assert [w.card.card_id for w in plan.render] == [taken]
    move_chances(engine, taken)  # both change while the run renders
    move_chances(engine, 1)
    drain.drain(engine, policy, 100)
    recorder = Recorder(engine, policy, "run-1")  # the run stores what it read, then writes back
    recorder.confirmed(plan.render[0], "f" * 64, None, 1)
    recorder.flush()
    report = write_back(engine, policy, "battingcard", 1, "run-1")
    assert report.written == 0
    assert {("battingcard", taken), ("battingcard", 1)} <= set(flagged(engine))
    with engine.connect() as conn:
        waiting = backlog(conn)
        url = conn.scalar(sa.select(schema.battingcard.c.image_url)
                          .where(schema.battingcard.c.id == taken))  # fmt: skip
    assert url is None and waiting[1].flagged >= 2


def _objects(engine: sa.Engine) -> dict[str, set[str]]:
    """What a database holds beside its rows: tables, indexes, triggers (and functions)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("SELECT type, name FROM sqlite_master").all()
        else:
            rows = conn.exec_driver_sql(
                "SELECT 'table', tablename FROM pg_tables WHERE schemaname = 'public' "
                "UNION ALL SELECT 'index', indexname FROM pg_indexes WHERE schemaname = 'public' "
                "UNION ALL SELECT 'trigger', tgname FROM pg_trigger WHERE NOT tgisinternal "
                "UNION ALL SELECT 'function', proname FROM pg_proc "
                "JOIN pg_namespace n ON n.oid = pronamespace WHERE nspname = 'public'"
            ).all()
    found: dict[str, set[str]] = {}
    for kind, name in rows:
        found.setdefault(kind, set()).add(name)
    return found


def test_removal_leaves_the_database_as_it_was(db_url):
    engine = seed_small_demo(db_url, players=2)
    before = _objects(engine)
    _cli(db_url, "track-changes")
    with engine.connect() as conn:
        assert changes.is_tracking(conn)
    assert "Changes are no longer tracked" in _cli(db_url, "track-changes", "--remove").stdout
    assert _objects(engine) == before
    with engine.connect() as conn:
        assert not changes.is_tracking(conn)


def test_a_first_look_flags_every_url_another_renderer_made(db_url, s3_env, monkeypatch):
    monkeypatch.setenv("PD_DATABASE_URL", db_url)
    engine = seed_small_demo(db_url, players=4)
    with engine.begin() as conn:
        for card_type, table in schema.CARD_TABLES.items():
            conn.execute(sa.update(table).values(image_url="https://old.example/" + card_type))
        conn.execute(sa.delete(schema.card_render))
    with engine.connect() as conn:
        total = sum(len(load_cards(conn, t, cardset_id=1)) for t in schema.CARD_TABLES)
    said = _cli(db_url, "track-changes").stdout
    assert f"First look: {total} cards new to the ledger in 1 cardsets" in said
    assert set(flagged(engine).values()) == {"first look"} and len(flagged(engine)) == total
    status = _cli(db_url, "status").stdout
    assert "Changes tracked by the database's triggers" in status
    with memory_instance() as instance:
        tick, _ = sensor_tick(instance)
    assert "cardset-001" in run_keys(tick)


def test_a_first_look_leaves_the_ledger_analyzed_for_the_runs_after_it(pg_url):
    """Planned with the statistics of an empty ledger, a run's candidate queries read the whole
    ledger once per card: the first look analyzes what it wrote, autovacuum or not."""
    engine = seed_small_demo(pg_url, players=200)
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.card_render))
        conn.exec_driver_sql("ANALYZE card_render")
    _cli(pg_url, "track-changes")
    with engine.connect() as conn:
        entries = conn.scalar(sa.select(sa.func.count()).select_from(schema.card_render))
        planned = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = 'card_render'::regclass"
        ).scalar()
    assert entries > 100 and planned == entries
