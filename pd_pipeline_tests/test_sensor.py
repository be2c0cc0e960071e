"""pending_images_sensor's rules, on a real database and a real Dagster instance: new cardsets
become partitions, run keys dedupe without hiding new work, no second run for a partition in
flight, and a first tick on a big backlog launches a bounded number of runs and says so."""

import logging

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import create_run_for_test

from pd_pipeline import settings
from pd_pipeline.db import schema
from pd_pipeline.resources import CardDatabase, CardRenderer
from pd_pipeline.sensors import pending_images_sensor
from pd_pipeline_tests.helpers import move_chances, run_partition, seed_small_demo

SEASONS = (2004, 2005, 2006, 2007, 2008, 2009)


@pytest.fixture
def setup(sqlite_url, monkeypatch):
    monkeypatch.setenv("PD_DATABASE_URL", sqlite_url)
    engine = seed_small_demo(sqlite_url, players=2, seasons=SEASONS)
    with dg.instance_for_test() as instance:
        yield engine, instance


def tick(instance, cursor=None, url=None, log: logging.Handler | None = None):
    """One evaluation, as the daemon runs it; returns the result and the cursor to pass on."""
    resources = {"card_db": CardDatabase(url=url), "renderer": CardRenderer()}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        if log:
            context.log.addHandler(log)  # what the UI shows as the tick's log
        result = pending_images_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result, result.cursor


def keys(result: dg.SensorResult) -> dict[str, str]:
    return {r.partition_key: r.run_key for r in result.run_requests}


def test_first_tick_registers_cardsets_and_caps_the_runs_it_launches(
    setup, sqlite_url, monkeypatch, caplog
):
    _, instance = setup
    monkeypatch.setattr(settings, "SENSOR_MAX_RUNS_PER_TICK", 4)
    with caplog.at_level(logging.INFO):
        result, _ = tick(instance, url=sqlite_url, log=caplog.handler)
    partitions = [f"cardset-{i:03d}" for i in range(1, len(SEASONS) + 1)]
    assert instance.get_dynamic_partitions("cardsets") == partitions
    assert sorted(keys(result)) == partitions[:4]
    assert "launching 4 runs now, 2 cardsets deferred" in caplog.text


@pytest.mark.slow
def test_run_keys_dedupe_the_same_work_but_never_hide_new_work(
    setup, sqlite_url, s3_env, monkeypatch
):
    engine, instance = setup
    first, cursor = tick(instance, url=sqlite_url)
    again, cursor = tick(instance, cursor, url=sqlite_url)
    assert keys(again) == keys(first), "the same backlog must map to the same run keys"

    assert run_partition(instance, "cardset-001").success
    after_run, cursor = tick(instance, cursor, url=sqlite_url)
    assert "cardset-001" not in keys(after_run)

    card = schema.battingcard
    with engine.begin() as conn:
        card_id = conn.scalar(
            sa.select(card.c.id)
            .join(schema.player, schema.player.c.player_id == card.c.player_id)
            .where(schema.player.c.cardset_id == 1)
            .limit(1)
        )
        conn.execute(sa.update(card).where(card.c.id == card_id).values(image_url=None))
    gone_null, cursor = tick(instance, cursor, url=sqlite_url)
    assert "cardset-001" in keys(gone_null), "a row that goes NULL again must be picked up"
    assert keys(gone_null)["cardset-001"] != keys(first)["cardset-001"]

    assert run_partition(instance, "cardset-001").success
    move_chances(engine, card_id)  # its image is now stale: only the sweep can see that
    stale, _ = tick(instance, cursor, url=sqlite_url)
    assert "cardset-001" in keys(stale)
    assert keys(stale)["cardset-001"] not in {
        keys(first)["cardset-001"],
        keys(gone_null)["cardset-001"],
    }


def test_no_second_run_for_a_partition_in_flight(setup, sqlite_url):
    _, instance = setup
    tick(instance, url=sqlite_url)
    in_flight = {"cardset-001": dg.DagsterRunStatus.NOT_STARTED, "cardset-002": "STARTED"}
    for partition, status in in_flight.items():
        create_run_for_test(
            instance,
            job_name="card_images_job",
            status=dg.DagsterRunStatus(status),
            tags={"dagster/partition": partition},
        )
    result, _ = tick(instance, url=sqlite_url)
    assert "cardset-001" not in keys(result) and "cardset-002" not in keys(result)
    assert "cardset-003" in keys(result)


def test_an_idle_database_gives_a_skip_reason(setup, sqlite_url, s3_env):
    engine, instance = setup
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.battingcardratings))
        conn.execute(sa.delete(schema.pitchingcardratings))
        conn.execute(sa.delete(schema.battingcard))
        conn.execute(sa.delete(schema.pitchingcard))
    result, _ = tick(instance, url=sqlite_url)
    assert not result.run_requests
    assert result.skip_reason.skip_message.startswith("Nothing to launch: 0 cardsets")
