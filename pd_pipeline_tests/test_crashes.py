"""A run SIGKILLed at any point (the `dagster job execute` process group, Chromium included)
loses nothing: the next run converges, renders no current object again (PNG or APNG), and no row
ever carries the URL of an object the store has not confirmed."""

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline_tests.helpers import assert_every_card_correct, image_urls, seed_small_demo
from pd_pipeline_tests.services import dagster_env

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
RUN = [DAGSTER, "job", "execute", "-m", "pd_pipeline", "-j", "render_pending_job"]


def _objects(store: Path, suffix: str = "") -> dict[str, int]:
    """Key -> inode of every image (ending `suffix`) in the local store (a new inode: the object
    was made again)."""
    return {p.relative_to(store).as_posix(): p.stat().st_ino for p in store.rglob(f"*{suffix}")
            if p.suffix in (".png", ".apng")}  # fmt: skip


def _progress(engine: sa.Engine, store: Path, image: str = "png") -> tuple[int, int, int]:
    """(objects of `image` in the store, those the ledger confirms, rows carrying its URL)."""
    entry = schema.card_render
    with engine.connect() as conn:
        confirmed = conn.scalar(
            sa.select(sa.func.count())
            .select_from(entry)
            .where(entry.c.png_sha256.is_not(None), entry.c.image == image)
        )
        column = "image_url" if image == "png" else "animated_url"
        urls = sum(conn.scalar(sa.select(sa.func.count()).where(t.c[column].is_not(None)))
                   for t in schema.CARD_TABLES.values())  # fmt: skip
    return len(_objects(store, f".{image}")), confirmed, urls


def _run_killed_when(env: dict, until, log: Path) -> tuple[int, int, int]:
    """Start the run in a session of its own; SIGKILL the whole group once `until(progress)`
    holds. Returns the progress it was killed at."""
    with open(log, "w") as out:
        run = subprocess.Popen(RUN, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            seen = until()
            if seen:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                _assert_group_gone(run.pid)
                return seen
            time.sleep(0.02)
    pytest.fail(f"the run ended (rc={run.returncode}) before the crash point; log: {log}")


def _assert_group_gone(group: int) -> None:
    """Nothing of the group survives, Chromium included (once the killed are reaped)."""
    for _ in range(50):
        left = subprocess.run(["pgrep", "-g", str(group)], capture_output=True).stdout
        if not left:
            return
        time.sleep(0.1)
    pytest.fail(f"processes left in the killed run's group: {left!r}")


def test_a_run_killed_anywhere_converges_on_the_next(sqlite_url, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("PD_STORE", str(store))
    engine = seed_small_demo(sqlite_url, players=16)
    (tmp_path / "home").mkdir()
    env = dagster_env(sqlite_url, tmp_path / "home")
    cards = sum(len(image_urls(engine, t)) for t in schema.CARD_TABLES)

    def mid_render():
        made, _, _ = _progress(engine, store)
        return (made, 0, 0) if 0 < made < cards // 2 else None

    def stored_before_recorded():
        made, confirmed, urls = _progress(engine, store)
        # objects this run uploaded, not all of them recorded yet
        return (made, confirmed, urls) if before[0] < made < cards and made > confirmed else None

    def mid_write_back():
        made, confirmed, urls = _progress(engine, store)
        return (made, confirmed, urls) if 0 < urls < cards else None

    def mid_animation():  # APNGs stored, their URLs not all written
        made, confirmed, urls = _progress(engine, store, "apng")
        return (made, confirmed, urls) if made and urls < made else None

    killed = []
    points = (mid_render, stored_before_recorded, mid_write_back, mid_animation)
    for i, point in enumerate(points):
        before = _progress(engine, store)
        killed.append(_run_killed_when(env, point, tmp_path / f"run-{i}.log"))
    print(f"killed at (objects, confirmed, urls) = {killed} of {cards} cards")
    assert all(killed)

    # Every URL written so far names a confirmed object: nothing was written ahead of the store.
    assert_urls_confirmed(engine)
    before = _objects(store)
    done = subprocess.run(RUN, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_every_card_correct(engine, opened=5)
    after = _objects(store)
    remade = [key for key, inode in before.items() if after[key] != inode]
    assert not remade, f"current objects made again: {remade}"


def assert_urls_confirmed(engine: sa.Engine) -> None:
    entry = schema.card_render
    with engine.connect() as conn:
        for (card_type, table), (image, column) in itertools.product(
            schema.CARD_TABLES.items(), (("png", "image_url"), ("apng", "animated_url"))
        ):
            its_entry = sa.and_(entry.c.card_type == card_type, entry.c.card_id == table.c.id,
                                entry.c.image == image)  # fmt: skip
            rows = conn.execute(
                sa.select(table.c[column], entry.c.url, entry.c.png_sha256)
                .outerjoin(entry, its_entry)
                .where(table.c[column].is_not(None))
            ).all()
            for url, confirmed, sha in rows:
                assert sha is not None and url == confirmed, f"{url} written unconfirmed"
