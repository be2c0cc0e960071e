"""card_images_job end to end: real Chromium, real SQLite/PostgreSQL, a real S3 server."""

import pytest
import sqlalchemy as sa
from dagster_aws.s3 import S3Resource

from pd_pipeline.db import schema
from pd_pipeline.defs import build_defs
from pd_pipeline.defs.resources import shared_s3_client
from pd_pipeline_tests.helpers import (
    assert_url_opens_its_png,
    image_urls,
    materializations,
    memory_instance,
    run_partition,
    seed_small_demo,
)

pytestmark = pytest.mark.slow


def test_a_partition_gets_every_card_a_url_that_opens_its_png(seeded, monkeypatch):
    engine, instance = seeded.engine, seeded.instance
    clients = []  # a boto3 client costs 0.1-0.3 s of CPU: the run's twelve steps share one
    shared_s3_client.cache_clear()  # made once per process: by this run, not an earlier test
    get_client = S3Resource.get_client
    monkeypatch.setattr(S3Resource, "get_client", lambda r: clients.append(r) or get_client(r))
    result = run_partition(instance)
    assert result.success
    # Per card type and image (still, animated): objects, URLs, checks.
    done = [e.step_key for e in result.get_step_success_events()]
    assert len(done) == 2 * 2 * 3 and len(clients) == 1
    # A card's URL is written as soon as its image is stored, before the other type's images.
    assert done.index("battingcard_image_urls") < done.index("pitchingcard_pngs"), done
    for card_type in ("battingcard", "pitchingcard"):
        urls = image_urls(engine, card_type)
        assert urls and all(urls.values()), f"{card_type} rows left without a URL"
        for url in urls.values():
            assert_url_opens_its_png(url)
        pngs = materializations(result, f"{card_type}_pngs")
        assert pngs["rendered"] == pngs["cards"] == len(urls) and pngs["failed"] == 0
        assert materializations(result, f"{card_type}_image_urls")["written"] == len(urls)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the run, not the database
def test_a_rerun_changes_nothing(seeded):
    engine, instance = seeded.engine, seeded.instance
    assert run_partition(instance).success
    before = image_urls(engine)
    again = run_partition(instance)
    assert again.success
    pngs = materializations(again, "battingcard_pngs")
    assert (pngs["rendered"], pngs["uploaded"], pngs["reused"]) == (0, 0, 0)
    assert pngs["current"] == pngs["cards"]
    assert materializations(again, "battingcard_image_urls")["written"] == 0
    assert image_urls(engine) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the run, not the database
def test_a_cache_hit_still_writes_the_url_without_rendering_again(seeded):
    """The old system's bug: the PNG was cached, so the NULL image_url was never back-filled."""
    engine, instance = seeded.engine, seeded.instance
    assert run_partition(instance).success
    written = image_urls(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(schema.battingcard).values(image_url=None))
    result = run_partition(instance)
    assert result.success
    pngs = materializations(result, "battingcard_pngs")
    assert pngs["rendered"] == 0 and pngs["reused"] == len(written)
    assert image_urls(engine) == written


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the run, not the database
def test_rerender_all_renders_again_but_uploads_nothing_identical(seeded):
    engine, instance = seeded.engine, seeded.instance
    assert run_partition(instance).success
    before = image_urls(engine)
    config = {"ops": {"battingcard_pngs": {"config": {"rerender_all": True}}}}
    result = run_partition(instance, **config)
    assert result.success
    pngs = materializations(result, "battingcard_pngs")
    assert pngs["rendered"] == pngs["cards"] and pngs["uploaded"] == 0
    assert image_urls(engine) == before


def test_a_backfill_run_covers_several_cardsets(sqlite_url, s3_env, monkeypatch):
    """BackfillPolicy groups cardsets into one run: every asset and check handles the range."""
    monkeypatch.setenv("PD_DATABASE_URL", sqlite_url)
    engine = seed_small_demo(sqlite_url, players=3, seasons=(2008, 2019))
    with memory_instance() as instance:
        instance.add_dynamic_partitions("cardsets", ["cardset-001", "cardset-002"])
        result = (
            build_defs()
            .resolve_job_def("card_images_job")
            .execute_in_process(
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": "cardset-001",
                    "dagster/asset_partition_range_end": "cardset-002",
                },
            )
        )
    assert result.success
    assert materializations(result, "battingcard_pngs")["cardsets"] == "cardset-001, cardset-002"
    for card_type in ("battingcard", "pitchingcard"):
        assert all(image_urls(engine, card_type).values())
    checks = result.get_asset_check_evaluations()
    # Per cardset and card type, each check: 6 of the still, 7 of the animated image.
    assert len(checks) == 2 * 2 * (6 + 7) and all(c.passed for c in checks)
