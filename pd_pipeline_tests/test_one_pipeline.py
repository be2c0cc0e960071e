"""One pipeline: the CI job, a sensor-launched run and a UI-style backfill, each on a copy of one
seeded database, write the same URLs, record the same materialization metadata and reach the
same check results."""

import shutil
from collections import defaultdict

import dagster as dg
import pytest

from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.engine import make_engine
from pd_pipeline.defs import build_defs
from pd_pipeline.model import CARD_TYPES, tier_of
from pd_pipeline.render.pages import CardPages
from pd_pipeline.storage.keys import partition_key
from pd_pipeline_tests.helpers import image_urls, memory_instance, seed_small_demo

# Each way is tested on its own (test_render_pending_cli, test_sensor, test_card_images_job);
# this holds them to one another.
pytestmark = [pytest.mark.slow, pytest.mark.thorough]
PARTITIONS = ["cardset-001", "cardset-002"]


def ci_job(instance: dg.DagsterInstance) -> list:
    job = build_defs().resolve_job_def("render_pending_job")
    return [job.execute_in_process(instance=instance, raise_on_error=False)]


def sensor_runs(instance: dg.DagsterInstance) -> list:
    """The sensor's tick, and its run requests executed as the daemon launches them."""
    defs = build_defs()
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        tick = defs.resolve_sensor_def("pending_images_sensor")(context)
    for request in tick.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    assert sorted(r.partition_key for r in tick.run_requests) == PARTITIONS
    job = defs.resolve_job_def("card_images_job")
    return [
        job.execute_in_process(
            instance=instance, partition_key=r.partition_key, tags=r.tags, raise_on_error=False
        )
        for r in tick.run_requests
    ]


def backfill(instance: dg.DagsterInstance) -> list:
    """What the UI's "Materialize all" backfill launches: one run over a range of cardsets."""
    instance.add_dynamic_partitions("cardsets", PARTITIONS)
    job = build_defs().resolve_job_def("card_images_job")
    tags = {
        "dagster/asset_partition_range_start": PARTITIONS[0],
        "dagster/asset_partition_range_end": PARTITIONS[-1],
    }
    return [job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)]


def animated_partitions(engine) -> set[tuple[str, str]]:
    """(card type, partition) of every card an animation is made for."""
    animates = CardPages().animations  # the built-in design's animated tiers
    with engine.connect() as conn:
        return {
            (card.card_type, partition_key(card.cardset_id))
            for card_type in CARD_TYPES
            for card in load_cards(conn, card_type)
            if tier_of(card.variant) in animates
        }


def outcome(results: list, engine) -> dict:
    metadata, checks = defaultdict(set), {}
    for result in results:
        assert result.success
        for event in result.get_asset_materialization_events():
            materialization = event.materialization
            metadata[materialization.asset_key.to_user_string()] |= set(materialization.metadata)
        for check in result.get_asset_check_evaluations():
            checks[check.asset_key.to_user_string(), check.check_name, check.partition] = (
                check.passed
            )
    return {
        "urls": {t: image_urls(engine, t) for t in CARD_TYPES},
        "metadata": dict(metadata),
        "checks": checks,
    }


def test_the_ci_job_a_sensor_run_and_a_backfill_agree(tmp_path, s3_server, monkeypatch):
    seeded = tmp_path / "seeded.db"
    seed_small_demo(f"sqlite:///{seeded}", players=4, seasons=(2008, 2019)).dispose()
    # One public base: URLs name the same keys and tokens, whichever bucket holds the objects.
    monkeypatch.setenv("PD_PUBLIC_BASE_URL", "https://cards.example")
    seen = {}
    for way in (ci_job, sensor_runs, backfill):
        copy = tmp_path / f"{way.__name__}.db"
        shutil.copyfile(seeded, copy)
        url = f"sqlite:///{copy}"
        for key, value in {"PD_DATABASE_URL": url, **s3_server.settings()}.items():
            monkeypatch.setenv(key, value)
        with memory_instance() as instance:
            seen[way.__name__] = outcome(way(instance), make_engine(url))
    first = seen["ci_job"]
    assert all(first["urls"][t] and all(first["urls"][t].values()) for t in CARD_TYPES)
    # The CI job checks what it materialized: every static image, and the animated images of the
    # cardsets with animated cards; runs of a partition check all of it.
    animated = {k for k in first["checks"] if k[0].endswith("_animated_urls")}
    assert len(first["checks"]) - len(animated) == len(CARD_TYPES) * len(PARTITIONS) * 6
    assert {(k[0], k[2]) for k in animated} == {
        (f"{t}_animated_urls", p)
        for t, p in animated_partitions(make_engine(f"sqlite:///{seeded}"))
    }
    assert all(first["checks"].values())
    for name, other in seen.items():
        assert {k: other["checks"][k] for k in first["checks"]} == first["checks"], name
        assert all(other["checks"].values()), name
        assert other["urls"] == first["urls"] and other["metadata"] == first["metadata"], name
