"""Runs whose process is gone but whose status still says they run.

A run worker killed with everything around it (`dagster dev` or its host killed, a container
evicted) leaves its run STARTED for ever: the code server that would have noticed died too, and
the default run launcher cannot check a worker's health. Such a run would hold its cardset as
"in flight", so the sensor would never launch its work again. A run keeps logging while it
works (progress every few seconds, step events); one that has logged nothing for
`PD_RUN_SILENT_SECONDS` is taken for lost and marked failed, and the sensor's backoff
(`retries.py`) launches its work again. Should it still be alive after all, its writes stay
safe: the write-back never clobbers a row that changed, and two runs on one cardset agree.
"""

from collections.abc import Callable, Sequence

import dagster as dg

from pd_pipeline.defs.partitions import covered

# Statuses a lost run can be stuck in: QUEUED is waiting its turn, not lost.
STUCK = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def last_heard(instance: dg.DagsterInstance, record: dg.RunRecord) -> float:
    """Epoch seconds of the run's newest event, or of its last status change."""
    newest = instance.get_records_for_run(record.dagster_run.run_id, ascending=False, limit=1)
    heard = record.update_timestamp.timestamp()
    if newest.records:
        heard = max(heard, newest.records[0].timestamp)
    return heard


def find_lost(
    in_flight: Sequence[dg.RunRecord],
    keys: Sequence[str],
    now: float,
    silent_seconds: int,
    last_heard: Callable[[dg.RunRecord], float],
) -> dict[str, str]:
    """The stuck runs of `in_flight` on one of the cardsets `keys` that have been silent for
    `silent_seconds` (PD_RUN_SILENT_SECONDS): run id -> where, and how long silent."""
    lost = {}
    for record in in_flight:
        run = record.dagster_run
        where = covered(run.tags, keys)
        if run.status not in STUCK or not where:
            continue
        if now - record.update_timestamp.timestamp() < silent_seconds:
            continue  # its status changed lately: no need to read its events
        silent = now - last_heard(record)
        if silent >= silent_seconds:
            lost[run.run_id] = f"run {run.run_id[:8]} on {', '.join(where)}, silent {silent:.0f} s"
    return lost


def mark_failed(instance: dg.DagsterInstance, run_id: str, silent_seconds: int) -> None:
    """Mark a lost run failed, saying why, so that its work is launched again."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.status not in STUCK:
        return  # it ended meanwhile
    instance.report_run_failed(
        run,
        f"pd_pipeline: run {run_id[:8]} has logged nothing for at least {silent_seconds} s "
        f"while {run.status.value} (PD_RUN_SILENT_SECONDS): the process running it is taken "
        "for lost, and its work is launched again.",
    )
