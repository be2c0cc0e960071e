import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pd_pipeline_tests.helpers import memory_instance, seed_small_demo
from pd_pipeline_tests.services import S3Server, postgres_database

DEPLOY = Path(__file__).parents[1] / "deploy"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a heavy test first, the rest in their order: xdist hands files to workers
    in this order (`--no-loadscope-reorder`), and a heavy file handed out last would run on a
    lone worker after the others finished."""
    heavy = {item.path for item in items if item.get_closest_marker("heavy")}
    items.sort(key=lambda item: item.path not in heavy)


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Settings for a fresh bucket on the local S3 server, as a user would export them."""
    env = s3_server.settings()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**env, "bucket": env["PD_STORE"].removeprefix("s3://").rstrip("/")}


@dataclass
class Seeded:
    engine: sa.Engine
    instance: dg.DagsterInstance
    url: str


@pytest.fixture
def seeded(db_url, s3_env, monkeypatch):
    """A small demo cardset (cardset-001, registered) on each database, an S3 bucket, and a
    Dagster instance for the runs."""
    monkeypatch.setenv("PD_DATABASE_URL", db_url)
    engine = seed_small_demo(db_url)
    with memory_instance() as instance:
        instance.add_dynamic_partitions("cardsets", ["cardset-001"])
        yield Seeded(engine, instance, db_url)


@pytest.fixture
def pg_url():
    with postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'cards.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Both databases the pipeline supports, each fresh and empty."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cards.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch):
    # Tests choose their own settings; none leak in from the developer's shell.
    for key in list(os.environ):
        if key.startswith("PD_") and key not in ("PD_REQUIRE_POSTGRES", "PD_CHROMIUM_PATH"):
            monkeypatch.delenv(key)


@pytest.fixture
def production_instance(tmp_path, monkeypatch):
    """deploy/dagster.yaml as shipped, its PostgreSQL settings pointed at a fresh database."""
    with postgres_database() as url:
        parts = sa.make_url(url)
        for name, value in {
            "HOST": parts.host,
            "PORT": str(parts.port or 5432),
            "USER": parts.username,
            "PASSWORD": parts.password or "",
            "DB": parts.database,
        }.items():
            monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
        shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
        instance = dg.DagsterInstance.from_config(str(tmp_path))
        try:
            yield instance, url
        finally:
            instance.dispose()
