"""The image, run as production runs it: built here by `deploy/image/build.sh` (what `make image`
runs: docker when a daemon answers, else podman), then one container of it per role on the host's
network: the code server, the daemon, the operators' webserver and the read-only one. Dagster's
storage is deploy/dagster.yaml (baked into the image) on a fresh PostgreSQL database, the card
database another one, the store a bucket on moto's S3 server on loopback: all three outlive the
containers, as in production.

Cards seeded from the host get their URLs through pending_images_sensor and the queued run
coordinator (the daemon launches, the code server executes); the read-only webserver refuses a
launch; with the long-running containers stopped, a one-off container runs the CI entry point
`dagster job execute -m pd_pipeline -j render_pending_job` and exits 0; started again, they have
lost nothing (runs, URLs) and a card inserted then gets its URL; a run failing its checks on a
broken card is not retried by the instance (its run retries are for crashed runs)."""

import json
import os
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from pd_pipeline_tests.helpers import (
    add_variant,
    assert_every_card_correct,
    image_urls,
    seed_small_demo,
    wait_for,
)
from pd_pipeline_tests.services import BUILD, build_wheelhouse, free_port, postgres_database
from pd_pipeline_tests.test_read_only_webserver import LAUNCH_RUN, LOCATION

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
SERVERS = ("code-server", "daemon", "webserver", "webserver-read-only")
DEADLINE_S = 150
RETRY_WATCH_S = 15
RUNS = """
query {
  runsOrError(filter: {pipelineName: "card_images_job"}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""
LOCATIONS = """
query {
  workspaceOrError { ... on Workspace { locationEntries {
    name locationOrLoadError { __typename ... on PythonError { message } }
  } } }
}"""
PERMISSIONS = "query { permissions { permission value } }"


class Containers:
    """Containers of one image on the host's network, named after the test; the engine as
    build.sh chose it (podman with runc and the repository's containers.conf)."""

    def __init__(self, engine: str, image: str, env_file: Path):
        self.image, self.env_file = image, env_file
        self.prefix = f"pd-test-{uuid.uuid4().hex[:8]}"
        self.names: list[str] = []
        if engine == "podman":
            self.command = ["podman", "--runtime", "runc"]
            conf = str(BUILD.parent / "containers.conf")
            self.env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", conf)}
            # No systemd here to run health checks on a timer (podman says so at every start);
            # the test runs the image's health check itself.
            self.flags = ["--network", "host", "--no-healthcheck"]
        else:
            self.command, self.env, self.flags = ["docker"], dict(os.environ), ["--network", "host"]

    def engine(self, *args: str, timeout: float = 60, check: bool = True):
        return subprocess.run([*self.command, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=check)  # fmt: skip

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def start(self, role: str) -> None:
        """The role's container, created on first start, started again afterwards."""
        name = self.name(role)
        if name in self.names:
            self.engine("start", name)
            return
        self.names.append(name)
        self.engine("run", "-d", "--name", name, *self.flags, "--env-file", str(self.env_file),
                    self.image, role)  # fmt: skip

    def run_once(self, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A one-off container of the image, removed afterwards."""
        name = self.name(f"once-{uuid.uuid4().hex[:4]}")
        self.names.append(name)
        return self.engine("run", "--rm", "--name", name, *self.flags, "--env-file",
                           str(self.env_file), self.image, *command, timeout=timeout,
                           check=False)  # fmt: skip

    def running(self, role: str) -> bool:
        state = self.engine("inspect", "-f", "{{.State.Running}}", self.name(role), check=False)
        return state.stdout.strip() == "true"

    def healthy(self, role: str) -> bool:
        """The image's HEALTHCHECK command, run in the container."""
        if not self.running(role):
            raise AssertionError(f"the {role} container stopped")
        probe = ["exec", self.name(role), "pd-pipeline-entrypoint", "healthcheck"]
        return self.engine(*probe, check=False).returncode == 0

    def logs(self, role: str) -> str:
        found = self.engine("logs", self.name(role), check=False)
        return found.stdout + found.stderr

    def stop(self, *roles: str) -> None:
        self.engine("stop", "-t", "20", *(self.name(r) for r in roles), timeout=90)

    def print_logs(self) -> None:
        for name in self.names:
            found = self.engine("logs", "--tail", "60", name, check=False)
            print(f"===== {name}\n{found.stdout}{found.stderr}")

    def remove(self) -> None:
        """Every container the test made, killed: podman removes none of the names given when
        one is missing (a one-off container removed itself) unless told to ignore it."""
        if not self.names:
            return
        kill = ["--ignore", "-t", "0"] if self.command[0] == "podman" else []
        removed = self.engine("rm", "-f", *kill, *self.names, timeout=120, check=False)
        assert removed.returncode == 0, removed.stderr


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> tuple[str, str]:
    """The image as `make image` builds it: the wheelhouse, then build.sh. (engine, image id)"""
    tmp = tmp_path_factory.mktemp("image")
    started = time.monotonic()
    engine = subprocess.run([str(BUILD), "engine"], capture_output=True, text=True)
    if engine.returncode != 0:
        pytest.skip(f"no container engine here: {engine.stderr.strip()}")
    print(f"{engine.stdout.strip()} ready in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    build_wheelhouse(tmp / "wheelhouse.log")
    log = tmp / "build.log"
    with open(log, "w") as out:
        built = subprocess.run([str(BUILD), "--iidfile", str(tmp / "iid")], stdout=out, stderr=out)
    if built.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        pytest.fail(f"build.sh failed:\n{tail}")
    print(f"image built in {time.monotonic() - started:.0f} s")
    return engine.stdout.strip(), (tmp / "iid").read_text().strip()


def _graphql(port: int, query: str, **variables) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def _pg_settings(url: str) -> dict[str, str]:
    """deploy/dagster.yaml's settings for a database on the local server."""
    parts = sa.make_url(url)
    return {"DAGSTER_PG_HOST": parts.host, "DAGSTER_PG_PORT": str(parts.port or 5432),
            "DAGSTER_PG_USER": parts.username, "DAGSTER_PG_PASSWORD": parts.password or "",
            "DAGSTER_PG_DB": parts.database}  # fmt: skip


def _serving(containers: Containers, role: str, port: int) -> bool:
    if not containers.running(role):
        raise AssertionError(f"the {role} container stopped")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except OSError:
        return False


def _start_servers(containers: Containers, ports: dict[str, int]) -> float:
    """The code server first (the others load the code location from it), then the rest; done
    when the code server passes its health check, the webservers serve and have loaded
    pd_pipeline (the daemon shows itself by launching runs). Seconds taken."""
    started = time.monotonic()
    containers.start("code-server")
    wait_for(lambda: containers.healthy("code-server"), "the code server", 120, every=0.5)
    for role in SERVERS[1:]:
        containers.start(role)
    for role in ("webserver", "webserver-read-only"):
        wait_for(lambda role=role: _serving(containers, role, ports[role]), role, 120, every=0.3)
        (entry,) = _graphql(ports[role], LOCATIONS)["workspaceOrError"]["locationEntries"]
        assert entry["name"] == "pd_pipeline"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    return time.monotonic() - started


def _all_runs(port: int) -> dict[str, str]:
    """Every card_images_job run, whoever launched it: run id -> status."""
    return {run["runId"]: run["status"] for run in _graphql(port, RUNS)["runsOrError"]["results"]}


def _sensor_runs(port: int) -> dict[str, str]:
    """card_images_job runs the sensor launched: run id -> status."""
    runs = _graphql(port, RUNS)["runsOrError"]["results"]
    return {
        run["runId"]: run["status"]
        for run in runs
        if {"key": "dagster/sensor_name", "value": "pending_images_sensor"} in run["tags"]
    }


def test_the_image_runs_every_role_and_keeps_everything_across_restarts(image, s3_env, tmp_path):
    engine_name, image_id = image
    with postgres_database() as dagster_db, postgres_database() as cards_db:
        engine = seed_small_demo(cards_db, players=3)
        ports = {"code-server": free_port(), "webserver": free_port(),
                 "webserver-read-only": free_port()}  # fmt: skip
        settings = {
            **_pg_settings(dagster_db),
            **{k: v for k, v in s3_env.items() if k != "bucket"},
            "PD_DATABASE_URL": cards_db,
            "PD_SENSOR_INTERVAL_SECONDS": "1",
            "PD_LISTEN_HOST": "127.0.0.1",
            "PD_CODE_SERVER_HOST": "127.0.0.1",
            "PD_CODE_SERVER_PORT": str(ports["code-server"]),
            "PD_WEBSERVER_PORT": str(ports["webserver"]),
            "PD_READ_ONLY_WEBSERVER_PORT": str(ports["webserver-read-only"]),
        }
        env_file = tmp_path / "env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        containers = Containers(engine_name, image_id, env_file)
        try:
            took = _start_servers(containers, ports)
            print(f"4 containers serving in {took:.0f} s")

            # The sensor finds the seeded cards; the daemon launches the queued runs, the code
            # server executes them.
            took = wait_for(lambda: all(image_urls(engine).values())
                            and all(image_urls(engine, "pitchingcard").values()),
                            "every seeded card's URL", DEADLINE_S)  # fmt: skip
            print(f"seeded cards: every URL {took:.0f} s after the servers were up")
            wait_for(lambda: "SUCCESS" in _sensor_runs(ports["webserver"]).values(),
                     "the sensor's run succeeding", 60, every=0.5)  # fmt: skip
            runs = _sensor_runs(ports["webserver"])
            assert any(run_id in containers.logs("code-server") for run_id in runs)
            assert "Launched 1 runs" in containers.logs("daemon")
            for role in SERVERS:  # the image's HEALTHCHECK, as an engine would run it
                assert containers.healthy(role), role

            # The read-only webserver refuses a launch; the operators' one may launch.
            job = {**LOCATION, "jobName": "card_images_job", "pipelineName": "card_images_job"}
            refused = _graphql(ports["webserver-read-only"], LAUNCH_RUN, selector=job)
            assert refused["launchRun"] == {"__typename": "UnauthorizedError",
                                            "message": "Authorization failed"}  # fmt: skip
            allowed = _graphql(ports["webserver"], PERMISSIONS)["permissions"]
            assert {"permission": "launch_pipeline_execution", "value": True} in allowed

            # Everything stopped; a card arrives; the CI entry point renders it in a one-off
            # container of the same image.
            started = time.monotonic()
            containers.stop(*SERVERS)
            print(f"4 containers stopped in {time.monotonic() - started:.0f} s")
            urls = {t: image_urls(engine, t) for t in ("battingcard", "pitchingcard")}
            offline = add_variant(engine, variant=424242)
            started = time.monotonic()
            once = containers.run_once(
                "dagster", "job", "execute", "-m", "pd_pipeline", "-j", "render_pending_job"
            )
            print(f"render_pending_job in a one-off container: {time.monotonic() - started:.0f} s")
            assert once.returncode == 0, (once.stdout + once.stderr)[-4000:]
            assert image_urls(engine)[offline]

            # Started again: the runs and URLs are there, and a new card gets its URL.
            took = _start_servers(containers, ports)
            print(f"started again, serving in {took:.0f} s")
            assert set(runs) <= set(_sensor_runs(ports["webserver"]))
            for card_type, before in urls.items():
                now = image_urls(engine, card_type)
                assert {k: now[k] for k in before} == before
            late = add_variant(engine, "pitchingcard", variant=515151)
            took = wait_for(lambda: image_urls(engine, "pitchingcard")[late],
                            "the URL of a card inserted after the restart", DEADLINE_S)  # fmt: skip
            print(f"card inserted after the restart: its URL {took:.0f} s later")
            assert assert_every_card_correct(engine) == len(image_urls(engine)) + len(
                image_urls(engine, "pitchingcard")
            )

            # A card that cannot be drawn: its run fails its ERROR check, and the instance's run
            # retries (for crashed runs only) leave it alone; it is the card's data to fix.
            before = set(_all_runs(ports["webserver"]))

            def new_runs() -> dict[str, str]:
                return {r: s for r, s in _all_runs(ports["webserver"]).items() if r not in before}

            add_variant(engine, variant=626262, shift=3.0)  # ratings summing to 111, not 108
            wait_for(lambda: "FAILURE" in new_runs().values(), "the run failing on the broken card",
                     DEADLINE_S)  # fmt: skip
            time.sleep(RETRY_WATCH_S)  # the daemon re-executes a failed run within seconds
            assert list(new_runs().values()) == ["FAILURE"], f"a retry of it: {new_runs()}"
        except BaseException:
            containers.print_logs()
            raise
        finally:
            containers.remove()
            engine.dispose()
