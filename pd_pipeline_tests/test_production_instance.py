"""The production instance, `deploy/dagster.yaml`, on the local PostgreSQL server: a job run and
sensor ticks whose every record (runs, events, partitions) lives in PostgreSQL."""

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_postgres import PostgresRunStorage

from pd_pipeline.defs import build_defs
from pd_pipeline_tests.helpers import (
    materializations,
    run_partition,
    seed_small_demo,
    sensor_tick,
)

pytestmark = pytest.mark.slow


def test_the_production_instance_is_postgres_queued_and_retrying(production_instance):
    instance, _ = production_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert instance.run_storage.postgres_url.startswith("postgresql+psycopg2://")
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "pd/render", "limit": 4} in limits
    per_cardset = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}}
    assert {**per_cardset, "limit": 1} in limits
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    # Crashed runs only: a run that failed a step would fail again (and the sensor relaunches).
    assert not instance.run_retries_retry_on_asset_or_op_failure


def test_a_job_run_and_sensor_ticks_on_postgresql(production_instance, pg_url, s3_env, monkeypatch):
    instance, dagster_url = production_instance
    monkeypatch.setenv("PD_DATABASE_URL", pg_url)
    seed_small_demo(pg_url, players=3, seasons=(2008, 2019))

    first, cursor = sensor_tick(instance)
    assert sorted(r.partition_key for r in first.run_requests) == ["cardset-001", "cardset-002"]

    result = run_partition(instance, "cardset-001")
    assert result.success
    pngs = materializations(result, "battingcard_pngs")
    assert pngs["rendered"] == pngs["cards"] > 0
    assert "data:image/webp;base64," in pngs["preview"]

    second, cursor = sensor_tick(instance, cursor)
    assert [r.partition_key for r in second.run_requests] == ["cardset-002"]

    # A run going on cardset-002 (on some other worker) keeps the sensor from asking again.
    job = build_defs().resolve_job_def("card_images_job")
    instance.create_run_for_job(
        job, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "cardset-002"}
    )
    third, _ = sensor_tick(instance, cursor)
    assert not third.run_requests
    assert "1 cardsets already running" in third.skip_reason.skip_message

    # Everything above is in PostgreSQL, none of it on this machine.
    with sa.create_engine(dagster_url).connect() as conn:
        runs = conn.scalar(sa.text("SELECT count(*) FROM runs"))
        events = conn.scalar(
            sa.text("SELECT count(*) FROM event_logs WHERE dagster_event_type = :kind"),
            {"kind": "ASSET_MATERIALIZATION"},
        )
        partitions = conn.scalars(sa.text("SELECT partition FROM dynamic_partitions")).all()
    assert runs == 2 and events == 8  # per card type: PNGs, APNGs and the URLs of each
    assert sorted(partitions) == ["cardset-001", "cardset-002"]
