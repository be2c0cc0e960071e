"""`pending_images_sensor`: notices cards that need an image and launches cardset runs for them.

A tick reads (`look`), decides (`tick.plan_tick`, pure), then acts: it marks lost runs failed
and returns the run requests, the new partitions and its words (`tick.describe`).
"""

import json
import time
from collections import Counter
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from pd_pipeline.db import changes, schema
from pd_pipeline.db.backlog import backlog, old_design
from pd_pipeline.defs.automation import retries
from pd_pipeline.defs.automation.lost_runs import STUCK, last_heard, mark_failed
from pd_pipeline.defs.automation.probes import UNREACHABLE, unreachable
from pd_pipeline.defs.automation.retries import (
    ATTEMPT_TAG,
    SIGNATURE_TAG,
    WILL_RETRY_TAG,
    Backoff,
    LastRun,
)
from pd_pipeline.defs.automation.tick import (
    ROLLOUT_TAG,
    Limits,
    Seen,
    TickPlan,
    describe,
    plan_tick,
)
from pd_pipeline.defs.cards.jobs import Jobs
from pd_pipeline.defs.cards.names import image_ops
from pd_pipeline.defs.cards.steps import FLAGGED_TAG, MISSING_TAG
from pd_pipeline.defs.partitions import cardsets
from pd_pipeline.defs.resources import CardDatabase, CardRenderer, CardStore, card_policy
from pd_pipeline.images import survey, sweep
from pd_pipeline.images.drain import drain
from pd_pipeline.images.first_look import first_look
from pd_pipeline.images.state import Policy
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.settings import Settings
from pd_pipeline.storage.keys import partition_key

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, *STUCK]
CARD_JOB = "card_images_job"
TICK_SLACK_SECONDS = 1  # see tick_interval


def limits_of(settings: Settings) -> Limits:
    return Limits(
        runs_per_tick=settings.sensor_max_runs_per_tick,
        runs_in_flight=settings.sensor_max_runs_in_flight,
        rollout=settings.rollout,
        rollout_cards_per_run=settings.rollout_cards_per_run,
        backoff=Backoff(settings.retry_backoff_seconds, settings.retry_backoff_max_seconds),
        silent_seconds=settings.run_silent_seconds,
    )


def last_run(instance: dg.DagsterInstance, partition: str) -> LastRun | None:
    """The newest run this sensor launched for the cardset (or the instance retried for it)."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=CARD_JOB, tags={"dagster/partition": partition}), limit=5
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


@dataclass(frozen=True)
class Watch:
    """How a tick finds cards whose data changed (PD_SENSOR_*): it drains the changes the
    database tracked, or, where it tracks none, sweeps a window of cards; and it takes a first
    look at the cards the ledger has never seen, a time budget a tick, until every cardset had
    one."""

    changes_per_tick: int
    sweep_cards: int
    sweep_pass_minutes: int | None
    interval_seconds: int
    first_look_budget_s: float = 0.5


def watch_of(settings: Settings) -> Watch:
    return Watch(
        changes_per_tick=settings.sensor_changes_per_tick,
        sweep_cards=settings.sensor_sweep_cards,
        sweep_pass_minutes=settings.sensor_sweep_pass_minutes,
        interval_seconds=settings.sensor_interval_seconds,
    )


@dataclass(frozen=True)
class Tick:
    plan: TickPlan
    cursor: str


def look_for_changes(
    engine: sa.Engine, policy: Policy, watch: Watch, position: dict
) -> tuple[int, str]:
    """Find the cards whose data changed, and those never seen; flag them for the backlog.
    `position` (the sensor's cursor) is updated. Cards flagged, and what the tick says of it."""
    said = []
    if not position.get("first_look_done"):
        look = first_look(engine, position.get("first_look_after", 0), watch.first_look_budget_s)
        if look.cardsets:
            position["first_look_after"] = look.cardsets[-1]
        position["first_look_done"] = not look.left
        said.append(f"first look at {len(look.cardsets)} cardsets ({look.noted} cards new to "
                    f"the ledger), {len(look.left)} to go")  # fmt: skip
    with engine.connect() as conn:
        tracking = changes.is_tracking(conn)
        last = sweep.last_ids(conn) if not tracking else {}
    sizes = {t: sweep.window(last[t], watch.sweep_cards, watch.sweep_pass_minutes,
                             watch.interval_seconds) for t in last}  # fmt: skip
    if tracking:
        drained = drain(engine, policy, watch.changes_per_tick)
        with engine.connect() as conn:
            left = changes.waiting(conn)
        said.append(f"changes tracked: {drained.changes} drained ({drained.cards} cards assessed, "
                    f"{drained.flagged + drained.broadly} flagged), {left} waiting")  # fmt: skip
        return drained.flagged + drained.broadly, "; ".join(said)
    flagged = 0
    for card_type in CARD_TYPES:
        after = position.get(card_type, 0)
        position[card_type], found = sweep.sweep(engine, policy, card_type, after, sizes[card_type])
        flagged += found
    said.append(f"changes not tracked (pd-pipeline track-changes): swept {sizes[CARD_TYPES[0]]} "
                f"cards per type, {flagged} flagged")  # fmt: skip
    return flagged, "; ".join(said)


def evaluate_tick(
    instance: dg.DagsterInstance,
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
    limits: Limits,
    watch: Watch,
    cursor: str | None,
    now: float | None = None,
) -> Tick:
    """Read what the tick needs (finding changed cards as `watch` says, on from `cursor`) and
    decide, as of `now` (the clock's time by default): the tick's plan and its next cursor.
    Nothing is launched or marked yet."""
    position = json.loads(cursor) if cursor else {}
    policy, engine = card_policy(card_store, renderer), card_db.engine()
    flagged, found = look_for_changes(engine, policy, watch, position)
    in_flight = instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT))
    with engine.connect() as conn:
        waiting = backlog(conn)
        known = set(conn.scalars(sa.select(schema.cardset.c.id)))
        runs = {r.dagster_run.run_id for r in in_flight + instance.get_run_records(limit=1)}
        older = _stale_by_design(conn, policy, runs, cards_waiting=bool(waiting))
    seen = Seen(
        waiting=waiting,
        flagged_now=flagged,
        found=found,
        cardsets=known,
        partitions=instance.get_dynamic_partitions(cardsets.name),
        in_flight=in_flight,
        old_design=older,
        template_version=policy.template_version,
        now=time.time() if now is None else now,
    )
    plan = plan_tick(
        seen, limits, lambda p: last_run(instance, p), lambda r: last_heard(instance, r)
    )
    return Tick(plan, json.dumps(position))


# Images stale by design cost a scan of the ledger and of the card tables (1 s or more on a
# million rows): counted again when a run starts or ends (only runs make, adopt and retire
# images), when the design changes, or after STALE_TTL_S; not every tick. A tick with new or
# changed cards waiting launches their runs first and leaves the count to a later tick: the
# rollout it feeds waits behind those cards anyway.
STALE_TTL_S = 300
_stale_counted: dict[tuple, tuple[frozenset, float, dict[int, int]]] = {}


def _stale_by_design(
    conn: sa.Connection, policy: Policy, runs: set[str], *, cards_waiting: bool
) -> dict[int, int]:
    """Cardset id -> its images in an older design and its cards waiting for their animation
    from the rollout (`runs`: the ids of the runs in flight and of the newest run)."""
    design = (str(conn.engine.url), policy.template_version, policy.animated_tiers)
    counted_for, counted_at, counts = _stale_counted.get(design, (None, 0.0, {}))
    current = counted_for == frozenset(runs) or (cards_waiting and counted_for is not None)
    if not current or time.monotonic() - counted_at > STALE_TTL_S:
        stale = Counter(old_design(conn, policy.template_version))
        for card_type in CARD_TYPES:
            stale.update(survey.animation_gaps(conn, policy, card_type))
        counts = dict(stale)
        _stale_counted.clear()
        _stale_counted[design] = (frozenset(runs), time.monotonic(), counts)
    return counts


def run_requests(plan: TickPlan, limits: Limits, jobs: Jobs) -> list[dg.RunRequest]:
    """The runs the plan launches: one per cardset with waiting work, keyed by that work (the
    same backlog is never launched twice, new work always is, and work a failed run left is
    launched again under its attempt's key); the design's preview and a rollout run."""
    requests = [
        dg.RunRequest(
            job_name=jobs.card_images.name,
            partition_key=partition_key(b.cardset_id),
            run_key=d.run_key,
            tags={
                MISSING_TAG: str(b.missing),
                FLAGGED_TAG: str(b.flagged),
                **retries.tags(b.signature, d),
            },  # fmt: skip
        )
        for b, d in plan.launch
    ]
    rollout = plan.rollout
    if rollout.preview:
        version = plan.seen.template_version
        requests.append(
            dg.RunRequest(job_name=jobs.design_preview.name, run_key=f"design-preview:{version}")
        )
    if rollout.launch is not None:
        partition, signature, decision = rollout.launch
        per_type = {"config": {"roll_out": limits.rollout_cards_per_run}}
        requests.append(
            dg.RunRequest(
                job_name=jobs.card_images.name,
                partition_key=partition,
                run_key=decision.run_key,
                run_config=image_ops(per_type),
                tags={ROLLOUT_TAG: "true", **retries.tags(signature, decision)},
            )
        )
    return requests


def tick_interval(seconds: int) -> int:
    """The minimum interval to declare for ticks `seconds` apart. Dagster's daemon looks at its
    sensors every 5 s and skips one whose last tick started less than its minimum interval
    before. A tick starts a moment into a look, so without slack the next look often fell short
    by that moment and skipped it: 5 s ticks came 5 or 10 s apart (7.5 s on average under
    `bench edits`)."""
    return max(1, seconds - TICK_SLACK_SECONDS)


def build_pending_images_sensor(settings: Settings, jobs: Jobs) -> dg.SensorDefinition:
    limits, watch = limits_of(settings), watch_of(settings)

    @dg.sensor(
        name="pending_images_sensor",
        jobs=[jobs.card_images, jobs.design_preview],
        minimum_interval_seconds=tick_interval(settings.sensor_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Finds cardsets with cards needing an image (NULL image_url, new variants, "
        "stale data, non-canonical URLs) and requests a card_images_job run for each; work a "
        "run left waiting (an outage) is launched again with backoff. A new design is "
        "previewed (design_preview_job), then rolled out at a bounded pace.",
    )
    def pending_images_sensor(
        context: dg.SensorEvaluationContext,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
    ) -> dg.SensorResult | dg.SkipReason:
        try:
            tick = evaluate_tick(context.instance, card_db, card_store, renderer, limits, watch,
                                 context.cursor)  # fmt: skip
        except UNREACHABLE as e:
            return unreachable(e)  # the cursor stays where it was
        for run_id in tick.plan.lost:
            mark_failed(context.instance, run_id, limits.silent_seconds)
        requests = run_requests(tick.plan, limits, jobs)
        said = describe(tick.plan, limits)
        context.log.info(said)
        new = tick.plan.new_partitions
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=None if requests else f"Nothing to launch: {said}",
            cursor=tick.cursor,
            dynamic_partitions_requests=[cardsets.build_add_request(new)] if new else [],
        )

    return pending_images_sensor
