"""`pending_images_sensor`: notices cards that need an image and launches cardset runs for them."""

import json
import time

import dagster as dg
import sqlalchemy as sa

from pd_pipeline import retries, settings
from pd_pipeline.db import schema
from pd_pipeline.db.backlog import Backlog, backlog, old_design
from pd_pipeline.images.state import Context
from pd_pipeline.images.sweep import sweep
from pd_pipeline.jobs import card_images_job, design_preview_job
from pd_pipeline.lost_runs import STUCK, fail_lost_runs
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.partitions import cardsets, covered
from pd_pipeline.resources import CardDatabase, CardRenderer, CardStore
from pd_pipeline.retries import (
    ATTEMPT_TAG,
    SIGNATURE_TAG,
    WILL_RETRY_TAG,
    Decision,
    LastRun,
    decide,
)
from pd_pipeline.steps import Opened
from pd_pipeline.storage.keys import partition_key

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, *STUCK]
ROLLOUT_TAG = "pd/rollout"


def last_run(instance: dg.DagsterInstance, partition: str) -> LastRun | None:
    """The newest run this sensor launched for the cardset (or the instance retried for it)."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=card_images_job.name, tags={"dagster/partition": partition}),
        limit=5,
    )
    for record in records:
        run = record.dagster_run
        if SIGNATURE_TAG not in run.tags:
            continue  # launched from the UI or a backfill: not the sensor's to relaunch
        return LastRun(
            run.run_id, run.tags[SIGNATURE_TAG], int(run.tags.get(ATTEMPT_TAG, "1")),
            run.status.value, run.tags.get(WILL_RETRY_TAG) == "true",
            record.end_time or record.update_timestamp.timestamp(),
        )  # fmt: skip
    return None


def rollout_request(
    instance: dg.DagsterInstance,
    engine: sa.Engine,
    ctx: Context,
    rolling: dg.DagsterRun | None,
    blocked: set[str],
    room: int,
    now: float,
) -> tuple[list[dg.RunRequest], str]:
    """While cards wait in an older design: the design's preview (once per design: its run key
    names the design), and the next rollout run if one is due (one at a time, none while
    `rolling` goes, in a cardset where nothing else waits, if there is `room`); and what the
    tick says of the rollout."""
    if rolling is not None:
        where = rolling.tags.get("dagster/partition")
        return [], f"; rolling out the design: run {rolling.run_id[:8]} on {where}"
    with engine.connect() as conn:
        left = old_design(conn, ctx.template_version)
    if not left:
        return [], ""
    preview = dg.RunRequest(
        job_name=design_preview_job.name, run_key=f"design-preview:{ctx.template_version}"
    )
    said = (
        f"; {sum(left.values())} cards in {len(left)} cardsets are in an older design (the "
        "design_preview asset shows the new one beside them)"
    )
    if settings.ROLLOUT != "auto":
        return [preview], said + " (PD_ROLLOUT=manual: a run with roll_out re-renders them)"
    if room <= 0:
        return [preview], said
    per_type = settings.ROLLOUT_CARDS_PER_RUN
    for cardset_id, count in sorted(left.items()):
        partition = partition_key(cardset_id)
        if partition in blocked:
            continue
        signature = f"rollout-{ctx.template_version[:12]}-{count}"
        decision = decide(partition, signature, last_run(instance, partition), now)
        if not decision.launch:
            continue
        request = dg.RunRequest(
            job_name=card_images_job.name,
            partition_key=partition,
            run_key=decision.run_key,
            run_config={
                "ops": {f"{t}_pngs": {"config": {"roll_out": per_type}} for t in CARD_TYPES}
            },
            tags={ROLLOUT_TAG: "true", **retries.tags(signature, decision)},
        )
        said += f"; rolling out {partition}: {per_type} cards per card type a run"
        return [preview, request], said
    return [preview], said


@dg.sensor(
    jobs=[card_images_job, design_preview_job],
    minimum_interval_seconds=settings.SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Finds cardsets with cards needing an image (NULL image_url, new variants, "
    "stale data, non-canonical URLs) and requests a card_images_job run for each; work a run "
    "left waiting (an outage) is launched again with backoff. A new design is previewed "
    "(design_preview_job), then rolled out at a bounded pace.",
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
    keys = context.instance.get_dynamic_partitions(cardsets.name)
    new = sorted({partition_key(i) for i in known | set(waiting)} - set(keys))
    now = time.time()
    # Queued and running runs (ours, UI runs, backfill ranges), less those taken for lost now.
    in_flight = context.instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT))
    lost = fail_lost_runs(context.instance, in_flight, keys, now)
    runs = [r.dagster_run for r in in_flight if r.dagster_run.run_id not in lost]
    busy = {key for run in runs for key in covered(run.tags, keys)}
    room = max(0, settings.SENSOR_MAX_RUNS_IN_FLIGHT - len(busy))
    allowed = min(settings.SENSOR_MAX_RUNS_PER_TICK, room)
    launch: list[tuple[Backlog, Decision]] = []
    held: list[tuple[str, Decision]] = []
    deferred = 0
    for _, b in sorted(waiting.items()):
        partition = partition_key(b.cardset_id)
        if partition in busy:
            continue
        if len(launch) >= allowed:
            deferred += 1
            continue
        decision = decide(partition, b.signature, last_run(context.instance, partition), now)
        if decision.launch:
            launch.append((b, decision))
        else:
            held.append((partition, decision))
    requests = [
        dg.RunRequest(
            job_name=card_images_job.name,
            partition_key=partition_key(b.cardset_id),
            # The key names the work: the same backlog is never launched twice, new work always
            # is, and work a failed run left is launched again under its attempt's key.
            run_key=d.run_key,
            tags={
                "pd/missing": str(b.missing),
                "pd/flagged": str(b.flagged),
                **retries.tags(b.signature, d),
            },  # fmt: skip
        )
        for b, d in launch
    ]
    summary = (
        f"{len(waiting)} cardsets with cards waiting ({sum(b.missing for b in waiting.values())} "
        f"with no URL, {sum(b.flagged for b in waiting.values())} flagged in the ledger, {stale} "
        f"flagged by this tick's sweep); {len(busy)} cardsets already running"
    )
    if deferred:
        summary += (
            f"; launching {len(requests)} runs now, {deferred} cardsets deferred to later ticks "
            f"(at most {settings.SENSOR_MAX_RUNS_PER_TICK} per tick and "
            f"{settings.SENSOR_MAX_RUNS_IN_FLIGHT} in flight)"
        )
    elif requests:
        summary += f"; launching {len(requests)} runs"
    if lost:
        summary += "; taken for lost and marked failed: " + "; ".join(lost.values())
    if held:
        summary += "; not launched now: " + "; ".join(f"{p}: {d.why}" for p, d in held)
    blocked = busy | {partition_key(i) for i in waiting}  # new and changed cards go first
    rolling = next((run for run in runs if run.tags.get(ROLLOUT_TAG) == "true"), None)
    rollout, said = rollout_request(
        context.instance, engine, res.ctx, rolling, blocked, allowed - len(requests), now
    )
    requests += rollout
    summary += said
    context.log.info(summary)
    return dg.SensorResult(
        run_requests=requests,
        skip_reason=None if requests else f"Nothing to launch: {summary}",
        cursor=json.dumps(cursor),
        dynamic_partitions_requests=[cardsets.build_add_request(new)] if new else [],
    )
