"""Real services for the tests: a moto S3 server process on loopback, and PostgreSQL databases."""

import contextlib
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import boto3
import dagster as dg
import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "PD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """`moto_server` in its own process: the real S3 protocol over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "S3Server":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def new_bucket(self) -> str:
        name = f"cards-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self) -> dict[str, str]:
        """Settings for a fresh bucket on this server."""
        return s3_settings(self.endpoint_url, self.new_bucket())


def s3_settings(endpoint_url: str, bucket: str) -> dict[str, str]:
    """The settings a user exports for a bucket on an S3 server: store, endpoint, credentials."""
    return {
        "PD_STORE": f"s3://{bucket}/",
        "PD_S3_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def dagster_dev_command(port: int | None = None) -> list[str]:
    """`dagster dev` on the code location, on loopback (a free port unless given)."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    port = free_port() if port is None else port
    return [dagster, "dev", "-m", "pd_pipeline", "-p", str(port), "-h", "127.0.0.1"]


def dagster_env(database_url: str, home: Path, **settings: str) -> dict[str, str]:
    """The environment of a `dagster` command a test starts: the test's own (S3 settings from
    the `s3_env` fixture, no stray PD_ settings), its card database and DAGSTER_HOME. A home
    whose instance keeps its storage in SQLite (no storage configured) gets it made now: a test
    reading the instance while the command makes it would stamp the fresh schema too (two
    alembic heads, unreadable)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or "storage:" not in config.read_text():
        with dg.DagsterInstance.from_config(str(home)):
            pass
    return {**os.environ, "PD_DATABASE_URL": database_url, "DAGSTER_HOME": str(home), **settings}


@contextmanager
def process_group(
    args: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen]:
    """A long-running command (`dagster dev`, the daemon) in a session of its own, its output in
    `log_path`; stopped at the end with everything it started (code servers, runs)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:  # not killed by the test itself
                os.killpg(process.pid, signal.SIGINT)
                try:  # idle, it stops in ~2 s; a run caught mid-step can hold it up much longer
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            print(f"log: {log_path}")


def postgres_available() -> bool:
    try:
        with sa.create_engine(PG_ADMIN_URL).connect():
            return True
    except sa.exc.OperationalError:
        return False


def require_postgres() -> None:
    """Skip without PostgreSQL, unless PD_REQUIRE_POSTGRES=1 (CI), where that is a failure."""
    if postgres_available():
        return
    message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}"
    if os.environ.get("PD_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " (PD_REQUIRE_POSTGRES=1)")
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the local server for one test; dropped afterwards."""
    require_postgres()
    name = f"pd_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class FlakyS3:
    """An HTTP front to a real S3 server that fails some requests the way S3 does under load:
    `503 SlowDown`, `500 InternalError`, or a connection dropped before any response. `fault`
    sees each request (method, path, how many times this method and path came before) and
    returns one of those names, or None to pass the request through."""

    ERRORS = {"SlowDown": (503, "Please reduce your request rate."), "InternalError": (500, "")}

    def __init__(self, upstream: str, fault: Callable[[str, str, int], str | None]):
        self.upstream = urlparse(upstream)
        self.fault = fault
        self.seen: Counter[tuple[str, str]] = Counter()
        self.injected: list[tuple[str, str, str]] = []  # (fault, method, path)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with front.lock:
                    before = front.seen[self.command, self.path]
                    front.seen[self.command, self.path] += 1
                    fault = front.fault(self.command, self.path, before)
                    if fault:
                        front.injected.append((fault, self.command, self.path))
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault:
                    status, message = front.ERRORS[fault]
                    xml = f"<Error><Code>{fault}</Code><Message>{message}</Message></Error>"
                    self._reply(status, [("Content-Type", "application/xml")], xml.encode())
                    return
                conn = http.client.HTTPConnection(front.upstream.hostname, front.upstream.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self._reply(response.status, response.getheaders(), data)
                conn.close()

            def _reply(self, status: int, headers: list, data: bytes) -> None:
                self.send_response(status)
                length = str(len(data))
                for key, value in headers:
                    if key.lower() == "content-length" and self.command == "HEAD":
                        length = value  # the object's size; a HEAD has no body
                    elif key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _any

        return Handler


class OwnPostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary folder, a free port), which
    the test may stop and start again: an outage of the card database."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            pytest.skip("PostgreSQL server binaries are not installed")
        self.bin = bins[-1]
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="pd-pg-")) / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        # The server refuses to run as root; as root, run it as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(args), check=True, capture_output=True, timeout=60)

    def init(self) -> "OwnPostgres":
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", "postgres")  # fmt: skip
        return self.start()

    def start(self) -> "OwnPostgres":
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.data / "server.log"), "-w", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                          "stop")  # fmt: skip

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.data.parent, ignore_errors=True)


class Webhook:
    """A chat webhook on loopback (Slack's and Discord's incoming webhooks take a JSON POST):
    records every body it receives."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.posts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


ROOT = Path(__file__).parents[1]
BUILD = ROOT / "deploy" / "image" / "build.sh"


def build_wheelhouse(log: Path) -> Path:
    """dist/wheelhouse as `make wheelhouse` builds it: pd_pipeline's wheel and its dependencies'.
    Built once a test run, by the first test process to ask (the others wait for it): a rebuild
    deletes the pd_pipeline wheel for a while, under a test that is installing it."""
    (ROOT / "dist").mkdir(exist_ok=True)
    wheelhouse, stamp = ROOT / "dist" / "wheelhouse", ROOT / "dist" / ".wheelhouse.run"
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    with open(ROOT / "dist" / ".wheelhouse.lock", "w") as lock, open(log, "w") as out:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == run:
            return wheelhouse
        env = {**os.environ, "PYTHON": sys.executable}
        built = subprocess.run([str(BUILD), "wheelhouse"], env=env, stdout=out, stderr=out)
        if built.returncode == 0:
            stamp.write_text(run)
    if built.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        pytest.fail(f"build.sh wheelhouse failed:\n{tail}")
    return wheelhouse
