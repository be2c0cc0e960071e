"""Edit to URL on a large database: how long an edited card waits for its new image under
`dagster dev`, on PostgreSQL with a million card rows whose changes are tracked.

    python -m bench edits --card-rows 1000000 [--edits 20] [--every 3]   # make loadtest

The card database is a seeded demo (real, drawable cards) copied into 20 more cardsets until it
holds `--card-rows` card rows, each copy carrying a URL another renderer made. The triggers
are installed and the first look made, as `pd-pipeline track-changes` does; the pipeline then
takes over as on first contact (`PD_ADOPT_OUTSIDE=trust`: every URL kept as it is; timed, a
cardset at a time, through the image step itself). Then
`dagster dev` runs with those settings (`PD_ROLLOUT=manual`: no rollout run shares the machine),
and one card's ratings are edited at a time, at random across the table, as an admin correction
would be: each is timed from its commit to its new URL.
"""

import functools
import logging
import math
import os
import random
import time
from pathlib import Path

import sqlalchemy as sa

from bench.latency import dagster_dev, percentiles, s3_server, said
from bench.writeback import drop_postgres, fresh_postgres
from pd_pipeline import settings as settings_model
from pd_pipeline.db import changes, schema
from pd_pipeline.db.cards import cardset_ids
from pd_pipeline.db.indexes import add_indexes
from pd_pipeline.images.first_look import first_look
from pd_pipeline.images.produce import make_images
from pd_pipeline.images.writeback import write_back
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import pages_for
from pd_pipeline_tests.bulk import replicate
from pd_pipeline_tests.helpers import move_chances, seed_small_demo

TARGET_P50_S = 10.0
log = logging.getLogger("bench.edits")


def run(card_rows: int, edits: int, every: float, dequeue_seconds: int | None = None) -> dict:
    name, engine = fresh_postgres()
    url = engine.url.render_as_string(hide_password=False)
    try:
        with s3_server() as s3:
            env = {**s3.settings(), "PD_DATABASE_URL": url, "PD_ADOPT_OUTSIDE": "trust",
                   "PD_ROLLOUT": "manual"}  # fmt: skip
            os.environ.update(env)
            filled = _fill(url, card_rows)
            print(f"{filled:,} card rows filled", flush=True)
            started = time.monotonic()
            changes.install(engine)  # as `pd-pipeline track-changes` does
            noted = first_look(engine).noted
            looked = time.monotonic() - started
            print(f"triggers and first look: {noted:,} cards noted in {looked:.1f}s", flush=True)
            took = _take_over(engine)
            print(f"first contact: every card's URL kept in {took:.0f}s "
                  f"({filled / took:,.0f} cards/s)", flush=True)  # fmt: skip
            with dagster_dev(_work(name), url, "dagster-dev", dequeue_seconds, **env):
                time.sleep(30)  # the sensor's first ticks, the code location loaded
                latencies = _time_edits(engine, edits, every)
        summary = {"card_rows": filled, "edits": edits, "every_s": every,
                   "dequeue_s": dequeue_seconds or 5, "first_look_s": looked,
                   "first_contact_s": took, **percentiles(latencies)}  # fmt: skip
        met = summary["p50_s"] <= TARGET_P50_S
        print(f"edit to URL on {filled:,} card rows, {edits} edits one every {every:g}s: "
              f"{said(summary)} (target p50 <= {TARGET_P50_S:g}s: "
              f"{'met' if met else 'NOT met'})")  # fmt: skip
        summary["unmet"] = [] if met else [f"p50 {summary['p50_s']:.1f}s"]
        return summary
    finally:
        engine.dispose()
        drop_postgres(name)


def _work(name: str) -> Path:
    work = Path(__file__).resolve().parents[1] / "var" / "bench-edits" / name
    work.mkdir(parents=True, exist_ok=True)
    return work


def _fill(url: str, card_rows: int) -> int:
    engine = seed_small_demo(url, players=40)
    with engine.connect() as conn:
        base = sum(conn.scalar(sa.select(sa.func.count()).select_from(t))
                   for t in schema.CARD_TABLES.values())  # fmt: skip
    added = replicate(engine, math.ceil((card_rows - base) / base))
    add_indexes(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")  # as a server's autovacuum would have, long ago
    return base + added


def _take_over(engine: sa.Engine) -> float:
    """Every cardset through the image step and write-back, as the first runs would."""
    current = settings_model.load()
    store, design = current.open_store(), pages_for(None)
    policy = current.card_policy(store)
    browser = functools.cache(lambda: BrowserPool(find_chromium(), design))
    started = time.monotonic()
    with engine.connect() as conn:
        ids = cardset_ids(conn)
    try:
        for cardset_id in ids:
            for card_type in CARD_TYPES:
                make_images(engine, store, browser, design, policy, card_type, cardset_id,
                            logger=log)  # fmt: skip
                write_back(engine, policy, card_type, cardset_id)
    finally:
        if browser.cache_info().currsize:
            browser().close()
    return time.monotonic() - started


def _time_edits(engine: sa.Engine, edits: int, every: float) -> list[float]:
    """Edit `edits` batting cards at random, one every `every` seconds on average; each one's
    seconds from its commit to its new URL, once all have one."""
    table = schema.battingcard
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.select(table.c.id)))
    waiting: dict[int, tuple[float, str]] = {}
    latencies: list[float] = []
    chance = random.Random(7)
    for n, card_id in enumerate(chance.sample(ids, edits)):
        with engine.connect() as conn:
            before = conn.scalar(sa.select(table.c.image_url).where(table.c.id == card_id))
        move_chances(engine, card_id)
        waiting[card_id] = (time.monotonic(), before)
        # Spaced `every` on average, unevenly: edits a fixed 20 s apart would all land at the
        # same point of the sensor's 5 s cycle, and measure that point only.
        deadline = time.monotonic() + every * chance.uniform(0.75, 1.25)
        while time.monotonic() < deadline or (n == edits - 1 and waiting):
            latencies += _arrived(engine, waiting)
            time.sleep(0.2)
            if waiting and time.monotonic() - min(t for t, _ in waiting.values()) > 300:
                raise RuntimeError(f"{len(waiting)} edited cards got no new URL within 300 s")
    return latencies


def _arrived(engine: sa.Engine, waiting: dict[int, tuple[float, str]]) -> list[float]:
    table = schema.battingcard
    with engine.connect() as conn:
        query = sa.select(table.c.id, table.c.image_url).where(table.c.id.in_(list(waiting)))
        now = dict(conn.execute(query).all())
    done = [card_id for card_id, (_, before) in waiting.items() if now.get(card_id) != before]
    return [time.monotonic() - waiting.pop(card_id)[0] for card_id in done]
