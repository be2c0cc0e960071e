"""Nothing lost under concurrency: edits by other clients while a run is in flight, and two
workers on the same and on overlapping partitions (PostgreSQL, a real S3 server, the real CLI)."""

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.engine import ready_engine
from pd_pipeline_tests.helpers import (
    add_variant,
    assert_every_card_correct,
    image_urls,
    move_chances,
    seed_small_demo,
    stored_count,
)
from pd_pipeline_tests.services import dagster_env

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
CARDSET_001 = ("-j", "card_images_job", "--tags", '{"dagster/partition": "cardset-001"}')


@pytest.fixture
def cli_env(pg_url, s3_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PD_DATABASE_URL", pg_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The partitions a deployment's sensor (or render_pending_job) would have registered.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("cardsets", ["cardset-001", "cardset-002"])
    return dagster_env(pg_url, home)


def start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [DAGSTER, "job", "execute", "-m", "pd_pipeline", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def test_edits_during_a_run_are_never_clobbered_and_the_next_run_converges(pg_url, cli_env):
    engine = seed_small_demo(pg_url, players=16)
    ids = sorted(image_urls(engine))
    taken, edited, deleted = ids[0], ids[1], ids[2]
    run = start(cli_env, *CARDSET_001)
    # Once rendering is under way (the run has read every row), another client edits.
    deadline = time.monotonic() + 120
    while stored_count(engine) < 3 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    elsewhere = "https://elsewhere.example/theirs.png"
    t, r = schema.battingcard, schema.battingcardratings
    with engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.id == taken).values(image_url=elsewhere))
        conn.execute(sa.delete(r).where(r.c.battingcard_id == deleted))
        conn.execute(sa.delete(t).where(t.c.id == deleted))
    move_chances(engine, edited)
    added = add_variant(engine, variant=999)
    code, output = finish(run)
    assert code == 0, output[-3000:]

    urls = image_urls(engine)
    assert urls[taken] == elsewhere, "another client's image_url was overwritten"
    assert deleted not in urls
    assert urls[added] is None, "a row added mid-run waits for the next run"
    before_edit = urls[edited]
    entry = schema.card_render
    with engine.connect() as conn:
        flag = conn.scalar(
            sa.select(entry.c.flag).where(
                entry.c.card_type == "battingcard", entry.c.card_id == edited
            )
        )
    assert flag == "data_changed", "a row edited mid-run is flagged for the next run"

    code, output = finish(start(cli_env, *CARDSET_001))
    assert code == 0, output[-3000:]
    urls = image_urls(engine)
    assert urls[edited] and urls[edited] != before_edit
    assert urls[added]
    assert_every_card_correct(engine)  # the URL set mid-run, outside the store, is replaced


# test_exclusive_render runs two processes on one cardset on both databases; this, three CLI runs.
@pytest.mark.thorough
def test_two_workers_on_the_same_and_on_overlapping_partitions(pg_url, cli_env):
    engine = seed_small_demo(pg_url, players=16, seasons=(2008, 2019))
    workers = [
        start(cli_env, *CARDSET_001),
        start(cli_env, *CARDSET_001),
        start(cli_env, "-j", "render_pending_job"),  # every cardset, overlapping both
    ]
    for worker in workers:
        code, output = finish(worker)
        assert code == 0, output[-3000:]
    assert_every_card_correct(engine, cardset_ids=(1, 2))
    # Bounded duplicate work: each card rendered at most once per worker that planned it.
    with ready_engine(pg_url).connect() as conn:
        cards = sum(len(image_urls(engine, t)) for t in ("battingcard", "pitchingcard"))
        entry = schema.card_render
        stills = conn.scalar(sa.select(sa.func.count()).where(entry.c.image == "png"))
    assert stills == cards
