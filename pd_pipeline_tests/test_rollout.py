"""A new design rolls out at a bounded pace, and never holds up new cards: the sensor launches
rollout runs one at a time, PD_ROLLOUT_CARDS_PER_RUN cards per card type each, only where no
new or changed card waits; a new variant's run renders that variant alone."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.render.pages import pages_for
from pd_pipeline_tests.helpers import (
    add_variant,
    image_urls,
    materializations,
    run_partition,
    sensor_tick,
)

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[1] / "examples" / "classic"
PER_RUN = 6


def _designs(engine: sa.Engine) -> dict[str, int]:
    """Design version -> stills made in it (the classic design animates none: the rollout
    retires the animations)."""
    entry = schema.card_render
    query = sa.select(entry.c.template_version, sa.func.count()).group_by(entry.c.template_version)
    with engine.connect() as conn:
        stills = query.where(entry.c.status == "stored", entry.c.image == "png")
        return dict(conn.execute(stills).all())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_design_rolls_out_at_its_pace_and_new_cards_go_first(seeded, monkeypatch, caplog):
    engine, instance = seeded.engine, seeded.instance
    assert run_partition(instance).success
    cards, batting = sum(_designs(engine).values()), len(image_urls(engine))
    monkeypatch.setenv("PD_TEMPLATES_DIR", str(EXAMPLE))
    monkeypatch.setenv("PD_ROLLOUT_CARDS_PER_RUN", str(PER_RUN))
    new_design = pages_for(str(EXAMPLE)).version

    # A new variant arrives as the design changes: its run comes first and renders it alone.
    variant = add_variant(engine, variant=777)
    tick, _ = sensor_tick(instance)
    requests = {r.job_name: r for r in tick.run_requests}
    assert set(requests) == {"card_images_job", "design_preview_job"}
    assert requests["design_preview_job"].run_key == f"design-preview:{new_design}"
    request = requests["card_images_job"]
    assert "pd/rollout" not in request.tags
    first = run_partition(instance, tags=request.tags)
    assert first.success and image_urls(engine)[variant]
    made = materializations(first, "battingcard_pngs")
    assert made["rendered"] == 1 and made["old_design"] == batting
    assert _designs(engine)[new_design] == 1

    # Then rollout runs, one at a time, PER_RUN cards per card type each, until every card is
    # in the new design.
    runs = 0
    while True:
        tick, _ = sensor_tick(instance, log=caplog.handler)
        rollouts = [r for r in tick.run_requests if r.job_name == "card_images_job"]
        if not rollouts:
            break
        (request,) = rollouts
        assert request.tags["pd/rollout"] == "true"
        result = run_partition(instance, tags=request.tags, **request.run_config)
        assert result.success
        for card_type in ("battingcard", "pitchingcard"):
            assert materializations(result, f"{card_type}_pngs")["rendered"] <= PER_RUN
        runs += 1
        assert runs <= cards
    assert _designs(engine) == {new_design: cards + 1}
    assert runs >= -(-batting // PER_RUN)  # the pace held: no run took more than its share
    assert "are in an older design" in caplog.text and "rolling out cardset-001" in caplog.text
