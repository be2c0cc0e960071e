"""One run at a time renders a cardset, whoever launched it. A UI backfill's range run over
cardset-001 and cardset-002 (no `dagster/partition` tag, so no run-level limit applies to it) and
a sensor's run of cardset-001 start together, in two processes, on one card database and one S3
server. Each run reaches the store through a front of its own that notes its requests: the store
itself says which run made which object, and when."""

import time
from collections import defaultdict

import dagster as dg
import pytest

from pd_pipeline.db.cards import load_cards
from pd_pipeline.model import CARD_TYPES
from pd_pipeline_tests.helpers import assert_every_card_correct, seed_small_demo
from pd_pipeline_tests.services import FlakyS3, dagster_env
from pd_pipeline_tests.test_concurrency import finish, start

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
RUNS = {
    "sensor": '{"dagster/partition": "cardset-001"}',
    "backfill": '{"dagster/asset_partition_range_start": "cardset-001", '
    '"dagster/asset_partition_range_end": "cardset-002"}',
}
# What a run logs when it meets another on a cardset (images.exclusive).
MET = ("is making its PNGs", "its turn after")


class Front:
    """An HTTP front to the S3 server, noting when each of one run's uploads went through."""

    def __init__(self, endpoint_url: str):
        self.puts: dict[str, list[float]] = defaultdict(list)  # object key -> times
        self.server = FlakyS3(endpoint_url, self._note)
        self.endpoint_url = self.server.endpoint_url

    def _note(self, method: str, path: str, _before: int) -> None:
        if method == "PUT" and "/cards/" in path:
            self.puts[path.split("/", 2)[2]].append(time.monotonic())  # /bucket/key

    def made(self, cardset: str, card_type: str) -> dict[str, list[float]]:
        return {
            key: times
            for key, times in self.puts.items()
            if key.startswith(f"cards/{cardset}/") and key.endswith(f"/{card_type}.png")
        }


# SQLite's lock is the same rule on another table (test_locks runs both); make test-all runs it.
@pytest.mark.parametrize(
    "db_url", [pytest.param("sqlite", marks=pytest.mark.thorough), "postgresql"], indirect=True
)
def test_a_backfill_range_and_a_sensor_run_never_render_a_cardset_at_once(
    db_url, s3_env, s3_server, tmp_path, monkeypatch
):
    engine = seed_small_demo(db_url, players=8, seasons=(2008, 2019))
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("cardsets", ["cardset-001", "cardset-002"])
    # The URLs name the S3 server itself, whichever front a run went through.
    monkeypatch.setenv("PD_PUBLIC_BASE_URL", f"{s3_server.endpoint_url}/{s3_env['bucket']}")
    fronts = {name: Front(s3_server.endpoint_url) for name in RUNS}
    try:
        runs = {
            name: start(
                dagster_env(db_url, home, PD_S3_ENDPOINT_URL=fronts[name].endpoint_url),
                *("-j", "card_images_job", "--tags", tags),
            )
            for name, tags in RUNS.items()
        }
        outputs = {}
        for name, run in runs.items():
            code, outputs[name] = finish(run)
            assert code == 0, f"the {name} run failed:\n{outputs[name][-3000:]}"
    finally:
        for front in fronts.values():
            front.server.stop()

    with engine.connect() as conn:
        cards = {t: len(load_cards(conn, t, cardset_id=1)) for t in CARD_TYPES}
    for card_type in CARD_TYPES:
        sensor, backfill = (fronts[name].made("cardset-001", card_type) for name in RUNS)
        both = sorted(sensor.keys() & backfill.keys())
        assert not both, f"{card_type}s of cardset-001 made by both runs: {both}"
        assert len(sensor) + len(backfill) == cards[card_type], "each card made once"
        if sensor and backfill:  # one run made some of them, the other the rest: one by one
            spans = sorted((min(map(min, m.values())), max(map(max, m.values())))
                           for m in (sensor, backfill))  # fmt: skip
            assert spans[0][1] < spans[1][0], f"{card_type}s of cardset-001 made at once"
    met = [name for name, output in outputs.items() if any(m in output for m in MET)]
    assert met, "the runs never met on cardset-001 (one started late): nothing was tested"
    assert_every_card_correct(engine, cardset_ids=(1, 2))
