"""Upgrading from every earlier release: a card database and store each release made itself
(fixtures/releases/, built by their build.py from the release's own commit) are migrated, and
the first run after the upgrade changes no URL and renders nothing; a rating changed after it
re-renders exactly that card; the rollout then brings every card to this release's design."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pd_pipeline import __version__
from pd_pipeline.db import schema
from pd_pipeline.db.engine import make_engine
from pd_pipeline.db.migrations import LATEST
from pd_pipeline.render.pages import pages_for
from pd_pipeline_tests.helpers import (
    assert_every_card_correct,
    materializations,
    memory_instance,
    move_chances,
    run_keys,
    run_partition,
    sensor_tick,
)

RELEASES = sorted((Path(__file__).parent / "fixtures" / "releases").glob("20*"))
PD_PIPELINE = str(Path(sys.executable).with_name("pd-pipeline"))
pytestmark = [pytest.mark.slow, pytest.mark.heavy]


# Every release on SQLite; the oldest, which walks every migration, on PostgreSQL too. CI runs
# the oldest on PostgreSQL and the newest on SQLite; the rest are `thorough` (make test-all).
IN_CI = {(RELEASES[0], "postgresql"), (RELEASES[-1], "sqlite")}
CASES = [
    pytest.param((r, db), id=f"{r.name}-{db}",
                 marks=() if (r, db) in IN_CI else pytest.mark.thorough)
    for r, db in [(r, "sqlite") for r in RELEASES] + [(RELEASES[0], "postgresql")]
]  # fmt: skip


@pytest.fixture(params=CASES)
def release(request, tmp_path, monkeypatch):
    """A copy of what the release left (its database, its store), with its settings."""
    made, database = request.param
    shutil.copy(made / "cards.db", tmp_path / "cards.db")
    shutil.copytree(made / "store", tmp_path / "store")
    manifest = json.loads((made / "manifest.json").read_text())
    url = f"sqlite:///{tmp_path / 'cards.db'}"
    if database == "postgresql":
        url = request.getfixturevalue("pg_url")
        copy_database(f"sqlite:///{tmp_path / 'cards.db'}", url)
    env = {
        "PD_DATABASE_URL": url,
        "PD_STORE": str(tmp_path / "store"),
        "PD_PUBLIC_BASE_URL": manifest["public_base_url"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return manifest, env


def copy_database(source: str, target: str) -> None:
    """Every table of `source`, as it is (the ledger in its release's shape), into `target`."""
    tables = sa.MetaData()
    tables.reflect(sa.create_engine(source))
    for table in tables.sorted_tables:  # SQLite's types, as PostgreSQL knows them
        for column in table.columns:
            generic = column.type.as_generic()
            column.type = (
                sa.DateTime(timezone=True) if isinstance(generic, sa.DateTime) else generic
            )
    with sa.create_engine(source).connect() as read, make_engine(target).begin() as write:
        tables.create_all(write)
        for table in tables.sorted_tables:
            rows = [dict(row._mapping) for row in read.execute(sa.select(table))]
            if rows:
                write.execute(sa.insert(table), rows)


def _urls(engine: sa.Engine) -> dict[tuple[str, int], str]:
    with engine.connect() as conn:
        return {
            (card_type, card_id): url
            for card_type, table in schema.CARD_TABLES.items()
            for card_id, url in conn.execute(sa.select(table.c.id, table.c.image_url))
        }


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PD_PIPELINE, *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_an_upgrade_renders_nothing_that_did_not_change_then_rolls_out(release):
    manifest, env = release
    engine = make_engine(env["PD_DATABASE_URL"])
    before = _urls(engine)
    assert len(before) == len(manifest["cards"]) and all(before.values())

    migrated = _cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"version {LATEST}:" in migrated.stdout
    again = _cli(env, "migrate")
    assert "nothing to do" in again.stdout
    tracking = _cli(env, "track-changes")  # as the CHANGELOG's upgrade notes advise
    assert "First look: 0 cards new to the ledger" in tracking.stdout, tracking.stderr[-3000:]

    # Every card is where the release left it: current, or stale only by design (a design
    # this release changed), its object read as the pipeline's own.
    same_design = manifest["template_version"] == pages_for().version
    for card_type, card_id in before:
        why = json.loads(_cli(env, "why", card_type, str(card_id), "--json").stdout)
        assert why["state"] == ("settled" if same_design else "stale_by_design"), why
        assert why["object"]["problem"] is None, why

    with memory_instance() as instance:
        first = run_partition(instance)
        assert first.success
        assert instance.get_run_by_id(first.run_id).tags["pd/release"] == __version__
        assert _urls(engine) == before, "the first run after an upgrade changed a URL"
        assert materializations(first, "battingcard_pngs")["rendered"] == 0

        # A rating changed after the upgrade: the sensor finds it, and exactly that card is
        # made again.
        move_chances(engine, 1)
        tick, _ = sensor_tick(instance)
        assert "cardset-001" in run_keys(tick)
        changed = run_partition(instance)
        assert changed.success
        after = _urls(engine)
        assert {k for k in before if after[k] != before[k]} == {("battingcard", 1)}

        # The rollout brings every card to this release's design.
        roll_out = {"config": {"roll_out": 100}}
        ops = {"ops": {"battingcard_pngs": roll_out, "pitchingcard_pngs": roll_out}}
        assert run_partition(instance, **ops).success
    with engine.connect() as conn:
        entry = schema.card_render
        made = conn.execute(sa.select(entry.c.template_version, entry.c.release)).all()
    assert {design for design, _ in made} == {pages_for().version}
    if not same_design:  # every card was made again, by this release
        assert {release for _, release in made} == {__version__}
    assert assert_every_card_correct(engine) == len(before)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_processes_migrating_at_once_take_turns(db_url):
    copy_database(f"sqlite:///{RELEASES[0] / 'cards.db'}", db_url)
    env = {"PD_DATABASE_URL": db_url}
    started = [
        subprocess.Popen(
            [PD_PIPELINE, "migrate"], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True
        )  # fmt: skip
        for _ in range(3)
    ]
    said = [process.communicate(timeout=120)[0] for process in started]
    assert [process.returncode for process in started] == [0, 0, 0]
    assert sum(f"version {LATEST}:" in out for out in said) == 1, said  # one of them migrated
    with make_engine(db_url).connect() as conn:
        versions = conn.scalars(sa.select(schema.card_render_schema.c.version)).all()
    assert sorted(versions) == list(range(1, LATEST + 1))
