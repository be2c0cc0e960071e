"""With nobody launching anything, the real daemon keeps every card's image current.

`dagster dev` (webserver + daemon) runs on a temporary DAGSTER_HOME against a seeded database and a
local S3 server; the test only edits the card database, as other tools do, and waits.
"""

import sys
import time
from pathlib import Path

import pytest

from pd_pipeline_tests.helpers import (
    add_cardset,
    add_variant,
    assert_url_opens_its_png,
    image_urls,
    move_chances,
    seed_small_demo,
)
from pd_pipeline_tests.services import dagster_env, free_port, process_group

pytestmark = pytest.mark.slow
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DEADLINE_S = 120


def wait_for(condition, what: str, timeout: float = DEADLINE_S):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        value = condition()
        if value:
            return time.monotonic() - started
        time.sleep(2)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


@pytest.fixture
def dagster_dev(sqlite_url, s3_env, tmp_path):
    engine = seed_small_demo(sqlite_url, players=4)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = dagster_env(sqlite_url, home, PD_SENSOR_INTERVAL_SECONDS="5")
    command = [DAGSTER, "dev", "-m", "pd_pipeline", "-p", str(free_port()), "-h", "127.0.0.1"]
    with process_group(command, tmp_path / "dagster-dev.log", env):
        yield engine


def test_the_daemon_keeps_every_card_image_current(dagster_dev):
    engine = dagster_dev
    initial = wait_for(lambda: all(image_urls(engine).values()), "the seeded backlog rendered")
    print(f"seeded backlog rendered in {initial:.0f}s")

    # (1) a new variant row with a NULL image_url gets a correct URL
    variant = add_variant(engine, variant=424242)
    took = wait_for(lambda: image_urls(engine)[variant], "the new variant's URL")
    assert_url_opens_its_png(image_urls(engine)[variant])
    print(f"new variant: {took:.0f}s")

    # (2) changed ratings get a new image and a new URL token
    edited = min(image_urls(engine))
    before = image_urls(engine)[edited]
    move_chances(engine, edited, amount=2.0)
    took = wait_for(lambda: image_urls(engine)[edited] != before, "a new URL for edited ratings")
    after = image_urls(engine)[edited]
    assert after.split("?")[0] == before.split("?")[0] and after != before
    assert_url_opens_its_png(after)
    print(f"changed ratings: {took:.0f}s")

    # (3) a new cardset becomes a partition and is rendered
    newcomer = add_cardset(engine, cardset_id=7)
    took = wait_for(lambda: image_urls(engine)[newcomer], "the new cardset's card URL")
    assert "/cards/cardset-007/" in image_urls(engine)[newcomer]
    assert_url_opens_its_png(image_urls(engine)[newcomer])
    print(f"new cardset: {took:.0f}s")
