"""Jobs: the partitioned asset job, and `render_pending_job`, the CI entry point.

`render_pending_job` needs no partition: it registers every cardset, then runs the asset job's
steps over every cardset with work, with the same step bodies (`steps.py`), the same
materializations and metadata and the same checks, reported as the assets' own events. It exits
non-zero when a check fails (naming the cards) or a card has no cardset.
"""

import dagster as dg

from pd_pipeline import checks, steps
from pd_pipeline.assets import GROUP, RENDER_POOL, design_preview
from pd_pipeline.db.cards import cardset_ids
from pd_pipeline.images.plan import homeless_cards
from pd_pipeline.metadata import png_metadata, url_metadata
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.partitions import cardsets
from pd_pipeline.resources import CardDatabase
from pd_pipeline.storage.keys import partition_key

# deploy/dagster.yaml limits how many runs with this tag render at once.
RENDER_TAGS = {"pd/render": "true"}

# Steps run in one process: the warm browser is shared by both card types, and each step skips
# the seconds a new process costs.
card_images_job = dg.define_asset_job(
    "card_images_job",
    selection=dg.AssetSelection.groups(GROUP),
    executor_def=dg.in_process_executor,
    tags=RENDER_TAGS,
    description="Render, store and write back the card images of the selected cardsets.",
)


design_preview_job = dg.define_asset_job(
    "design_preview_job",
    selection=[design_preview],
    executor_def=dg.in_process_executor,
    description="Draw the configured design on sample cards, beside the images it would replace.",
)


@dg.op(description="Register every cardset with players as a partition; all of them, in order.")
def register_cardsets(context: dg.OpExecutionContext, card_db: CardDatabase) -> list[int]:
    with card_db.engine().connect() as conn:
        ids = cardset_ids(conn)
    context.instance.add_dynamic_partitions(cardsets.name, [partition_key(i) for i in ids])
    context.log.info(f"{len(ids)} cardsets: {', '.join(partition_key(i) for i in ids)}")
    return ids


def _each_cardset(context, asset: str, cardset_ids: list[int], step, due, metadata) -> list[int]:
    """Run `step` on each cardset; record the asset's materialization where it was `due`."""
    worked = []
    for cardset_id in cardset_ids:
        report = step(cardset_id)
        if due(cardset_id, report):
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=asset,
                    partition=partition_key(cardset_id),
                    metadata=metadata([report]),
                )
            )
            worked.append(cardset_id)
    return worked


def build_ci_steps(card_type: str):
    """The three steps of one card type, as ops named after the asset job's steps (op names
    are unique in a code location, hence the prefix)."""

    @dg.op(
        name=f"pending_{card_type}_pngs",
        description=f"{card_type}_pngs, every cardset.",
        pool=RENDER_POOL,
        required_resource_keys=steps.RESOURCES,
    )
    def pngs(
        context: dg.OpExecutionContext, config: steps.PngConfig, cardset_ids: list[int]
    ) -> list[int]:
        res, run_id = steps.Opened.of_step(context), context.run.run_id
        return _each_cardset(
            context, f"{card_type}_pngs", cardset_ids,
            lambda i: steps.pngs(res, context.log, run_id, card_type, i, config),
            due=lambda _, report: report.cards > report.current, metadata=png_metadata,
        )  # fmt: skip

    @dg.op(
        name=f"pending_{card_type}_image_urls",
        description=f"{card_type}_image_urls, every cardset.",
        required_resource_keys=steps.RESOURCES,
    )
    def image_urls(
        context: dg.OpExecutionContext, cardset_ids: list[int], rendered: list[int]
    ) -> list[int]:
        res, run_id = steps.Opened.of_step(context), context.run.run_id
        return _each_cardset(
            context, f"{card_type}_image_urls", cardset_ids,
            lambda i: steps.urls(res, context.log, run_id, card_type, i),
            due=lambda i, report: report.candidates or i in rendered, metadata=url_metadata,
        )  # fmt: skip

    @dg.op(
        name=f"pending_{card_type}_image_checks",
        description=f"{card_type}_image_urls checks, where materialized.",
        required_resource_keys=steps.RESOURCES,
        out={},  # it reports check evaluations, no output
    )
    def image_checks(context: dg.OpExecutionContext, cardset_ids: list[int]):
        res = steps.Opened.of_step(context)
        yield from checks.evaluate(context, res, card_type, cardset_ids)

    return pngs, image_urls, image_checks


@dg.op(description="Cards whose player has no cardset: no partition renders them.")
def cards_without_cardset(card_db: CardDatabase) -> None:
    homeless = homeless_cards(card_db.engine())
    if homeless:
        lines = [f"{len(homeless)} cards belong to no cardset, so no run renders them:"]
        lines += [f"  - {error}" for _, error in homeless[:50]]
        raise dg.Failure(description="\n".join(lines))


CI_STEPS = {card_type: build_ci_steps(card_type) for card_type in CARD_TYPES}


@dg.job(
    executor_def=dg.in_process_executor,
    tags=RENDER_TAGS,
    description="CI entry point: render every pending card of every cardset, write every good "
    "card's URL, and run the image checks; fails naming any card that failed.",
)
def render_pending_job() -> None:
    ids = register_cardsets()
    for pngs, image_urls, image_checks in CI_STEPS.values():
        image_checks(image_urls(ids, pngs(ids)))
    cards_without_cardset()
