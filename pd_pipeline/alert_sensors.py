"""Alerts to `PD_ALERT_WEBHOOK_URL`: failed runs, and cards waiting too long. Once per incident.

- `run_failure_alert`: a run of this code location failed and nothing will retry it by itself.
  Runs the instance is about to retry (`dagster/will_retry`) are skipped, and so are the
  sensor's own relaunches of work whose first failure was already posted.
- `backlog_alert`: a card has waited longer than PD_BACKLOG_MAX_WAIT_MINUTES for a valid URL.
  One post when that starts, naming the cardsets and cards; none again until the backlog is
  back within the limit.
"""

import datetime as dt
import json

import dagster as dg

from pd_pipeline import alerts, config, settings
from pd_pipeline.db.backlog import overdue
from pd_pipeline.resources import CardDatabase
from pd_pipeline.retries import ATTEMPT_TAG, WILL_RETRY_TAG
from pd_pipeline.storage.keys import partition_key

NAMED = 10  # cards and errors an alert names; the rest are counted


def run_link(run_id: str) -> str:
    return f"{config.value('dagster_ui_url').rstrip('/')}/runs/{run_id}"


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed run (that nothing will retry by itself) to "
    "PD_ALERT_WEBHOOK_URL, once per incident.",
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
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
        f"{error.splitlines()[0] if error else 'no error message'}\n{run_link(run.run_id)}\n"
        "Its work is launched again with backoff; nothing to do unless this repeats."
    )
    alerts.post(config.value("alert_webhook_url"), text, context.log)


def _reason(error) -> str:
    """The error a step failed with, under Dagster's wrapping of it."""
    while error.cls_name and error.cls_name.startswith("Dagster") and error.cause:
        error = error.cause
    return error.message.strip()


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts to PD_ALERT_WEBHOOK_URL when a card has waited longer than "
    "PD_BACKLOG_MAX_WAIT_MINUTES for a valid URL: once, until the backlog is back within it.",
)
def backlog_alert(context: dg.SensorEvaluationContext, card_db: CardDatabase) -> dg.SkipReason:
    cutoff = dt.datetime.now(dt.UTC) - settings.BACKLOG_MAX_WAIT
    with card_db.engine().connect() as conn:
        late = overdue(conn, cutoff, NAMED)
    was_open = json.loads(context.cursor or "{}").get("open", False)
    context.update_cursor(json.dumps({"open": bool(late.count)}))
    minutes = settings.BACKLOG_MAX_WAIT.total_seconds() / 60
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
    alerts.post(config.value("alert_webhook_url"), "\n".join(lines), context.log)
    return dg.SkipReason(f"{summary} (posted)")
