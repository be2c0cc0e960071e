"""Alerts to `PD_ALERT_WEBHOOK_URL`: failed runs, cards waiting too long, and the card database or
the store unreachable. Once per incident.

- `run_failure_alert`: a run of this code location failed and nothing will retry it by itself.
  Runs the instance is about to retry (`dagster/will_retry`) are skipped, and so are the
  sensor's own relaunches of work whose first failure was already posted.
- `backlog_alert`: a card has waited longer than PD_BACKLOG_MAX_WAIT_MINUTES for a valid URL.
  One post when that starts, naming the cardsets and cards; none again until the backlog is
  back within the limit.
- `outage_alert`: the card database or the store has been unreachable for
  PD_OUTAGE_ALERT_SECONDS, whether or not a run is going (an idle outage fails no run). One post
  naming it and its error, one more when it is back (`outages.py`: the rule).
"""

import datetime as dt
import json
import time

import dagster as dg

from pd_pipeline.db.backlog import overdue
from pd_pipeline.defs.automation import alerts, outages
from pd_pipeline.defs.automation.probes import (
    UNREACHABLE,
    probe_database,
    probe_store,
    unreachable,
)
from pd_pipeline.defs.automation.retries import ATTEMPT_TAG, WILL_RETRY_TAG
from pd_pipeline.defs.resources import CardDatabase, CardStore
from pd_pipeline.settings import Settings
from pd_pipeline.storage.keys import partition_key

NAMED = 10  # cards and errors an alert names; the rest are counted


def run_link(dagster_ui_url: str, run_id: str) -> str:
    return f"{dagster_ui_url.rstrip('/')}/runs/{run_id}"


def build_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    return [_run_failure_alert(settings), _backlog_alert(settings), _outage_alert(settings)]


def _run_failure_alert(settings: Settings) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="run_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts each failed run (that nothing will retry by itself) to "
        "PD_ALERT_WEBHOOK_URL, once per incident.",
    )
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        _post_failure(context, settings)

    return run_failure_alert


def _post_failure(context: dg.RunFailureSensorContext, settings: Settings) -> None:
    run = context.dagster_run
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return  # the instance launches it again: the retry's outcome is the news
    if int(run.tags.get(ATTEMPT_TAG, "1")) > 1:
        return  # a relaunch of work whose first failure was posted
    where = run.tags.get("dagster/partition") or "every cardset with work"
    errors = [_reason(e.event_specific_data.error) for e in context.get_step_failure_events()
              if e.event_specific_data and e.event_specific_data.error]  # fmt: skip
    error = errors[0] if errors else context.failure_event.message
    text = (
        f"pd_pipeline: run {run.run_id[:8]} of {run.job_name} ({where}) failed: "
        f"{error.splitlines()[0] if error else 'no error message'}\n"
        f"{run_link(settings.dagster_ui_url, run.run_id)}\n"
        "Its work is launched again with backoff; nothing to do unless this repeats."
    )
    alerts.post(settings.alert_webhook_url, text, context.log)


def _reason(error) -> str:
    """The error a step failed with, under Dagster's wrapping of it (and of its retries)."""
    tries = ""
    if error.message.startswith("Exceeded max_retries"):
        tries = f" (tried {int(error.message.split()[-1]) + 1} times)"
    while error.cause and (error.cls_name or "").startswith(("Dagster", "RetryRequested")):
        error = error.cause
    first, *_ = error.message.strip().splitlines() or [""]
    return first + tries


def _backlog_alert(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="backlog_alert",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts to PD_ALERT_WEBHOOK_URL when a card has waited longer than "
        "PD_BACKLOG_MAX_WAIT_MINUTES for a valid URL: once, until the backlog is back within it.",
    )
    def backlog_alert(context: dg.SensorEvaluationContext, card_db: CardDatabase) -> dg.SkipReason:
        return _backlog(context, card_db, settings)

    return backlog_alert


def _backlog(
    context: dg.SensorEvaluationContext, card_db: CardDatabase, settings: Settings
) -> dg.SkipReason:
    cutoff = dt.datetime.now(dt.UTC) - settings.backlog_max_wait
    try:
        with card_db.engine().connect() as conn:
            late = overdue(conn, cutoff, NAMED)
    except UNREACHABLE as e:
        return unreachable(e)  # the cursor stays: an alert open before is still open
    was_open = json.loads(context.cursor or "{}").get("open", False)
    context.update_cursor(json.dumps({"open": bool(late.count)}))
    minutes = settings.backlog_max_wait_minutes
    if not late.count:
        return dg.SkipReason(f"No card has waited longer than {minutes:.0f} min.")
    summary = (
        f"{late.count} cards have waited longer than {minutes:.0f} min for a valid image URL, "
        f"in {', '.join(partition_key(i) for i in late.cardset_ids)}"
    )
    if was_open:
        return dg.SkipReason(f"{summary} (already posted)")
    lines = [f"pd_pipeline: {summary}:"]
    lines += [f"- {c.label}: {c.error or 'waiting since ' + c.since.isoformat(timespec='minutes')}"
              for c in late.named]  # fmt: skip
    if late.count > len(late.named):
        lines.append(f"... and {late.count - len(late.named)} more (pd-pipeline status)")
    alerts.post(settings.alert_webhook_url, "\n".join(lines), context.log)
    return dg.SkipReason(f"{summary} (posted)")


def _outage_alert(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="outage_alert",
        minimum_interval_seconds=outages.probe_interval(settings.outage_alert_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Probes the card database and the store; posts to PD_ALERT_WEBHOOK_URL when "
        "either has been unreachable for PD_OUTAGE_ALERT_SECONDS, run or no run, and once more "
        "when it is back.",
    )
    def outage_alert(
        context: dg.SensorEvaluationContext, card_db: CardDatabase, card_store: CardStore
    ) -> dg.SkipReason:
        probes = [probe_database(card_db), probe_store(card_store)]
        outcome = outages.judge(probes, context.cursor, time.time(), settings.outage_alert_seconds)
        for text in outcome.posts:
            alerts.post(settings.alert_webhook_url, text, context.log)
        context.update_cursor(outcome.cursor)
        return dg.SkipReason(outcome.said)

    return outage_alert
