"""`dagster dev` SIGKILLed mid-backlog (daemon, code server, run worker and Chromium at once)
and started again: the backlog is still worked off, with nobody acting.

The killed run stays STARTED in the instance, as nothing was left to say otherwise; the sensor
takes it for lost once it has been silent for PD_RUN_SILENT_SECONDS, marks it failed, and
launches its work again."""

import subprocess
from pathlib import Path

import dagster as dg
import pytest

from pd_pipeline_tests.helpers import (
    assert_every_card_correct,
    every_url_written,
    image_urls,
    seed_small_demo,
    wait_for,
)
from pd_pipeline_tests.services import dagster_dev_command, dagster_env, process_group

# The lost-run rule itself is test_sensor's; this is it end to end, with dagster dev killed whole.
pytestmark = [pytest.mark.slow, pytest.mark.thorough]
SILENT_S = 15


def _runs(home: Path, *statuses: dg.DagsterRunStatus) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs(dg.RunsFilter(statuses=list(statuses))))


def _kill_session(leader: subprocess.Popen) -> None:
    """SIGKILL every process of the leader's session, whatever process group it moved to."""
    subprocess.run(["pkill", "-KILL", "-s", str(leader.pid)])
    leader.wait()

    def gone() -> bool:
        return not subprocess.run(["pgrep", "-s", str(leader.pid)], capture_output=True).stdout

    wait_for(gone, "the killed session's processes gone", 10, every=0.1)


def test_a_backlog_outlives_dagster_dev_killed_mid_run(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PD_STORE", str(tmp_path / "store"))
    engine = seed_small_demo(sqlite_url, players=10, seasons=(2008, 2019))
    home = tmp_path / "home"
    home.mkdir()
    env = dagster_env(sqlite_url, home, PD_SENSOR_INTERVAL_SECONDS="2",
                      PD_RETRY_BACKOFF_SECONDS="2", PD_RUN_SILENT_SECONDS=str(SILENT_S),
                      PD_SENSOR_MAX_RUNS_IN_FLIGHT="1")  # fmt: skip
    dev = dagster_dev_command()

    with process_group(dev, tmp_path / "dev-1.log", env) as first:
        wait_for(lambda: _runs(home, dg.DagsterRunStatus.STARTED), "a run started", 120, every=0.1)
        _kill_session(first)
    (killed,) = _runs(home, dg.DagsterRunStatus.STARTED)  # and stays so: nothing left to say
    lost = killed.run_id
    assert not all(image_urls(engine).values()), "the backlog was done before the kill"

    with process_group(dev, tmp_path / "dev-2.log", env):
        # Every still's URL, and the runs making the animations after them done too.
        in_flight = (
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
        )
        took = wait_for(
            lambda: every_url_written(engine) and not _runs(home, *in_flight),
            "every card's URL after the restart, its runs done",
            180,
        )
        print(f"every card had its URL {took:.0f} s after the restart")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(lost)
        assert run.status == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(
            lost, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records[0]
        assert "taken for lost" in failure.event_log_entry.message
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert_every_card_correct(engine, cardset_ids=(1, 2), opened=5)
    engine.dispose()
