"""The CI entry point through the real CLI: `dagster job execute -j render_pending_job`."""

import subprocess
import sys
from pathlib import Path

import pytest

from pd_pipeline_tests.helpers import add_variant, image_urls, seed_small_demo
from pd_pipeline_tests.hostile import add_card, add_player
from pd_pipeline_tests.services import dagster_env

pytestmark = pytest.mark.slow
DAGSTER = str(Path(sys.executable).with_name("dagster"))
PD_PIPELINE = str(Path(sys.executable).with_name("pd-pipeline"))


def _execute(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "job", "execute", "-m", "pd_pipeline", "-j", "render_pending_job"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


# PostgreSQL, as production: the same command on SQLite runs in test_dg_cli.py and `make demo`.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_render_pending_job_renders_everything_and_exits_by_outcome(db_url, s3_env, tmp_path):
    engine = seed_small_demo(db_url, players=6, seasons=(2008, 2019))
    (tmp_path / "home").mkdir()
    env = dagster_env(db_url, tmp_path / "home")
    done = _execute(env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for card_type in ("battingcard", "pitchingcard"):
        assert all(image_urls(engine, card_type).values())

    bad = add_variant(engine, variant=13, shift=-4.0)
    good = add_variant(engine, variant=14)
    homeless = add_card(
        engine, "pitchingcard", add_player(engine, p_name="Nobody", cardset_id=None)
    )
    failed = _execute(env)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    # The image checks fail, naming the card and its error; so does the card without a cardset.
    assert "ERROR checks failed: all_cards_rendered" in output
    assert f"battingcard #{bad} (player" in output and "ratings.L.homerun is -" in output
    assert "1 cards belong to no cardset" in output
    assert f"pitchingcard #{homeless} (player" in output and "player.cardset_id" in output
    urls = image_urls(engine)
    assert urls[good] and urls[bad] is None

    # `pd-pipeline status` counts the card no run renders, and names it.
    status = subprocess.run(
        [PD_PIPELINE, "status", "--max-backlog", "1"], env=env, capture_output=True, text=True
    )
    assert status.returncode == 1, status.stdout + status.stderr
    assert "1 cards belong to no cardset" in status.stdout
    assert f"pitchingcard #{homeless} (player" in status.stdout
    # The bad card (variant 13, a T4) lacks its still and its animation.
    assert "3 card images lack a valid URL (allowed: 1)" in status.stderr
