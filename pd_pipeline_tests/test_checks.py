"""Each image check fails on a database prepared to break it, naming the cards, and passes after
a run repairs it."""

import datetime as dt
import hashlib

import dagster as dg
import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.defs import build_defs
from pd_pipeline.defs.cards.steps import RECONCILE_TAG
from pd_pipeline.images.audit import SAMPLE
from pd_pipeline.images.drain import drain
from pd_pipeline.storage.keys import token
from pd_pipeline_tests.bulk import settled_cardset
from pd_pipeline_tests.helpers import (
    add_variant,
    card_policy,
    image_urls,
    move_chances,
    open_store,
    run_partition,
    sensor_tick,
)
from pd_pipeline_tests.services import FlakyS3, s3_settings

pytestmark = pytest.mark.slow
CHECKS = ("urls_present", "urls_canonical", "objects_valid", "images_current", "backlog")


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        c.check_name: c
        for c in result.get_asset_check_evaluations()
        if c.asset_key == dg.AssetKey("battingcard_image_urls")
    }


def _break_every_check(engine) -> dict[str, int]:
    """One card per check, broken the way that check exists to catch."""
    ids = sorted(image_urls(engine))
    assert len(ids) >= len(CHECKS)
    broken = dict(zip(CHECKS, ids, strict=False))
    card, entry = schema.battingcard, schema.card_render
    mine = sa.and_(entry.c.card_type == "battingcard", entry.c.card_id == broken["urls_present"])
    with engine.begin() as conn:
        # A run took the NULL row, stored its image, and never wrote its URL.
        conn.execute(
            sa.update(card).where(card.c.id == broken["urls_present"]).values(image_url=None)
        )
        conn.execute(sa.update(entry).where(mine).values(seen_url=None))
        # Its own key, with a token that is not its bytes'.
        url = conn.scalar(sa.select(card.c.image_url).where(card.c.id == broken["urls_canonical"]))
        conn.execute(
            sa.update(card)
            .where(card.c.id == broken["urls_canonical"])
            .values(image_url=url.split("?")[0] + "?d=0000000000")
        )
        conn.execute(sa.update(card).where(card.c.id == broken["backlog"]).values(image_url=None))
        two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        conn.execute(
            sa.update(entry)
            .where(entry.c.card_type == "battingcard", entry.c.card_id == broken["backlog"])
            .values(first_pending_at=two_hours_ago)
        )
        key = conn.scalar(
            sa.select(entry.c.object_key).where(
                entry.c.card_type == "battingcard", entry.c.card_id == broken["objects_valid"]
            )
        )
    store = open_store()
    store.put(key, b"not a png", sha256="0" * 64, input_hash="0" * 64)
    move_chances(engine, broken["images_current"])
    return broken


def _checks_alone(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The checks alone, as the UI's "Execute checks" runs them: nothing rendered or written."""
    job = build_defs().resolve_job_def("card_images_job")
    checks_only = job.get_subset(
        asset_selection=set(),
        asset_check_selection={
            dg.AssetCheckKey(dg.AssetKey(f"{t}_image_urls"), name)
            for t in ("battingcard", "pitchingcard")
            for name in CHECKS
        },
    )
    return checks_only.execute_in_process(
        instance=instance, partition_key="cardset-001", raise_on_error=False
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_card_the_sensor_noted_during_a_run_is_the_next_runs_work_not_a_failure(seeded):
    engine, instance = seeded.engine, seeded.instance
    assert run_partition(instance).success
    variant = add_variant(engine, variant=4040)
    sensor_tick(instance)  # its sweep notes since when the new row waits, as a run goes on
    audit = _checks_alone(instance)
    assert audit.success
    present = _checks(audit)["urls_present"]
    assert present.passed and present.metadata["not_seen_by_a_run_yet"].value == 1
    assert run_partition(instance).success and image_urls(engine)[variant]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the checks, not the database
def test_each_check_fails_on_a_broken_database_and_passes_after_a_run(seeded):
    engine, instance = seeded.engine, seeded.instance
    assert run_partition(instance).success
    broken = _break_every_check(engine)
    audit = _checks_alone(instance)
    assert not audit.success, "failing ERROR checks must fail the run"
    checks = _checks(audit)
    for name, card_id in broken.items():
        check = checks[name]
        assert not check.passed, f"{name} passed on a database prepared to break it"
        if name != "backlog":
            assert f"| #{card_id} |" in check.metadata["cards"].value, name
    assert checks["backlog"].metadata["oldest_wait_minutes"].value >= 119

    # The nightly reconcile's run (objects verified) repairs everything.
    verify = {"config": {"verify_objects": True}}
    repaired = run_partition(
        instance, ops={"battingcard_pngs": verify, "pitchingcard_pngs": verify}
    )
    assert repaired.success
    assert all(c.passed for c in _checks(repaired).values())
    assert all(image_urls(engine).values())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the store is what is tampered
def test_the_reconcile_remakes_tampered_lost_and_stripped_objects(seeded, s3_env, s3_server):
    engine, instance = seeded.engine, seeded.instance
    assert run_partition(instance).success
    entry = schema.card_render
    with engine.connect() as conn:
        keys = list(conn.scalars(sa.select(entry.c.object_key).where(
            entry.c.card_type == "battingcard").order_by(entry.c.card_id).limit(4)))  # fmt: skip
    tampered, deleted, stripped, other = keys
    s3, bucket = s3_server.client(), s3_env["bucket"]
    meta = s3.head_object(Bucket=bucket, Key=tampered)["Metadata"]
    another = s3.get_object(Bucket=bucket, Key=other)["Body"].read()
    # Another card's valid PNG under this card's key, its metadata left as it was.
    s3.put_object(Bucket=bucket, Key=tampered, Body=another, ContentType="image/png", Metadata=meta)
    s3.delete_object(Bucket=bucket, Key=deleted)
    own = s3.get_object(Bucket=bucket, Key=stripped)["Body"].read()
    s3.put_object(Bucket=bucket, Key=stripped, Body=own, ContentType="image/png")  # no metadata

    verify = {"config": {"verify_objects": True}}
    ops = {"battingcard_pngs": verify, "pitchingcard_pngs": verify}
    reconcile = run_partition(instance, tags={RECONCILE_TAG: "tonight"}, ops=ops)
    assert reconcile.success
    checks = _checks(reconcile)
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items()}
    urls = image_urls(engine)
    for key in (tampered, deleted, stripped):
        url = next(u for u in urls.values() if key in u)
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert url.endswith(f"?d={token(hashlib.sha256(data).hexdigest())}"), key
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("sha256"), key
    assert s3.get_object(Bucket=bucket, Key=tampered)["Body"].read() != another


def test_a_one_card_change_in_a_big_cardset_is_checked_without_listing_the_cardset(
    sqlite_url, s3_server, monkeypatch
):
    """A run after one card of 1,000 changed asks the store about that card and a sample of the
    rest: its checks' cost follows the change, not the cardset (one listing of a cardset of
    50,000 objects took 25 s)."""
    front = FlakyS3(s3_server.endpoint_url, lambda *_: None)  # counts what reaches the store
    try:
        for name, value in s3_settings(front.endpoint_url, s3_server.new_bucket()).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PD_DATABASE_URL", sqlite_url)
        engine = settled_cardset(sqlite_url, 1000)
        before = image_urls(engine)
        changed = min(before)
        move_chances(engine, changed)
        assert drain(engine, card_policy(), 100).flagged == 1  # the sensor's next tick
        front.seen.clear()
        job = build_defs().resolve_job_def("render_pending_job")
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
    finally:
        front.stop()
    assert result.success
    checks = _checks(result)
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items()}
    after = image_urls(engine)
    assert {i for i in after if after[i] != before[i]} == {changed}
    assert not [path for _, path in front.seen if "list-type" in path], "the cardset was listed"
    # its PUT and its HEAD, then the checks' HEAD of it and SAMPLE objects read
    assert sum(front.seen.values()) <= 3 + 2 * SAMPLE, front.seen
