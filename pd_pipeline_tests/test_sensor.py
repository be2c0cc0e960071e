"""pending_images_sensor's rules, on a real database and a real Dagster instance, asserted on
the tick's plan (what it launches, holds and fails as lost): new cardsets become partitions, run
keys dedupe without hiding new work, no second run for a partition in flight, and a first tick
on a big backlog launches a bounded number of runs."""

import time

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_aws.s3 import S3Resource

from pd_pipeline import settings
from pd_pipeline.db import schema
from pd_pipeline.defs import build_defs
from pd_pipeline.defs.automation import sensors
from pd_pipeline.defs.automation.lost_runs import mark_failed
from pd_pipeline.defs.automation.sensors import evaluate_tick, limits_of, watch_of
from pd_pipeline.defs.automation.tick import TickPlan, describe
from pd_pipeline.defs.cards.steps import launched_for_cards
from pd_pipeline.defs.resources import shared_s3_client
from pd_pipeline_tests.helpers import (
    add_variant,
    card_policy,
    image_urls,
    memory_instance,
    move_chances,
    run_keys,
    run_partition,
    seed_small_demo,
    sensor_tick,
)
from pd_pipeline_tests.services import free_port

SEASONS = (2004, 2005, 2006, 2007, 2008, 2009)


@pytest.fixture
def seasons(sqlite_url, monkeypatch):
    monkeypatch.setenv("PD_DATABASE_URL", sqlite_url)
    engine = seed_small_demo(sqlite_url, players=2, seasons=SEASONS)
    with memory_instance() as instance:
        yield engine, instance


def plan(instance: dg.DagsterInstance, now: float | None = None) -> TickPlan:
    """The plan of one tick as the sensor makes it, with the environment's settings (at `now`,
    seconds since the epoch, if given)."""
    defs, current = build_defs(), settings.load()
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        r = context.resources
        tick = evaluate_tick(
            instance, r.card_db, r.card_store, r.renderer, limits_of(current),
            watch_of(current), None, now=now,
        )  # fmt: skip
    return tick.plan


def launched(tick: TickPlan) -> list[str]:
    return sorted(f"cardset-{b.cardset_id:03d}" for b, _ in tick.launch)


def test_first_tick_registers_cardsets_and_caps_the_runs_it_launches(seasons, monkeypatch):
    _, instance = seasons
    monkeypatch.setenv("PD_SENSOR_MAX_RUNS_PER_TICK", "4")
    first = plan(instance)
    partitions = [f"cardset-{i:03d}" for i in range(1, len(SEASONS) + 1)]
    assert first.new_partitions == partitions
    assert launched(first) == partitions[:4] and first.deferred == 2
    assert "launching 4 runs now, 2 cardsets deferred" in describe(
        first, limits_of(settings.load())
    )
    result, _ = sensor_tick(instance)  # the sensor acts on the same plan
    assert instance.get_dynamic_partitions("cardsets") == partitions
    assert sorted(run_keys(result)) == partitions[:4]


@pytest.mark.slow
def test_run_keys_dedupe_the_same_work_but_never_hide_new_work(seasons, s3_env):
    engine, instance = seasons
    first, cursor = sensor_tick(instance)
    again, cursor = sensor_tick(instance, cursor)
    assert run_keys(again) == run_keys(first), "the same backlog must map to the same run keys"

    assert run_partition(instance, "cardset-001").success
    after_run, cursor = sensor_tick(instance, cursor)
    assert "cardset-001" not in run_keys(after_run)

    card = schema.battingcard
    with engine.begin() as conn:
        card_id = conn.scalar(
            sa.select(card.c.id)
            .join(schema.player, schema.player.c.player_id == card.c.player_id)
            .where(schema.player.c.cardset_id == 1)
            .limit(1)
        )
        conn.execute(sa.update(card).where(card.c.id == card_id).values(image_url=None))
    gone_null, cursor = sensor_tick(instance, cursor)
    assert "cardset-001" in run_keys(gone_null), "a row that goes NULL again must be picked up"
    assert run_keys(gone_null)["cardset-001"] != run_keys(first)["cardset-001"]

    assert run_partition(instance, "cardset-001").success
    move_chances(engine, card_id)  # its image is now stale: only the sweep can see that
    stale, _ = sensor_tick(instance, cursor)
    assert "cardset-001" in run_keys(stale)
    assert run_keys(stale)["cardset-001"] not in {
        run_keys(first)["cardset-001"],
        run_keys(gone_null)["cardset-001"],
    }


def test_no_second_run_for_a_partition_in_flight(seasons):
    _, instance = seasons
    sensor_tick(instance)
    in_flight = {"cardset-001": dg.DagsterRunStatus.NOT_STARTED, "cardset-002": "STARTED"}
    job = build_defs().resolve_job_def("card_images_job")
    for partition, status in in_flight.items():
        instance.create_run_for_job(
            job, status=dg.DagsterRunStatus(status), tags={"dagster/partition": partition}
        )
    tick = plan(instance)
    assert {"cardset-001", "cardset-002"} <= tick.busy
    assert "cardset-001" not in launched(tick) and "cardset-002" not in launched(tick)
    assert "cardset-003" in launched(tick)


def test_a_run_silent_too_long_is_taken_for_lost_and_its_work_launched_again(seasons, monkeypatch):
    _, instance = seasons
    sensor_tick(instance)
    job = build_defs().resolve_job_def("card_images_job")
    stuck = {"cardset-001": "STARTED", "cardset-002": "STARTING", "cardset-003": "NOT_STARTED"}
    runs = {
        p: instance.create_run_for_job(
            job, status=dg.DagsterRunStatus(s), tags={"dagster/partition": p}
        )
        for p, s in stuck.items()
    }
    tick = plan(instance)  # just heard from: in flight
    assert not tick.lost and not set(stuck) & set(launched(tick))

    # Silent past PD_RUN_SILENT_SECONDS: a tick an hour later.
    monkeypatch.setenv("PD_RUN_SILENT_SECONDS", "600")
    tick = plan(instance, now=time.time() + 3600)
    assert set(tick.lost) == {r.run_id for r in runs.values()}
    assert all(tick.lost[r.run_id].startswith(f"run {r.run_id[:8]} on {p}, silent")
               for p, r in runs.items())  # fmt: skip
    assert set(stuck) <= set(launched(tick))
    for run_id in tick.lost:  # what the sensor does with them
        mark_failed(instance, run_id, 600)
    status = {p: instance.get_run_by_id(r.run_id).status.value for p, r in runs.items()}
    assert set(status.values()) == {"FAILURE"}
    result, _ = sensor_tick(instance)  # no longer in flight: their work is launched again
    assert set(stuck) <= set(run_keys(result))


def test_ticks_share_one_s3_client_and_their_runs_warm_chromium(seasons, s3_env, monkeypatch):
    """Making a boto3 client took 0.1-0.3 s of every tick; a run launched for waiting cards
    launches Chromium while it plans, where a run launched from the UI waits for a card."""
    _, instance = seasons
    clients = []
    get_client = S3Resource.get_client
    monkeypatch.setattr(S3Resource, "get_client", lambda r: clients.append(r) or get_client(r))
    shared_s3_client.cache_clear()
    result, cursor = sensor_tick(instance)
    sensor_tick(instance, cursor)
    assert len(clients) == 1
    runs = [dg.DagsterRun(job_name="card_images_job", tags=r.tags) for r in result.run_requests]
    assert runs and all(launched_for_cards(run) for run in runs)
    assert not launched_for_cards(dg.DagsterRun(job_name="card_images_job"))


def test_a_tick_with_cards_waiting_leaves_the_stale_count_to_a_quiet_tick(seasons, monkeypatch):
    """Counting the images stale by design took 1 s or more of a tick on a million rows: the
    tick that launches an edited card's run does not wait for it."""
    engine, _ = seasons
    counted = []
    monkeypatch.setattr(sensors, "old_design", lambda _conn, version: counted.append(1) or {})
    monkeypatch.setattr(sensors, "_stale_counted", {})
    policy = card_policy()
    with engine.connect() as conn:

        def count(runs: set[str], cards_waiting: bool) -> int:
            sensors._stale_by_design(conn, policy, runs, cards_waiting=cards_waiting)
            return len(counted)

        assert count({"run-1"}, cards_waiting=True) == 1  # nothing counted yet: counted now
        assert count({"run-1"}, cards_waiting=False) == 1  # the same runs: still current
        assert count({"run-2"}, cards_waiting=True) == 1  # a run changed, cards wait: later
        assert count({"run-2"}, cards_waiting=False) == 2  # the first quiet tick counts


def test_an_idle_database_gives_a_skip_reason(seasons, s3_env):
    engine, instance = seasons
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.battingcardratings))
        conn.execute(sa.delete(schema.pitchingcardratings))
        conn.execute(sa.delete(schema.battingcard))
        conn.execute(sa.delete(schema.pitchingcard))
    tick = plan(instance)
    assert not tick.seen.waiting and not tick.launches
    result, _ = sensor_tick(instance)
    assert not result.run_requests
    assert result.skip_reason.skip_message.startswith("Nothing to launch: 0 cardsets")


@pytest.mark.slow
def test_work_a_failed_run_left_is_relaunched_with_backoff_but_a_bad_card_is_not(
    seasons, s3_env, monkeypatch
):
    engine, instance = seasons
    first, _ = sensor_tick(instance)
    request = next(r for r in first.run_requests if r.partition_key == "cardset-001")
    # The store is down while the run goes: it fails without writing anything.
    monkeypatch.setenv("PD_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PD_STEP_RETRIES", "0")  # a lasting outage: no in-run retries
    failed = run_partition(instance, tags=request.tags)
    assert not failed.success

    # The same work waits: no run now, and the tick says until when.
    monkeypatch.setenv("PD_RETRY_BACKOFF_SECONDS", "600")
    again = plan(instance)
    assert "cardset-001" not in launched(again)
    held = dict(again.held)["cardset-001"]
    assert held.attempt == 2 and held.retry_at > time.time() + 500
    assert held.why.startswith(f"its run {failed.run_id[:8]} failed")
    assert "attempt 2 is due in" in held.why

    assert "cardset-001" in launched(plan(instance, now=held.retry_at))  # due then

    # Once the backoff has passed, the same work goes again under its attempt's key.
    monkeypatch.setenv("PD_RETRY_BACKOFF_SECONDS", "1")
    time.sleep(1.3)
    retry, _ = sensor_tick(instance)
    assert run_keys(retry)["cardset-001"] == request.run_key + ":2"
    relaunch = next(r for r in retry.run_requests if r.partition_key == "cardset-001")
    assert relaunch.tags["pd/attempt"] == "2"

    # The store is back. The run fails its ERROR check on a card with bad data, but that card
    # does not make its cardset relaunch: it waits for its data to change.
    monkeypatch.setenv("PD_S3_ENDPOINT_URL", s3_env["PD_S3_ENDPOINT_URL"])
    bad = add_variant(engine, variant=13, shift=-4.0)
    assert not run_partition(instance, tags=relaunch.tags).success
    assert image_urls(engine)[bad] is None
    after, _ = sensor_tick(instance)
    assert "cardset-001" not in run_keys(after)
