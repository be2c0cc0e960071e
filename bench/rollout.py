"""A design rolled out over a few thousand cards while new variants keep arriving.

    python -m bench rollout [--cards 3000] [--inserts 15] [--every 4]

`dagster dev` with default settings on a fresh DAGSTER_HOME, an S3 server and a card database
of N demo cards. First in the shipped design: the sensor renders every card, then new variants
are inserted one at a time and timed from insert to URL (the usual latency). Then `dagster dev`
starts again with PD_TEMPLATES_DIR=examples/classic: every card is stale by design and the sensor
rolls the design out, PD_ROLLOUT_CARDS_PER_RUN cards per card type a run, one run at a time,
while the same inserts are timed again. Reports both latencies, the rollout's pace (cards per
minute, cards per run) and how long it took to finish.
"""

import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from bench.latency import TARGETS, dagster_dev, percentiles, s3_server, said, time_inserts
from bench.seed import seed_cards
from pd_pipeline.db import schema
from pd_pipeline.db.engine import make_engine
from pd_pipeline.defs.automation.tick import ROLLOUT_TAG
from pd_pipeline.render.pages import pages_for
from pd_pipeline.settings import Settings
from pd_pipeline_tests.helpers import every_url_written, wait_for

EXAMPLE = Path(__file__).parents[1] / "examples" / "classic"
PER_RUN = Settings.model_fields["rollout_cards_per_run"].default  # the default pace


def run(cards: int, inserts: int, every: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="pd-rollout-"))
    url = f"sqlite:///{work / 'cards.db'}"
    seed_cards(url, cards)
    engine = make_engine(url)
    new_design = pages_for(str(EXAMPLE)).version
    with s3_server() as s3:
        with dagster_dev(work, url, "dev-shipped-design", **s3.settings()):
            started = time.monotonic()
            wait_for(lambda: every_url_written(engine), f"the {cards} seeded cards", 60 + cards / 3)
            print(f"{cards} cards rendered {time.monotonic() - started:.0f}s after start")
            before = percentiles(time_inserts(engine, inserts, every, first_variant=800_000_000))
            print(f"insert to URL, no rollout: {said(before)}", flush=True)
        design = {"PD_TEMPLATES_DIR": str(EXAMPLE)}
        with dagster_dev(work, url, "dev-new-design", **s3.settings(), **design) as home:
            started = time.monotonic()
            pace = _Pace(engine, new_design)
            during = time_inserts(engine, inserts, every, first_variant=810_000_000)
            still_going = pace.old() > 0
            during = percentiles(during)
            print(f"insert to URL, during the rollout: {said(during)}", flush=True)
            wait_for(lambda: not pace.old(), "every card in the new design", 120 + cards / 2)
            took = time.monotonic() - started
            pace.stop()
            runs = _rollout_runs(home)
    rendered = [n for run in runs for n in run.values()]
    summary = {
        "cards": cards,
        "inserts": inserts,
        "every_s": every,
        "cards_per_run_setting": PER_RUN,
        "latency_no_rollout": before,
        "latency_during_rollout": during,
        "rollout_went_on_through_every_insert": still_going,
        "rollout_s": took,
        "rollout_cards_per_min": 60 * cards / took,
        "rollout_runs": len(runs),
        "most_cards_per_type_in_a_run": max(rendered, default=0),
        "new_design_over_time": pace.samples,
        "work": str(work),
    }
    most = summary["most_cards_per_type_in_a_run"]
    summary["unmet"] = [
        what
        for what, met in (
            ("the rollout went on through every insert", still_going),
            (f"no rollout run rendered more than {PER_RUN} cards per type",
             most <= PER_RUN),
            ("p95 insert to URL during the rollout <= 30 s", during["p95_s"] <= 30),
        )
        if not met
    ]  # fmt: skip
    print(
        f"rollout of {cards} cards: {took:.0f} s ({60 * cards / took:.0f} cards/min) in "
        f"{len(runs)} runs, at most {most} cards per type a run (PD_ROLLOUT_CARDS_PER_RUN="
        f"{PER_RUN}); new variants: {said(before)} without a rollout, "
        f"{said(during)} during it {TARGETS}"
    )
    return summary


class _Pace:
    """Samples, every 2 s, how many stored images are in the new design."""

    def __init__(self, engine: sa.Engine, design: str):
        self.engine, self.design, self.samples = engine, design, []
        self.started, self._stop = time.monotonic(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _count(self, same: bool) -> int:
        entry = schema.card_render
        version = entry.c.template_version
        where = version == self.design if same else version != self.design
        query = sa.select(sa.func.count()).where(entry.c.status == "stored", where)
        with self.engine.connect() as conn:
            return conn.scalar(query)

    def old(self) -> int:
        return self._count(same=False)

    def _sample(self) -> None:
        while not self._stop.wait(2):
            self.samples.append((round(time.monotonic() - self.started, 1), self._count(True)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _rollout_runs(home: Path) -> list[dict[str, int]]:
    """Cards rendered per card type by each rollout run."""
    runs = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs(dg.RunsFilter(tags={ROLLOUT_TAG: "true"})):
            made = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
            runs.append({
                m.asset_key.path[-1]: m.asset_materialization.metadata["rendered"].value
                for m in made if m.asset_key.path[-1].endswith("_pngs")
            })  # fmt: skip
    return runs
