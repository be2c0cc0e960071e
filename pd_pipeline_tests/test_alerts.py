"""Operators hear about trouble at a webhook (Slack's and Discord's payloads alike), once per
incident, with no secret in the post; a dead webhook never fails anything."""

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.defs import build_defs
from pd_pipeline.defs.automation import alerts
from pd_pipeline.defs.automation.retries import ATTEMPT_TAG, WILL_RETRY_TAG
from pd_pipeline_tests.helpers import run_partition, sensor_tick
from pd_pipeline_tests.services import Webhook, free_port, s3_settings


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url  # what an alert says does not depend on the database


@pytest.fixture
def webhook(monkeypatch):
    hook = Webhook()
    monkeypatch.setenv("PD_ALERT_WEBHOOK_URL", hook.url)
    yield hook
    hook.stop()


def _failed_run(instance: dg.DagsterInstance, **tags: str):
    """A real card_images_job run on cardset-001 that fails: its object store is down."""
    result = run_partition(instance, tags=tags)
    assert not result.success
    return result


def _evaluate_run_failure_alert(instance, result) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    build_defs().resolve_sensor_def("run_failure_alert")(context)


def test_a_failed_run_is_posted_once_per_incident(seeded, webhook, monkeypatch):
    # The store goes down: its endpoint answers nothing (and the client tries once).
    for key, value in s3_settings(f"http://127.0.0.1:{free_port()}", "gone").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PD_STEP_RETRIES", "0")  # a lasting outage: no in-run retries
    instance = seeded.instance

    first = _failed_run(instance, **{ATTEMPT_TAG: "1"})
    _evaluate_run_failure_alert(instance, first)
    assert len(webhook.posts) == 1
    post = webhook.posts[0]
    assert post["text"] == post["content"]  # Slack reads `text`, Discord `content`
    text = post["text"]
    assert "cardset-001" in text and "card_images_job" in text and "unavailable" in text
    assert f"http://127.0.0.1:3000/runs/{first.run_id}" in text
    assert "testing" not in text  # the AWS secret of this environment

    # The sensor's relaunches of the same work, and runs the instance will retry: not again.
    _evaluate_run_failure_alert(instance, _failed_run(instance, **{ATTEMPT_TAG: "2"}))
    _evaluate_run_failure_alert(instance, _failed_run(instance, **{WILL_RETRY_TAG: "true"}))
    assert len(webhook.posts) == 1

    # A dead webhook is logged, and fails neither the sensor nor anything else.
    monkeypatch.setenv("PD_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/dead")
    _evaluate_run_failure_alert(instance, first)


def test_cards_waiting_too_long_are_posted_once_until_the_backlog_recovers(
    seeded, webhook, monkeypatch
):
    instance = seeded.instance
    sensor_tick(instance)  # the sweep notes since when each card waits: two hours ago, say
    entry = schema.card_render
    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with seeded.engine.begin() as conn:
        conn.execute(sa.update(entry).values(first_pending_at=two_hours_ago))

    def tick(cursor, max_wait_minutes: int):
        monkeypatch.setenv("PD_BACKLOG_MAX_WAIT_MINUTES", str(max_wait_minutes))
        defs = build_defs()
        with dg.build_sensor_context(instance=instance, cursor=cursor,
                                     resources=defs.resources) as context:  # fmt: skip
            reason = defs.resolve_sensor_def("backlog_alert")(context)
            return reason.skip_message, context.cursor

    said, cursor = tick(None, 60)
    assert len(webhook.posts) == 1 and "(posted)" in said
    text = webhook.posts[0]["content"]
    assert "have waited longer than 60 min" in text and "cardset-001" in text
    assert (
        "battingcard #" in text and "waiting since" in text and "more (pd-pipeline status)" in text
    )
    said, cursor = tick(cursor, 60)
    assert len(webhook.posts) == 1 and "(already posted)" in said

    said, cursor = tick(cursor, 24 * 60)  # back within it
    assert "No card has waited longer" in said
    tick(cursor, 60)  # a new incident
    assert len(webhook.posts) == 2


def test_posts_carry_no_credentials():
    body = alerts.payload("could not connect to postgresql://cards:hunter2@db.internal/cards")
    assert b"hunter2" not in body and b"postgresql://***@db.internal/cards" in body
    assert len(alerts.payload("x" * 5000)) < 2 * alerts.MAX_CHARS + 100
