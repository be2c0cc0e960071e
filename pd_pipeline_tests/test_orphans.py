"""`pd-pipeline orphans`: objects no card row uses are listed, and deleted only on purpose, only
past the grace period, and never one a row's URL names; on S3 (the moto server) and a folder."""

import hashlib
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pd_pipeline import cli
from pd_pipeline.db import schema
from pd_pipeline.storage.keys import object_key, public_url
from pd_pipeline_tests.helpers import open_store, seed_small_demo

PNG_BYTES = (Path(__file__).parent / "reference" / "battingcard.png").read_bytes()
SHA = hashlib.sha256(PNG_BYTES).hexdigest()
OWN = object_key("battingcard", 1, 1, 0)  # battingcard 1's own key (its URL names another)
NAMED = object_key("battingcard", 1, 9999, 0)  # no row's key, but a row's URL names it
OLD = object_key("battingcard", 1, 8888, 0)
YOUNG = object_key("pitchingcard", 2, 7777, 0)  # in a cardset the database does not have
S3_WAIT = 4.0  # S3 cannot backdate an object: the old one is this much older than the young


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('orphans') / 'cards.db'}"
    seed_small_demo(url, players=2)
    return url


@pytest.fixture(params=["s3", "local"])
def store_env(request, database, tmp_path, monkeypatch):
    """The store of the test (set in the environment as a user would) and the age argument
    that makes OLD past the grace period and YOUNG within it."""
    if request.param == "s3":
        request.getfixturevalue("s3_env")  # a fresh bucket, in the environment
        grace = ["--grace-hours", f"{(S3_WAIT - 1) / 3600}"]
    else:
        monkeypatch.setenv("PD_STORE", str(tmp_path / "store"))
        grace = []  # the default: 24 h
    monkeypatch.setenv("PD_DATABASE_URL", database)
    return request.param, grace


def put(store, key: str) -> None:
    store.put(key, PNG_BYTES, sha256=SHA, input_hash="i" * 64)


def orphans(capsys, *args: str) -> str:
    assert cli.main(["orphans", *args]) == 0
    return capsys.readouterr().out


def test_orphans_are_deleted_only_on_purpose_and_past_the_grace_period(store_env, database, capsys):
    kind, grace = store_env
    store = open_store()
    for key in (OWN, NAMED, OLD):
        put(store, key)
    if kind == "s3":
        time.sleep(S3_WAIT)
    else:  # a folder's objects are files: backdate the old one two days
        path = store.root / OLD
        os.utime(path, (time.time() - 48 * 3600,) * 2)
    put(store, YOUNG)
    table = schema.battingcard
    with sa.create_engine(database).begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.id == 1)
            .values(image_url=public_url(store.public_base_url, NAMED, SHA))
        )

    dry = orphans(capsys, *grace)
    listed = [line.split()[0] for line in dry.splitlines()[:-1]]
    assert listed == [OLD, YOUNG]  # the old one first, then those kept
    assert f"{YOUNG}  {len(PNG_BYTES):,} bytes" in dry and "kept: younger than" in dry
    assert kind == "s3" or "1 older than 24 h would be deleted" in dry
    assert f"would be deleted (dry run: --delete deletes them), freeing {len(PNG_BYTES):,}" in dry
    assert all(store.head(k) for k in (OWN, NAMED, OLD, YOUNG)), "a dry run deletes nothing"
    only = orphans(capsys, *grace, "cardset-002")
    assert [line.split()[0] for line in only.splitlines()[:-1]] == [YOUNG]

    done = orphans(capsys, "--delete", *grace)
    assert f"2 orphan objects in {store.describe()}; 1 older than" in done
    assert f"deleted, freeing {len(PNG_BYTES):,} bytes; 1 younger kept." in done
    assert store.head(OLD) is None
    assert all(store.head(k) for k in (OWN, NAMED, YOUNG))
    assert OLD not in orphans(capsys, *grace)
