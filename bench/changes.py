"""Changes at scale, on PostgreSQL: a new season's ratings as one bulk UPDATE, timed with and
without the change-capture triggers (in turns, median of each); the burst it queues worked off
by the sensor's ticks (their count, their times, the cardsets they launch); and the first look
at a database whose rows carry another renderer's URLs and no ledger entry.

    python -m bench changes --players 500000   # 1,000,000 card rows (make loadtest)
"""

import os
import statistics
import time

import dagster as dg
import sqlalchemy as sa

from bench.writeback import drop_postgres, fresh_postgres
from pd_pipeline.db import changes, schema
from pd_pipeline.db.indexes import add_indexes
from pd_pipeline.db.migrations import migrate
from pd_pipeline.images.first_look import first_look
from pd_pipeline_tests.bulk import fill
from pd_pipeline_tests.helpers import run_keys, sensor_tick
from pd_pipeline_tests.services import S3Server

TARGET_RATIO = 1.5


def _update(engine: sa.Engine, rows: int, turn: int) -> float:
    started = time.monotonic()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE battingcardratings SET homerun = homerun + {turn % 2 * 2 - 1} "
            f"WHERE id <= {rows}"
        )
    return time.monotonic() - started


def _vacuum(engine: sa.Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE battingcardratings")


def run(players: int, rows: int = 100_000, repeat: int = 3) -> dict:
    name, engine = fresh_postgres()
    s3 = S3Server().start()
    try:
        schema.metadata.create_all(engine)
        migrate(engine)
        started = time.monotonic()
        fill(engine, players)
        add_indexes(engine)
        print(f"{2 * players:,} card rows filled in {time.monotonic() - started:.0f}s", flush=True)

        times: dict[bool, list[float]] = {False: [], True: []}
        for turn in range(2 * repeat):
            tracked = bool(turn % 2)
            (changes.install if tracked else changes.remove)(engine)
            _vacuum(engine)
            times[tracked].append(_update(engine, rows, turn))
            print(f"  {rows:,}-row ratings UPDATE, triggers {'on' if tracked else 'off'}: "
                  f"{times[tracked][-1]:.2f}s", flush=True)  # fmt: skip
        without, with_ = statistics.median(times[False]), statistics.median(times[True])
        ratio = with_ / without
        print(f"UPDATE of {rows:,} ratings rows: {without:.2f}s without the triggers, "
              f"{with_:.2f}s with them: {ratio:.2f}x (target <= {TARGET_RATIO}x)")  # fmt: skip

        # The last UPDATE ran with the triggers: its cards wait in the queue. The sensor, as the
        # daemon ticks it, works them off.
        with engine.connect() as conn:
            queued = changes.waiting(conn)
        os.environ.update({"PD_DATABASE_URL": engine.url.render_as_string(hide_password=False),
                           **s3.settings()})  # fmt: skip
        ticks, launched = [], []
        with dg.instance_for_test() as instance:
            cursor = None
            while True:
                started = time.monotonic()
                result, cursor = sensor_tick(instance, cursor)
                ticks.append(time.monotonic() - started)
                launched.append(len(run_keys(result)))
                with engine.connect() as conn:
                    if not changes.waiting(conn):
                        break
        print(f"the burst ({queued:,} cards queued) worked off in {len(ticks)} ticks of "
              f"{min(ticks):.2f}-{max(ticks):.2f}s (median {statistics.median(ticks):.2f}s); "
              f"runs launched per tick: {launched}")  # fmt: skip

        with engine.begin() as conn:  # a database another renderer filled: URLs, no ledger
            conn.execute(sa.delete(schema.card_render))
        started = time.monotonic()
        look = first_look(engine)
        first = time.monotonic() - started
        print(f"first look at {2 * players:,} card rows: {look.noted:,} noted in "
              f"{len(look.cardsets)} cardsets, {first:.1f}s")  # fmt: skip
        return {
            "card_rows": 2 * players,
            "update_rows": rows,
            "update_s": {"without_triggers": times[False], "with_triggers": times[True]},
            "ratio": ratio,
            "burst": {"queued": queued, "ticks_s": ticks, "launched": launched},
            "first_look": {"noted": look.noted, "cardsets": len(look.cardsets), "seconds": first},
            "unmet": [] if ratio <= TARGET_RATIO else [f"UPDATE ratio {ratio:.2f}x"],
        }
    finally:
        s3.stop()
        engine.dispose()
        drop_postgres(name)
