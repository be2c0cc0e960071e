"""`pending_images_sensor`: notices cards that need an image and launches cardset runs for them."""

import json

import dagster as dg
import sqlalchemy as sa

from pd_pipeline import settings
from pd_pipeline.db import schema
from pd_pipeline.db.backlog import backlog
from pd_pipeline.images.sweep import sweep
from pd_pipeline.jobs import card_images_job
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.partitions import cardsets
from pd_pipeline.resources import CardDatabase, CardRenderer, CardStore
from pd_pipeline.steps import Opened
from pd_pipeline.storage.keys import partition_key

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def partitions_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Cardsets some queued or running run covers: ours, UI runs and backfill ranges alike."""
    keys = instance.get_dynamic_partitions(cardsets.name)
    busy = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        tags = run.tags
        if "dagster/partition" in tags:
            busy.add(tags["dagster/partition"])
        first = tags.get("dagster/asset_partition_range_start")
        last = tags.get("dagster/asset_partition_range_end")
        if first in keys and last in keys:
            busy.update(keys[keys.index(first) : keys.index(last) + 1])
    return busy


@dg.sensor(
    job=card_images_job,
    minimum_interval_seconds=settings.SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Finds cardsets with cards needing an image (NULL image_url, new variants, "
    "stale data, non-canonical URLs) and requests a card_images_job run for each.",
)
def pending_images_sensor(
    context: dg.SensorEvaluationContext,
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    res = Opened.of(card_db, card_store, renderer)
    engine = res.engine
    stale = 0
    for card_type in CARD_TYPES:
        cursor[card_type], found = sweep(
            engine, res.ctx, card_type, cursor.get(card_type, 0), settings.SENSOR_SWEEP_CARDS
        )
        stale += found
    with engine.connect() as conn:
        waiting = backlog(conn)
        known = set(conn.scalars(sa.select(schema.cardset.c.id)))
    registered = set(context.instance.get_dynamic_partitions(cardsets.name))
    new = sorted({partition_key(i) for i in known | set(waiting)} - registered)
    busy = partitions_in_flight(context.instance)
    ready = [b for _, b in sorted(waiting.items()) if partition_key(b.cardset_id) not in busy]
    room = max(0, settings.SENSOR_MAX_RUNS_IN_FLIGHT - len(busy))
    launch = ready[: min(settings.SENSOR_MAX_RUNS_PER_TICK, room)]
    requests = [
        dg.RunRequest(
            partition_key=partition_key(b.cardset_id),
            # The key names the work: the same backlog is never launched twice, new work always is.
            run_key=f"{partition_key(b.cardset_id)}:{b.signature}",
            tags={"pd/missing": str(b.missing), "pd/flagged": str(b.flagged)},
        )
        for b in launch
    ]
    summary = (
        f"{len(waiting)} cardsets with cards waiting ({sum(b.missing for b in waiting.values())} "
        f"with no URL, {sum(b.flagged for b in waiting.values())} flagged in the ledger, {stale} "
        f"flagged by this tick's sweep); {len(busy)} cardsets already running"
    )
    if len(ready) > len(launch):
        summary += (
            f"; launching {len(launch)} runs now, {len(ready) - len(launch)} cardsets deferred to "
            f"later ticks (at most {settings.SENSOR_MAX_RUNS_PER_TICK} per tick and "
            f"{settings.SENSOR_MAX_RUNS_IN_FLIGHT} in flight)"
        )
    context.log.info(summary)
    return dg.SensorResult(
        run_requests=requests,
        skip_reason=None if requests else f"Nothing to launch: {summary}",
        cursor=json.dumps(cursor),
        dynamic_partitions_requests=[cardsets.build_add_request(new)] if new else [],
    )
