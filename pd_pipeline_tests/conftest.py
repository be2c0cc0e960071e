import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pd_pipeline_tests.services import S3Server, postgres_database

DEPLOY = Path(__file__).parents[1] / "deploy"


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Settings for a fresh bucket on the local S3 server, as a user would export them."""
    bucket = s3_server.new_bucket()
    env = {
        "PD_STORE": f"s3://{bucket}/",
        "PD_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**env, "bucket": bucket}


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
