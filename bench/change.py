"""What a small change costs: `render_pending_job` after one card's ratings change, in a cardset
of 10 cards and in one of 50,000, every other card settled as a run leaves it, the database
tracking changes (target: the big one at most 1.5x the small one: a run reads what changed).

    python -m bench change [--cards 10 50000] [--repeat 3]

Each cardset is filled in bulk and settled the way a run settles it (`bulk.settled_cardset`:
one real PNG stored under every card's key, the ledger and the URLs written, changes tracked).
Then one card's ratings change, the sensor's drain flags it, and the job runs, timed, counting
what it asks the store.
"""

import os
import statistics
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.images.drain import drain
from pd_pipeline.storage.stores import S3Store
from pd_pipeline_tests.bulk import settled_cardset
from pd_pipeline_tests.helpers import card_policy, move_chances
from pd_pipeline_tests.services import S3Server


def one_change(engine: sa.Engine) -> dict:
    """render_pending_job after one card's ratings change: seconds and store requests."""
    import dagster as dg

    from pd_pipeline.defs import build_defs

    requests: Counter = Counter()
    originals = {name: getattr(S3Store, name) for name in ("head", "get", "put", "list")}
    for name, original in originals.items():

        def counted(self, *args, _name=name, _original=original, **kwargs):
            requests[_name] += 1
            return _original(self, *args, **kwargs)

        setattr(S3Store, name, counted)
    with engine.connect() as conn:
        card_id = conn.scalar(sa.select(schema.battingcard.c.id).limit(1))
    move_chances(engine, card_id)
    drained = drain(engine, card_policy(), 5000)  # what the sensor's next tick does
    assert drained.flagged == 1, drained
    job = build_defs().resolve_job_def("render_pending_job")
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            started = time.monotonic()
            result = job.execute_in_process(instance=instance, raise_on_error=False)
            seconds = time.monotonic() - started
    finally:
        for name, original in originals.items():
            setattr(S3Store, name, original)
    rendered = sum(
        e.materialization.metadata["rendered"].value
        for e in result.get_asset_materialization_events()
        if "rendered" in e.materialization.metadata
    )
    return {"success": result.success, "seconds": seconds, "rendered": rendered,
            "store_requests": dict(requests)}  # fmt: skip


def run(sizes: list[int], work: Path, repeat: int = 3) -> dict:
    """Each size settled once, then the one-card change run `repeat` times per size, in turns
    (other work on the machine hits both alike); the medians are compared."""
    work.mkdir(parents=True, exist_ok=True)
    s3 = S3Server().start()
    settings, engines, results = {}, {}, {cards: [] for cards in sizes}
    try:
        for cards in sizes:
            database = work / f"change-{cards}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            settings[cards] = {"PD_DATABASE_URL": f"sqlite:///{database}", **s3.settings()}
            os.environ.update(settings[cards])
            started = time.monotonic()
            engines[cards] = settled_cardset(os.environ["PD_DATABASE_URL"], cards)
            print(f"{cards} cards settled in {time.monotonic() - started:.0f}s", flush=True)
        for turn in range(repeat):
            for cards in sizes:
                os.environ.update(settings[cards])  # its database and its bucket
                results[cards].append(one_change(engines[cards]))
                print(f"turn {turn + 1}/{repeat}, {cards} cards, one changed: "
                      f"{results[cards][-1]}", flush=True)  # fmt: skip
    finally:
        for engine in engines.values():
            engine.dispose()
        s3.stop()
    median = {
        cards: statistics.median(r["seconds"] for r in runs) for cards, runs in results.items()
    }
    small, big = min(sizes), max(sizes)
    ratio = median[big] / median[small]
    took = {cards: f"{median[cards]:.1f}s in {cards:,} cards" for cards in sizes}
    print(f"a one-card change, median of {repeat}: {took[big]}, {took[small]}: {ratio:.2f}x "
          "(target <= 1.5x)")  # fmt: skip
    return {"runs": results, "median_s": median, "ratio": ratio}
