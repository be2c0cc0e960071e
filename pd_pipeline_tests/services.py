"""Real services for the tests: a moto S3 server process on loopback, and PostgreSQL databases."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
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
