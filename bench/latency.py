"""Insert to URL: how long a new card waits for its image, with `dagster dev` and default settings.

    python -m bench latency [--inserts 20] [--every 3]

Starts `dagster dev` (webserver and daemon: the sensor launches the runs) on a fresh
DAGSTER_HOME, a small seeded card database and an S3 server, waits until the seeded cards have
their URLs, then inserts new variant rows one at a time, as another tool would, and times each
from its insert to its URL being written.
"""

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
import yaml

from pd_pipeline_tests.helpers import add_variant, image_urls, seed_small_demo, wait_for
from pd_pipeline_tests.services import S3Server, dagster_dev_command, dagster_env, process_group

TARGETS = "(targets: p50 <= 15 s, p95 <= 30 s)"
DEPLOYED = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"


def run(inserts: int, every: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="pd-latency-"))
    url = f"sqlite:///{work / 'cards.db'}"
    engine = seed_small_demo(url, players=4)
    with s3_server() as s3, dagster_dev(work, url, "dagster-dev", **s3.settings()):
        started = time.monotonic()
        wait_for(lambda: all(image_urls(engine).values()), "the seeded cards", 300)
        print(f"seeded cards rendered {time.monotonic() - started:.0f}s after start", flush=True)
        latencies = time_inserts(engine, inserts, every, first_variant=900_000_000)
    summary = {"inserts": inserts, "every_s": every, **percentiles(latencies),
               "log": str(work / "dagster-dev.log")}  # fmt: skip
    print(f"insert to URL over {inserts} variants, one every {every:g}s: {said(summary)} {TARGETS}")
    return summary


@contextmanager
def s3_server() -> Iterator[S3Server]:
    s3 = S3Server().start()
    try:
        yield s3
    finally:
        s3.stop()


@contextmanager
def dagster_dev(
    work: Path, url: str, name: str, dequeue_seconds: int | None = None, **settings: str
) -> Iterator[Path]:
    """`dagster dev` on `work`'s DAGSTER_HOME (kept across calls), its log in `work/name.log`;
    with `dequeue_seconds`, its run queue is drained that often (Dagster's default: 5 s)."""
    home = work / "dagster_home"
    home.mkdir(exist_ok=True)
    if dequeue_seconds is not None:  # the deployed run queue, drained that often
        queue = yaml.safe_load(DEPLOYED.read_text())["run_coordinator"]
        queue["config"]["dequeue_interval_seconds"] = dequeue_seconds
        (home / "dagster.yaml").write_text(yaml.safe_dump({"run_coordinator": queue}))
    command = dagster_dev_command()
    with process_group(command, work / f"{name}.log", dagster_env(url, home, **settings)):
        yield home


def time_inserts(engine: sa.Engine, inserts: int, every: float, first_variant: int) -> list[float]:
    """Insert `inserts` new variants, one every `every` seconds; each one's seconds from its
    insert to its URL, once all have one."""
    waiting: dict[int, float] = {}
    latencies: list[float] = []
    for n in range(inserts):
        waiting[add_variant(engine, variant=first_variant + n)] = time.monotonic()
        deadline = time.monotonic() + every
        while time.monotonic() < deadline or (n == inserts - 1 and waiting):
            latencies += _arrived(engine, waiting)
            time.sleep(0.2)
            if time.monotonic() - min(waiting.values(), default=time.monotonic()) > 300:
                raise RuntimeError(f"{len(waiting)} variants got no URL within 300 s")
    return latencies


def percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "p50_s": statistics.median(ordered),
        "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "max_s": ordered[-1],
        "latencies_s": latencies,
    }


def said(summary: dict) -> str:
    return f"p50 {summary['p50_s']:.1f}s, p95 {summary['p95_s']:.1f}s, max {summary['max_s']:.1f}s"


def _arrived(engine, waiting: dict[int, float]) -> list[float]:
    urls = image_urls(engine)
    done = [card_id for card_id in waiting if urls.get(card_id)]
    return [time.monotonic() - waiting.pop(card_id) for card_id in done]
