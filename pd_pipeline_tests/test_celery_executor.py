"""card_images_job on Celery, run for real as deploy/celery/executor.yaml describes it: a Redis
broker, two `dagster-celery` workers, the run from `dagster job execute`. Steps run on both
workers, and a worker killed in the middle of a render step loses nothing."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pd_pipeline_tests.debian_services import redis_server
from pd_pipeline_tests.helpers import assert_every_card_correct, seed_small_demo
from pd_pipeline_tests.services import dagster_env, process_group

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
BIN = Path(sys.executable).parent
CELERY_CONFIG = Path(__file__).parents[1] / "deploy" / "celery" / "executor.yaml"
CARDSETS = ["cardset-001", "cardset-002"]


def step_starts(log: Path) -> list[str]:
    """The steps a worker started, from its own log."""
    return re.findall(r'STEP_START - Started execution of step "(\w+)"', log.read_text())


def wait_for(condition, what: str, timeout: float, run: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if run is not None and run.poll() is not None:
            raise AssertionError(f"the run ended ({run.returncode}) before {what}")
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout:.0f} s")


def celery_config(tmp_path: Path) -> Path:
    """deploy/celery/executor.yaml as shipped, but with Redis handing a lost worker's task on
    after 20 s instead of 2 h (every step here takes a few seconds)."""
    config = yaml.safe_load(CELERY_CONFIG.read_text())
    options = config["execution"]["config"]["config_source"]["broker_transport_options"]
    options.update(visibility_timeout=20, unacked_restore_interval=2)
    path = tmp_path / "celery.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_card_images_job_on_two_workers_survives_a_killed_worker(sqlite_url, tmp_path, monkeypatch):
    engine = seed_small_demo(sqlite_url, players=3, seasons=(2008, 2019))
    home = tmp_path / "home"
    home.mkdir()
    config = celery_config(tmp_path)
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(tmp_path))
        env = dagster_env(
            sqlite_url, home,
            PD_STORE=str(tmp_path / "store"),
            PD_CELERY_BROKER_URL=f"{redis}/0",
            PD_CELERY_BACKEND_URL=f"{redis}/1",
            PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",  # the worker starts `celery`
        )  # fmt: skip
        for key in ("PD_DATABASE_URL", "PD_STORE"):
            monkeypatch.setenv(key, env[key])
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions("cardsets", CARDSETS)

        workers = {}
        for name in ("w1", "w2"):  # the instance exists: both may start at once
            log = tmp_path / f"{name}.log"
            args = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                    "-y", str(config), "-n", name, "-l", "INFO", "--", "-c", "1"]  # fmt: skip
            workers[name] = (stack.enter_context(process_group(args, log, env=env)), log)
        for name, (_, log) in workers.items():
            wait_for(lambda log=log: " ready." in log.read_text(), f"{name} ready", 60)

        tags = {
            "dagster/asset_partition_range_start": CARDSETS[0],
            "dagster/asset_partition_range_end": CARDSETS[-1],
        }
        run_log = tmp_path / "run.log"
        run = subprocess.Popen(
            [str(BIN / "dagster"), "job", "execute", "-m", "pd_pipeline.defs.celery",
             "-j", "card_images_job", "-c", str(config), "--tags", json.dumps(tags)],
            env=env, stdout=stack.enter_context(open(run_log, "w")), stderr=subprocess.STDOUT,
        )  # fmt: skip
        stack.callback(lambda: run.poll() is None and run.kill())

        # w1 dies, all its processes at once, as soon as it has started a render step.
        w1, w1_log = workers["w1"]
        started = wait_for(
            lambda: [s for s in step_starts(w1_log) if s.endswith("_pngs")],
            "render step on w1", 120, run,
        )  # fmt: skip
        os.killpg(w1.pid, signal.SIGKILL)
        started_at = time.monotonic()
        assert run.wait(timeout=180) == 0, run_log.read_text()[-4000:]
        print(f"run ended {time.monotonic() - started_at:.1f} s after w1 was killed")

    on_w2 = step_starts(workers["w2"][1])
    assert started[0] in on_w2, f"{started[0]} was not run again on w2: {on_w2}"
    assert {s for s in on_w2 if s.endswith("_pngs")} - set(started), on_w2  # both worked
    assert "RUN_SUCCESS" in run_log.read_text()
    assert assert_every_card_correct(engine, cardset_ids=(1, 2)) > 0
