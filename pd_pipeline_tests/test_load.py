"""A backlog across several cardsets, worked off by nothing but the sensor: the daemon on the
production instance (deploy/dagster.yaml, PostgreSQL), a PostgreSQL card database and an S3
server. At the end every card has the URL of its current, valid PNG, every run succeeded, and
no card was rendered twice.

CI runs a small backlog (three cardsets). `make loadtest` runs 50,000 cards
(PD_LOADTEST_CARDS=50000), printing its figures.
"""

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from bench.seed import seed_cards
from pd_pipeline.db import schema
from pd_pipeline.db.cards import cardset_ids
from pd_pipeline.db.engine import make_engine
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.settings import Settings
from pd_pipeline_tests.helpers import assert_every_card_correct, seed_small_demo
from pd_pipeline_tests.services import S3Server, process_group

# A load run: `make loadtest` (CI runs the production instance's job and ticks in
# test_production_instance.py, and the daemon working off a backlog in test_daemon.py).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("PD_LOADTEST_CARDS"),
        reason="a load run: make loadtest sets PD_LOADTEST_CARDS",
    ),
]
DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))
# Read at import: the tests' own fixtures clear PD_* settings.
CARDS = int(os.environ.get("PD_LOADTEST_CARDS") or "0")  # 0: a small demo backlog
RENDER_RUNS_AT_ONCE = 4  # deploy/dagster.yaml's pd/render limit
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")


@pytest.fixture
def backlog(pg_url) -> sa.Engine:
    if CARDS:
        seed_cards(pg_url, CARDS)
        return make_engine(pg_url)
    return seed_small_demo(pg_url, players=20, seasons=(2008, 2019, 2018))


@pytest.fixture
def own_s3_server() -> Iterator[S3Server]:
    """A server of the test's own: it holds every PNG in memory, and gives it back at the end."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def daemon(production_instance, backlog, own_s3_server, tmp_path, monkeypatch):
    """`dagster-daemon run` on the production instance, with the pipeline's settings."""
    instance, _ = production_instance
    settings = {
        "DAGSTER_HOME": str(tmp_path),
        "PD_DATABASE_URL": backlog.url.render_as_string(hide_password=False),
        **own_s3_server.settings(),
        "PD_SENSOR_INTERVAL_SECONDS": "5",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    # Its code server and runs too are stopped at the end.
    with process_group([DAEMON, "run", "-m", "pd_pipeline"], tmp_path / "daemon.log"):
        yield instance, backlog


def _cards_without_url(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        counts = [
            conn.execute(sa.select(sa.func.count(), sa.func.count(table.c.image_url))).one()
            for table in schema.CARD_TABLES.values()
        ]
    total = sum(c for c, _ in counts)
    return total, total - sum(u for _, u in counts)


def _runs(instance: dg.DagsterInstance, statuses: tuple[str, ...]) -> list[dg.DagsterRun]:
    wanted = [dg.DagsterRunStatus[s] for s in statuses]
    return list(instance.get_runs(dg.RunsFilter(statuses=wanted)))


def _rendered_per_card_type(instance: dg.DagsterInstance) -> int:
    total = 0
    for card_type in CARD_TYPES:
        records = instance.fetch_materializations(dg.AssetKey(f"{card_type}_pngs"), limit=10_000)
        for record in records.records:
            total += record.asset_materialization.metadata["rendered"].value
    return total


def test_a_backlog_is_worked_off_by_the_sensor_alone(daemon):
    instance, engine = daemon
    cards, _ = _cards_without_url(engine)
    deadline = 300 + cards * 0.3  # 3+ cards/s, on top of a few minutes' start-up
    started = time.monotonic()
    most_in_flight = most_rendering = 0
    last_report = 0.0
    while True:
        _, left = _cards_without_url(engine)
        in_flight = _runs(instance, IN_FLIGHT)
        rendering = sum(run.status == dg.DagsterRunStatus.STARTED for run in in_flight)
        most_in_flight = max(most_in_flight, len(in_flight))
        most_rendering = max(most_rendering, rendering)
        elapsed = time.monotonic() - started
        if elapsed - last_report >= 30:
            last_report = elapsed
            print(
                f"{elapsed:5.0f}s: {cards - left}/{cards} cards have a URL, "
                f"{len(in_flight)} runs in flight ({rendering} rendering)",
                flush=True,
            )
        if left == 0 and not in_flight:
            break
        failed = _runs(instance, ("FAILURE",))
        assert not failed, f"run {failed[0].run_id} failed: see {instance.root_directory}"
        assert elapsed < deadline, f"{left} of {cards} cards still lack a URL after {elapsed:.0f}s"
        time.sleep(3)
    took = time.monotonic() - started

    # The sensor kept its bounds, and the instance its render limit.
    assert most_in_flight <= Settings.model_fields["sensor_max_runs_in_flight"].default
    assert most_rendering <= RENDER_RUNS_AT_ONCE
    runs = _runs(instance, ("SUCCESS",))
    assert runs and not _runs(instance, ("FAILURE", "CANCELED"))
    # Each card was rendered once: no run repeated another's work.
    assert _rendered_per_card_type(instance) == cards

    # Every card has the canonical URL of its current image, and the object behind it is valid.
    with engine.connect() as conn:
        ids = cardset_ids(conn)
    assert assert_every_card_correct(engine, ids, opened=20) == cards
    print(
        f"\n{cards} cards in {len(ids)} cardsets: {took:.0f}s ({cards / took:.1f} cards/s) "
        f"in {len(runs)} sensor-launched runs; at most {most_in_flight} runs in flight and "
        f"{most_rendering} rendering at once; every URL current and its object valid"
    )
