"""What one tick of `pending_images_sensor` does, decided before anything is done: which
cardsets to launch, which wait for a retry and until when, which runs are taken for lost, and
where the design rollout stands. `plan_tick` is a pure function of what the tick read;
`describe` says it in words for the tick's log; the sensor (`sensors.py`) acts on it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from pd_pipeline.db.backlog import Backlog
from pd_pipeline.defs.automation.lost_runs import find_lost
from pd_pipeline.defs.automation.retries import Backoff, Decision, LastRun, decide
from pd_pipeline.defs.partitions import covered
from pd_pipeline.storage.keys import partition_key

ROLLOUT_TAG = "pd/rollout"


@dataclass(frozen=True)
class Limits:
    """The tick's limits and paces, from the settings (PD_SENSOR_*, PD_ROLLOUT*, ...)."""

    runs_per_tick: int
    runs_in_flight: int
    rollout: str  # "auto" or "manual"
    rollout_cards_per_run: int
    backoff: Backoff
    silent_seconds: int


@dataclass(frozen=True)
class Seen:
    """What the tick read."""

    waiting: dict[int, Backlog]  # cardsets with cards waiting, by id
    flagged_now: int  # cards this tick found needing work (sweep or tracked changes)
    found: str  # how the tick looked for them, in words
    cardsets: set[int]  # every cardset of the card database
    partitions: Sequence[str]  # registered partition keys
    in_flight: Sequence[dg.RunRecord]  # queued and running runs of this location
    old_design: dict[int, int]  # cardset id -> cards stale by design (older, awaiting animation)
    template_version: str
    now: float


@dataclass(frozen=True)
class Rollout:
    """What the tick does about cards in an older design."""

    cards: int = 0  # in an older design, in all
    cardsets: int = 0
    running: dg.DagsterRun | None = None  # the rollout run going now
    preview: bool = False  # request the design's preview (its run key dedupes it)
    launch: tuple[str, str, Decision] | None = None  # (partition, signature, decision)
    manual: bool = False  # PD_ROLLOUT=manual: an operator's run rolls it out


@dataclass
class TickPlan:
    seen: Seen
    new_partitions: list[str]
    busy: set[str]  # cardsets a run in flight covers
    lost: dict[str, str] = field(default_factory=dict)  # run id -> where and how long silent
    launch: list[tuple[Backlog, Decision]] = field(default_factory=list)
    held: list[tuple[str, Decision]] = field(default_factory=list)  # waiting for a retry
    deferred: int = 0  # cardsets over the tick's limits
    rollout: Rollout = field(default_factory=Rollout)

    @property
    def launches(self) -> int:
        return len(self.launch) + (self.rollout.launch is not None)


def plan_tick(
    seen: Seen,
    limits: Limits,
    last_run: Callable[[str], LastRun | None],
    last_heard: Callable[[dg.RunRecord], float],
) -> TickPlan:
    """The tick's decisions. `last_run(partition)` is the newest run the sensor launched for a
    cardset; `last_heard(record)` when a run last logged anything."""
    keys = list(seen.partitions)
    known = {partition_key(i) for i in seen.cardsets | set(seen.waiting)}
    plan = TickPlan(seen, sorted(known - set(keys)), set())
    plan.lost = find_lost(seen.in_flight, keys, seen.now, limits.silent_seconds, last_heard)
    runs = [r.dagster_run for r in seen.in_flight if r.dagster_run.run_id not in plan.lost]
    plan.busy = {key for run in runs for key in covered(run.tags, keys)}
    room = max(0, limits.runs_in_flight - len(plan.busy))
    allowed = min(limits.runs_per_tick, room)
    for _, backlog in sorted(seen.waiting.items()):
        partition = partition_key(backlog.cardset_id)
        if partition in plan.busy:
            continue
        if len(plan.launch) >= allowed:
            plan.deferred += 1
            continue
        decision = decide(partition, backlog.signature, last_run(partition), seen.now,
                          limits.backoff)  # fmt: skip
        if decision.launch:
            plan.launch.append((backlog, decision))
        else:
            plan.held.append((partition, decision))
    # New and changed cards go first: no rollout where they wait or a run goes.
    blocked = plan.busy | {partition_key(i) for i in seen.waiting}
    rolling = next((run for run in runs if run.tags.get(ROLLOUT_TAG) == "true"), None)
    plan.rollout = _rollout(seen, limits, rolling, blocked, allowed - len(plan.launch), last_run)
    return plan


def _rollout(seen: Seen, limits: Limits, rolling, blocked: set[str], room: int, last_run):
    if rolling is not None:
        return Rollout(running=rolling)
    left = seen.old_design
    if not left:
        return Rollout()
    said = {"cards": sum(left.values()), "cardsets": len(left), "preview": True}
    if limits.rollout != "auto":
        return Rollout(**said, manual=True)
    if room <= 0:
        return Rollout(**said)
    for cardset_id, count in sorted(left.items()):
        partition = partition_key(cardset_id)
        if partition in blocked:
            continue
        signature = f"rollout-{seen.template_version[:12]}-{count}"
        decision = decide(partition, signature, last_run(partition), seen.now, limits.backoff)
        if decision.launch:
            return Rollout(**said, launch=(partition, signature, decision))
    return Rollout(**said)


def describe(plan: TickPlan, limits: Limits) -> str:
    """The tick in words, as its log and skip reason show it in the UI."""
    waiting = plan.seen.waiting.values()
    text = (
        f"{len(plan.seen.waiting)} cardsets with cards waiting "
        f"({sum(b.missing for b in waiting)} with no URL, {sum(b.flagged for b in waiting)} "
        f"flagged in the ledger, {plan.seen.flagged_now} flagged by this tick); "
        f"{len(plan.busy)} cardsets already running; {plan.seen.found}"
    )
    if plan.deferred:
        text += (
            f"; launching {len(plan.launch)} runs now, {plan.deferred} cardsets deferred to "
            f"later ticks (at most {limits.runs_per_tick} per tick and {limits.runs_in_flight} "
            "in flight)"
        )
    elif plan.launch:
        text += f"; launching {len(plan.launch)} runs"
    if plan.lost:
        text += "; taken for lost and marked failed: " + "; ".join(plan.lost.values())
    if plan.held:
        text += "; not launched now: " + "; ".join(f"{p}: {d.why}" for p, d in plan.held)
    rollout = plan.rollout
    if rollout.running is not None:
        where = rollout.running.tags.get("dagster/partition")
        text += f"; rolling out the design: run {rollout.running.run_id[:8]} on {where}"
    elif rollout.cards:
        text += (
            f"; {rollout.cards} card images in {rollout.cardsets} cardsets are in an older design "
            "or await their animation (the design_preview asset shows the design beside them)"
        )
        if rollout.manual:
            text += " (PD_ROLLOUT=manual: a run with roll_out re-renders them)"
        if rollout.launch is not None:
            text += (
                f"; rolling out {rollout.launch[0]}: {limits.rollout_cards_per_run} cards per "
                "card type a run"
            )
    return text
