"""The CI entry point through the real CLI: `dagster job execute -j render_pending_job`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pd_pipeline_tests.helpers import add_variant, image_urls, seed_small_demo

pytestmark = pytest.mark.slow
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _execute(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "job", "execute", "-m", "pd_pipeline", "-j", "render_pending_job"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_render_pending_job_renders_everything_and_exits_by_outcome(db_url, s3_env, tmp_path):
    engine = seed_small_demo(db_url, players=6, seasons=(2008, 2019))
    (tmp_path / "home").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PD_")},
        **{k: v for k, v in s3_env.items() if k != "bucket"},
        "PD_DATABASE_URL": db_url,
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    done = _execute(env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for card_type in ("battingcard", "pitchingcard"):
        assert all(image_urls(engine, card_type).values())

    bad = add_variant(engine, variant=13, shift=-4.0)
    good = add_variant(engine, variant=14)
    failed = _execute(env)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert f"battingcard #{bad}" in output and "1 cards failed" in output
    urls = image_urls(engine)
    assert urls[good] and urls[bad] is None
