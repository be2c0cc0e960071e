"""An outage of the card database or the store is posted once it has lasted
PD_OUTAGE_ALERT_SECONDS, whether or not a run is going, and once more when it is back; quiet in
between, with no credential in any post. The other sensors skip such ticks in one line.

The rule is a pure function (`outages.judge`), tested first; then the probes and the sensors
against a PostgreSQL port nobody listens on and a stopped S3 endpoint; then the real daemon
(`dagster dev`) with nothing to render, its PostgreSQL server stopped and started, then its S3
server, and a webhook on loopback recording what is posted.
"""

import json
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster_aws.s3 import S3Resource

from pd_pipeline.db import schema
from pd_pipeline.db.engine import make_engine
from pd_pipeline.defs import build_defs
from pd_pipeline.defs.automation.outages import Probe, judge, probe_interval
from pd_pipeline.defs.automation.probes import probe_database, probe_store
from pd_pipeline.defs.resources import CardDatabase, CardStore
from pd_pipeline_tests.helpers import memory_instance, wait_for
from pd_pipeline_tests.services import (
    OwnPostgres,
    S3Server,
    Webhook,
    dagster_dev_command,
    dagster_env,
    free_port,
    process_group,
    s3_settings,
)

PASSWORD = "pw-never-posted"
DB = Probe("card database", "postgresql://cards:***@db:5432/cards")
STORE = Probe("store", "s3://cards/")
REFUSED = "OperationalError: connection failed: Connection refused"


def _down(probe: Probe, error: str = REFUSED) -> Probe:
    return Probe(probe.target, probe.where, error)


# -- the rule ------------------------------------------------------------------------------------


def test_an_outage_is_posted_once_when_it_has_lasted_and_once_when_it_is_back():
    cursor, posts = None, []
    for now, probes in [
        (1000, [DB, STORE]),
        (1015, [_down(DB), STORE]),  # first seen down
        (1030, [_down(DB), STORE]),
        (1075, [_down(DB), STORE]),  # 60 s: posted
        (1090, [_down(DB), STORE]),
        (1200, [_down(DB), STORE]),
        (1215, [DB, STORE]),  # back
        (1230, [DB, STORE]),
    ]:
        outcome = judge(probes, cursor, now, after_s=60)
        cursor = outcome.cursor
        posts += [(now, text) for text in outcome.posts]
        if now == 1030:
            assert "unreachable since" in outcome.said
            assert "posted if still down at 1 min" in outcome.said
        if now == 1090:
            assert "; posted)" in outcome.said and "store reachable" in outcome.said
    assert [now for now, _ in posts] == [1075, 1215]
    down, back = (text for _, text in posts)
    assert "the card database (postgresql://cards:***@db:5432/cards)" in down
    assert "unreachable for 1 min (since 1970-01-01 00:16:55 UTC)" in down
    assert REFUSED in down
    assert "reachable again, after about 3 min 20 s unreachable" in back
    assert json.loads(cursor) == {}
    assert outcome.said.startswith("Both reachable: the card database (postgresql://")


def test_a_blip_shorter_than_the_setting_is_never_posted():
    first = judge([_down(DB), STORE], None, 1000, after_s=60)
    second = judge([_down(DB), STORE], first.cursor, 1059, after_s=60)
    back = judge([DB, STORE], second.cursor, 1070, after_s=60)
    assert first.posts == second.posts == back.posts == []
    assert json.loads(back.cursor) == {}


def test_the_database_and_the_store_are_posted_each_on_its_own():
    a = judge([_down(DB), STORE], None, 0, after_s=10)
    b = judge([_down(DB), _down(STORE, "EndpointConnectionError: ...")], a.cursor, 10, after_s=10)
    assert len(b.posts) == 1 and "card database" in b.posts[0]
    c = judge([DB, _down(STORE, "EndpointConnectionError: ...")], b.cursor, 20, after_s=10)
    assert len(c.posts) == 2  # the database back; the store down since 10 s
    assert "card database" in c.posts[0] and "reachable again" in c.posts[0]
    assert "the store (s3://cards/) has been unreachable for 10 s" in c.posts[1]
    d = judge([DB, STORE], c.cursor, 25, after_s=10)
    assert len(d.posts) == 1
    assert "the store (s3://cards/) is reachable again, after about 15 s" in d.posts[0]


def test_probes_come_every_quarter_of_the_setting_within_the_daemons_pace():
    assert [probe_interval(s) for s in (10, 60, 100, 3600)] == [4, 15, 25, 30]


# -- the probes and the sensors, one tick at a time ----------------------------------------------


def _nobody_at() -> str:
    """A PostgreSQL URL with a password, on a port nobody listens on: a database that is down."""
    return f"postgresql://cards:{PASSWORD}@127.0.0.1:{free_port()}/cards"


def test_the_probes_say_what_is_down_quickly_and_without_credentials(s3_server, s3_env):
    probe = probe_database(CardDatabase(url=_nobody_at()))
    assert probe.error and "OperationalError" in probe.error
    assert PASSWORD not in probe.where + probe.error and "cards:***@127.0.0.1" in probe.where

    def store(endpoint: str, bucket: str) -> CardStore:
        return CardStore(location=f"s3://{bucket}/cards", s3=S3Resource(endpoint_url=endpoint))

    started = time.monotonic()
    gone = probe_store(store(f"http://127.0.0.1:{free_port()}", "gone"))
    assert time.monotonic() - started < 3  # one attempt: no botocore retries
    assert gone.where == "s3://gone/cards" and "EndpointConnectionError" in gone.error

    missing = probe_store(store(s3_server.endpoint_url, "no-such-bucket"))
    assert "NoSuchBucket" in missing.error
    assert probe_store(store(s3_server.endpoint_url, s3_env["bucket"])).error is None


def test_sensor_ticks_meeting_the_database_down_skip_in_one_line(monkeypatch, tmp_path):
    webhook = Webhook()
    monkeypatch.setenv("PD_DATABASE_URL", _nobody_at())
    monkeypatch.setenv("PD_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("PD_ALERT_WEBHOOK_URL", webhook.url)
    defs = build_defs()
    said = {}
    try:
        with memory_instance() as instance:
            for name in ("pending_images_sensor", "backlog_alert", "outage_alert"):
                resources = defs.resources
                with dg.build_sensor_context(instance=instance, resources=resources) as context:
                    said[name] = defs.resolve_sensor_def(name)(context).skip_message
    finally:
        webhook.stop()
    for name in ("pending_images_sensor", "backlog_alert"):
        assert said[name].startswith("The card database cannot be reached, nothing done")
        assert "OperationalError" in said[name] and "\n" not in said[name]
    assert "the card database (postgresql://cards:***@127.0.0.1" in said["outage_alert"]
    assert "posted if still down at 1 min" in said["outage_alert"]
    assert "store reachable" in said["outage_alert"]
    assert not any(PASSWORD in s for s in said.values())
    assert webhook.posts == []  # first seen down: not yet


# -- the real daemon -----------------------------------------------------------------------------

OUTAGE_S = 10  # the least PD_OUTAGE_ALERT_SECONDS allows: a probe each look of the daemon (5 s)


def _ticks(home: Path, sensor: str, after: float | None = None):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.name == sensor:
                return instance.get_ticks(state.instigator_origin_id, state.selector_id,
                                          after=after)  # fmt: skip
    return []


def _said(home: Path, after: float | None, sensor: str = "outage_alert") -> list[str]:
    return [t.skip_reason or "" for t in _ticks(home, sensor, after)]


@pytest.mark.slow
@pytest.mark.heavy
def test_the_daemon_posts_an_idle_outage_of_the_database_then_of_the_store(tmp_path):
    database, s3, hook = OwnPostgres(), S3Server().start(), Webhook()
    try:
        database.init()
        url = sa.make_url(database.url).set(password=PASSWORD).render_as_string(hide_password=False)
        engine = make_engine(url)
        schema.create_card_tables(engine)  # no card: nothing to render
        engine.dispose()
        bucket = s3.new_bucket()
        home = tmp_path / "dagster_home"
        home.mkdir()
        env = dagster_env(url, home, PD_ALERT_WEBHOOK_URL=hook.url,
                          PD_OUTAGE_ALERT_SECONDS=str(OUTAGE_S),
                          **s3_settings(s3.endpoint_url, bucket))  # fmt: skip
        with process_group(dagster_dev_command(), tmp_path / "dagster-dev.log", env):
            started = time.time()
            wait_for(lambda: any("Both reachable" in s for s in _said(home, None)),
                     "outage_alert's first tick", 90)  # fmt: skip
            print(f"dagster dev: first outage_alert tick {time.time() - started:.0f}s")

            def outage(target: str, stop, start, before: int) -> None:
                stop()
                down_at = time.time()
                took = wait_for(lambda: len(hook.posts) > before, f"{target} down post", 40)
                assert took >= OUTAGE_S and len(hook.posts) == before + 1
                # quiet: a tick after the post knows it posted, and posts nothing more
                posted_at = time.time()
                wait_for(lambda: any(f"the {target} (" in s and "; posted)" in s
                                     for s in _said(home, posted_at)),
                         f"a tick after the {target} down post", 20, every=0.5)  # fmt: skip
                assert len(hook.posts) == before + 1
                start()
                started_at = time.time()
                back = wait_for(lambda: len(hook.posts) > before + 1, f"{target} back post", 20)
                # the tick that posted it is written once it ends
                wait_for(lambda: any("Both reachable" in s for s in _said(home, started_at)),
                         "the back post's tick", 10, every=0.2)  # fmt: skip
                print(f"{target}: down post {took:.0f}s after it stopped, back post {back:.0f}s "
                      f"after it started ({time.time() - down_at:.0f}s in all)")  # fmt: skip

            outage("card database", database.stop, database.start, before=0)
            restart_s3 = lambda: (s3.start(), s3.client().create_bucket(Bucket=bucket))  # noqa: E731
            outage("store", s3.stop, restart_s3, before=2)
            pending = _ticks(home, "pending_images_sensor", started)
            print(f"in all {time.time() - started:.0f}s under dagster dev")
    finally:
        hook.stop()
        s3.stop()
        database.remove()

    texts = [p["text"] for p in hook.posts]
    assert len(texts) == 4, texts
    db_down, db_back, store_down, store_back = texts
    masked = f"postgresql+psycopg://***@127.0.0.1:{database.port}/postgres"
    assert f"the card database ({masked})" in db_down
    assert "has been unreachable for" in db_down and "OperationalError" in db_down
    assert "the card database (" in db_back and "is reachable again" in db_back
    assert f"the store (s3://{bucket}/) has been unreachable" in store_down
    assert "EndpointConnectionError" in store_down
    assert f"the store (s3://{bucket}/) is reachable again" in store_back
    for text in texts:
        assert PASSWORD not in text and "testing" not in text  # the AWS secret
    # The render sensor met the database down in a line, never with a traceback.
    assert not [t for t in pending if t.status == TickStatus.FAILURE]
    assert any("The card database cannot be reached" in (t.skip_reason or "") for t in pending)
