"""With nobody launching anything, the real daemon keeps every card's image current, and heals
after outages.

`dagster dev` (webserver + daemon, no run retries configured) runs on a temporary DAGSTER_HOME
against a card database on a PostgreSQL server of the test's own and an S3 server on loopback.
The test only edits the card database, as other tools do, stops and starts the servers, and
waits: the store is down when the sensor first launches runs, then the card database is.
"""

import itertools
import statistics
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import InstigatorType

from pd_pipeline_tests.helpers import (
    add_cardset,
    add_variant,
    assert_url_opens_its_png,
    image_urls,
    move_chances,
    seed_small_demo,
    wait_for,
)
from pd_pipeline_tests.services import (
    OwnPostgres,
    S3Server,
    dagster_dev_command,
    dagster_env,
    process_group,
    s3_settings,
)

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
# Runs one after another (a cardset's images are one run's at a time) and a new cardset's
# registration, on a CI machine busy with other tests: this asserts convergence, not latency
# (`make loadtest`'s edits bench measures that).
DEADLINE_S = 240


def _tick_gaps(home: Path) -> list[float]:
    """Seconds between the starts of pending_images_sensor's ticks, in order."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        (state,) = [s for s in states if s.instigator_name == "pending_images_sensor"]
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
    starts = sorted(tick.timestamp for tick in ticks)
    return [later - earlier for earlier, later in itertools.pairwise(starts)]


def _failed_runs(home: Path) -> int:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return len(instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])))


@pytest.fixture
def servers(monkeypatch):
    """The card database's server, up; the object store's, not started yet (it is down)."""
    database, s3 = OwnPostgres().init(), S3Server()
    for name, value in s3_settings(s3.endpoint_url, "cards").items():
        monkeypatch.setenv(name, value)
    yield database, s3
    s3.stop()
    database.remove()


def test_the_daemon_keeps_every_card_image_current_and_heals_after_outages(servers, tmp_path):
    database, s3 = servers
    engine = seed_small_demo(database.url, players=4)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = dagster_env(database.url, home, PD_RETRY_BACKOFF_SECONDS="4")
    command = dagster_dev_command()
    with process_group(command, tmp_path / "dagster-dev.log", env):
        # (1) the store is down as the first runs go: they fail; once it is back, the sensor
        # launches their work again (backoff), and every card gets its URL
        wait_for(lambda: _failed_runs(home) >= 1, "a run failing on the store outage", 180)
        s3.start()
        s3.client().create_bucket(Bucket="cards")
        took = wait_for(lambda: all(image_urls(engine).values()), "every URL after the outage", 180)
        print(f"store back: every card has its URL {took:.0f}s later")

        # (2) at once: a new variant row with a NULL image_url, changed ratings on another card,
        # and a new cardset: each gets a correct URL (changed ratings: a new token)
        variant = add_variant(engine, variant=424242)
        edited = min(image_urls(engine))
        before = image_urls(engine)[edited]
        move_chances(engine, edited, amount=2.0)
        newcomer = add_cardset(engine, cardset_id=7)
        took = wait_for(
            lambda: (
                image_urls(engine)[variant]
                and image_urls(engine)[newcomer]
                and image_urls(engine)[edited] != before
            ),
            "URLs for the new variant, the new ratings and the new cardset",
            DEADLINE_S,
        )
        urls = image_urls(engine)
        assert urls[edited].split("?")[0] == before.split("?")[0]
        assert "/cards/cardset-007/" in urls[newcomer]
        for card_id in (variant, edited, newcomer):
            assert_url_opens_its_png(urls[card_id])
        print(f"new variant, changed ratings, new cardset: {took:.0f}s")

        # (5) the card database goes away just after a new variant arrives, and comes back
        late = add_variant(engine, variant=515151)
        database.stop()
        time.sleep(10)  # ticks, and any run launched just before, meet a dead database
        database.start()
        took = wait_for(lambda: image_urls(engine)[late], "the variant's URL after the outage", 180)
        print(f"database back: the new variant has its URL {took:.0f}s later")
    # The sensor ticked as often as PD_SENSOR_INTERVAL_SECONDS says (5 s), not every other look
    # of the daemon's (10 s).
    gaps = _tick_gaps(home)
    assert len(gaps) > 10 and statistics.median(gaps) < 6.5, [round(g, 1) for g in gaps]
    engine.dispose()
