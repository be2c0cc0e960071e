"""The UI for everyone who is not an operator: `dagster-webserver --read-only` shows the assets,
their checks and the latest materialization's metadata, and refuses every mutation (launches,
backfills, terminations, deletions). And deploy/nginx/pd-pipeline.conf, which puts it and the
operators' loopback webserver behind nginx, run by a real nginx: operators need a password, the
read-only UI needs none and changes nothing, the UI's websocket gets through."""

import base64
import http.client
import json
import os
import pwd
import ssl
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pd_pipeline_tests.debian_services import debian_binary, wait_for_port
from pd_pipeline_tests.helpers import run_partition, seed_small_demo
from pd_pipeline_tests.services import dagster_env, free_port, process_group
from pd_pipeline_tests.test_ui import DagsterDev, _wait_until_serving

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
NGINX_CONF = Path(__file__).parents[1] / "deploy" / "nginx" / "pd-pipeline.conf"
OPERATORS, EVERYONE = "ops.cards.example.com", "dagster.cards.example.com"
USER, PASSWORD = "alice", "card-operator"
LOCATION = {"repositoryLocationName": "pd_pipeline", "repositoryName": "__repository__"}

LAUNCH_RUN = """
mutation ($selector: JobOrPipelineSelector!) {
  launchRun(executionParams: {selector: $selector, runConfigData: "{}",
    executionMetadata: {tags: [{key: "dagster/partition", value: "cardset-001"}]}}) {
    __typename ... on UnauthorizedError { message }
  }
}"""
LAUNCH_BACKFILL = """
mutation {
  launchPartitionBackfill(backfillParams: {partitionNames: ["cardset-001"],
    assetSelection: [{path: ["battingcard_pngs"]}, {path: ["battingcard_image_urls"]}]}) {
    __typename ... on UnauthorizedError { message }
  }
}"""
TERMINATE = """
mutation ($runId: String!) {
  terminateRun(runId: $runId) {
    __typename ... on TerminateRunFailure { message } ... on UnauthorizedError { message }
  }
}"""
DELETE = """
mutation ($runId: String!) {
  deleteRun(runId: $runId) { __typename ... on UnauthorizedError { message } }
}"""
READ = """
query ($runId: ID!) {
  permissions { permission value }
  runOrError(runId: $runId) { ... on Run { status } }
  assetNodes(group: {groupName: "card_images", repositoryName: "__repository__",
                     repositoryLocationName: "pd_pipeline"}) {
    assetKey { path }
    hasMaterializePermission
    assetChecksOrError { ... on AssetChecks { checks { name } } }
    assetMaterializations(limit: 1) { runId partition metadataEntries { label } }
  }
}"""


@pytest.fixture(scope="module")
def read_only_ui(tmp_path_factory):
    """`dagster-webserver --read-only` on loopback, on a DAGSTER_HOME with one completed run."""
    tmp = tmp_path_factory.mktemp("read_only")
    database_url = f"sqlite:///{tmp / 'cards.db'}"
    seed_small_demo(database_url, players=3).dispose()
    home = tmp / "home"
    home.mkdir()
    env = dagster_env(database_url, home, PD_STORE=str(tmp / "store"))
    with (
        pytest.MonkeyPatch.context() as patch,
        dg.DagsterInstance.from_config(str(home)) as dagster,
    ):
        for key in ("PD_DATABASE_URL", "PD_STORE"):
            patch.setenv(key, env[key])
        run = run_partition(dagster)
        assert run.success
    port = free_port()
    command = [WEBSERVER, "--read-only", "-m", "pd_pipeline", "-h", "127.0.0.1", "-p", str(port)]
    with process_group(command, tmp / "webserver.log", env, cwd=tmp) as process:
        server = DagsterDev(f"http://127.0.0.1:{port}", tmp / "webserver.log")
        _wait_until_serving(server, process)
        yield server, run.run_id


def test_the_read_only_ui_shows_everything_and_changes_nothing(read_only_ui):
    server, run_id = read_only_ui
    job = {**LOCATION, "jobName": "card_images_job", "pipelineName": "card_images_job"}
    refused = [
        server.graphql(LAUNCH_RUN, selector=job)["launchRun"],
        server.graphql(LAUNCH_BACKFILL)["launchPartitionBackfill"],
        server.graphql(DELETE, runId=run_id)["deleteRun"],
    ]
    for answer in refused:
        assert answer == {"__typename": "UnauthorizedError", "message": "Authorization failed"}
    terminated = server.graphql(TERMINATE, runId=run_id)["terminateRun"]
    assert terminated["__typename"] in ("UnauthorizedError", "TerminateRunFailure"), terminated

    seen = server.graphql(READ, runId=run_id)
    assert seen["runOrError"] == {"status": "SUCCESS"}  # neither deleted nor terminated
    assert not any(p["value"] for p in seen["permissions"]), seen["permissions"]
    nodes = {tuple(n["assetKey"]["path"]): n for n in seen["assetNodes"]}
    assert len(nodes) == 8  # per card type: PNGs, APNGs and the URLs of each
    for (key,), node in nodes.items():
        assert not node["hasMaterializePermission"]
        (latest,) = node["assetMaterializations"]
        assert (latest["runId"], latest["partition"]) == (run_id, "cardset-001")
        if key.endswith("_urls"):
            checks = {c["name"] for c in node["assetChecksOrError"]["checks"]}
            assert {"urls_present", "urls_canonical", "objects_valid"} <= checks
    labels = {e["label"] for e in nodes[("battingcard_pngs",)]["assetMaterializations"][0][
        "metadataEntries"]}  # fmt: skip
    assert {"summary", "preview"} <= labels, labels


def _nginx_conf(tmp_path: Path, upstream: int, http: int, https: int) -> Path:
    """deploy/nginx/pd-pipeline.conf with the operator's files (TLS certificate, passwords) and
    ports swapped for the test's: both upstreams are the read-only webserver here."""
    certificate, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    hashed = subprocess.run(
        ["openssl", "passwd", "-apr1", PASSWORD], check=True, capture_output=True, text=True
    ).stdout.strip()
    (tmp_path / "htpasswd").write_text(f"{USER}:{hashed}\n")
    (tmp_path / "logs").mkdir()
    conf = NGINX_CONF.read_text()
    for shipped, stand_in in {
        "/etc/nginx/pd-pipeline/": f"{tmp_path}/",
        "/run/nginx-pd-pipeline.pid": f"{tmp_path}/nginx.pid",
        "/var/log/nginx/": f"{tmp_path}/logs/",
        "127.0.0.1:3000": f"127.0.0.1:{upstream}",
        "127.0.0.1:3001": f"127.0.0.1:{upstream}",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        # Its workers read the password file from the test's folder, which only its owner can.
        "user www-data;": f"user {pwd.getpwuid(os.geteuid()).pw_name};",
    }.items():
        assert shipped in conf, shipped
        conf = conf.replace(shipped, stand_in)
    conf = "\n".join(line for line in conf.splitlines() if "listen [::]" not in line)
    (tmp_path / "nginx.conf").write_text(conf)
    return tmp_path / "nginx.conf"


def _through_nginx(port: int, host: str, path: str, body: str | None = None, auth=None,
                   headers: dict | None = None) -> tuple[int, str]:  # fmt: skip
    """One HTTPS request to nginx on loopback for `host`: (status, body)."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=30, context=ssl._create_unverified_context()
    )
    headers = {"Host": host, "Content-Type": "application/json", **(headers or {})}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    connection.request("POST" if body else "GET", path, body=body, headers=headers)
    response = connection.getresponse()
    answer = (response.status, response.read().decode(errors="replace"))
    connection.close()
    return answer


def test_nginx_asks_operators_for_a_password_and_carries_the_websocket(read_only_ui, tmp_path):
    server, _ = read_only_ui
    nginx = debian_binary("nginx", "nginx")
    http_port, https_port = free_port(), free_port()
    conf = _nginx_conf(tmp_path, int(server.url.rsplit(":", 1)[1]), http_port, https_port)
    env = {**os.environ, "PATH": f"/usr/sbin:{os.environ['PATH']}"}
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True, env=env
    )
    assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr

    job = {**LOCATION, "jobName": "card_images_job", "pipelineName": "card_images_job"}
    launch = json.dumps({"query": LAUNCH_RUN, "variables": {"selector": job}})
    command = [nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"]
    with process_group(command, tmp_path / "nginx.log", env):
        wait_for_port(https_port, "nginx")
        status, _ = _through_nginx(https_port, OPERATORS, "/graphql", launch)
        assert status == 401  # no password, no UI
        status, body = _through_nginx(https_port, OPERATORS, "/graphql", launch, (USER, PASSWORD))
        assert status == 200 and '"launchRun"' in body, body  # the webserver answered
        status, body = _through_nginx(https_port, EVERYONE, "/graphql", launch)
        assert status == 200 and "Authorization failed" in body, body
        status, _ = _through_nginx(https_port, EVERYONE, "/server_info")
        assert status == 200
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                   "Sec-WebSocket-Protocol": "graphql-ws"}  # fmt: skip
        status, _ = _through_nginx(https_port, EVERYONE, "/graphql", headers=upgrade)
        assert status == 101  # the UI's live subscriptions get through
