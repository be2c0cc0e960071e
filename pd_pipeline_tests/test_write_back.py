"""Write-back is conditional: nothing is clobbered, and one bad card never sinks its partition."""

import dagster as dg
import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline_tests.helpers import (
    add_variant,
    image_urls,
    materializations,
    materialize,
    move_chances,
    run_partition,
)

pytestmark = pytest.mark.slow


def test_rows_changed_between_render_and_write_back_are_not_clobbered(seeded):
    engine, instance = seeded.engine, seeded.instance
    assert materialize(instance, "battingcard_pngs").success
    ids = sorted(image_urls(engine))
    edited, taken, deleted = ids[0], ids[1], ids[2]
    move_chances(engine, edited)  # its PNG no longer shows its data
    elsewhere = "https://elsewhere.example/custom.png"
    with engine.begin() as conn:
        t = schema.battingcard
        conn.execute(sa.update(t).where(t.c.id == taken).values(image_url=elsewhere))
        r = schema.battingcardratings
        conn.execute(sa.delete(r).where(r.c.battingcard_id == deleted))
        conn.execute(sa.delete(t).where(t.c.id == deleted))

    result = materialize(instance, "battingcard_image_urls")
    assert result.success
    urls = image_urls(engine)
    assert urls[edited] is None, "a URL of a PNG showing old data was written"
    assert urls[taken] == elsewhere, "another writer's image_url was overwritten"
    assert deleted not in urls
    assert all(urls[i] for i in ids[3:])
    counts = materializations(result, "battingcard_image_urls")
    assert (counts["left_stale"], counts["left_to_other_writer"]) == (1, 1)
    assert counts["candidates"] == len(ids) - 1 and counts["written"] == len(ids) - 3

    # The next run re-renders the edited card and converges.
    assert run_partition(instance).success
    urls = image_urls(engine)
    assert all(urls.values())


def test_a_card_that_fails_does_not_stop_the_others(seeded):
    engine, instance = seeded.engine, seeded.instance
    bad = add_variant(engine, variant=777, shift=5.0)  # its chances now sum to 113
    result = run_partition(instance)
    assert not result.success, "a failed card must fail the run"
    urls = image_urls(engine)
    assert urls[bad] is None
    assert all(url for card_id, url in urls.items() if card_id != bad)
    assert all(image_urls(engine, "pitchingcard").values())
    pngs = materializations(result, "battingcard_pngs")
    assert pngs["failed"] == 1
    assert f"battingcard #{bad}" in pngs["failures"] and "sum" in pngs["failures"]
    checks = {
        c.check_name: c
        for c in result.get_asset_check_evaluations()
        if c.asset_key == dg.AssetKey("battingcard_image_urls")
    }
    failed = checks.pop("all_cards_rendered")
    assert not failed.passed and failed.metadata["failed_cards"].value == 1
    assert f"| #{bad} |" in failed.metadata["cards"].value
    assert all(c.passed for c in checks.values()), "the other checks still ran, and passed"
