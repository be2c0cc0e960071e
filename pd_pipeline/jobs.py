"""Jobs: the partitioned asset job, and the CI entry point that needs no partition."""

import dagster as dg
from pydantic import Field

from pd_pipeline.assets import GROUP, RENDER_POOL
from pd_pipeline.db.cards import CARD_TYPES, cardset_ids
from pd_pipeline.db.writeback import write_back
from pd_pipeline.metadata import failures_markdown, png_metadata, url_metadata
from pd_pipeline.partitions import cardsets
from pd_pipeline.pngs import cards_without_cardset, make_pngs
from pd_pipeline.resources import CardDatabase, CardRenderer, CardStore
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


class PendingConfig(dg.Config):
    rerender_all: bool = Field(
        default=False, description="Render every card again, not only missing or stale ones."
    )


@dg.op(
    description="Every cardset with cards needing an image: render, store, write back.",
    pool=RENDER_POOL,
)
def render_pending_cards(
    context: dg.OpExecutionContext,
    config: PendingConfig,
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
) -> None:
    engine, store, templates = card_db.engine(), card_store.open(), renderer.templates()
    with engine.connect() as conn:
        ids = cardset_ids(conn)
    context.instance.add_dynamic_partitions(cardsets.name, [partition_key(i) for i in ids])
    context.log.info(f"{len(ids)} cardsets; store: {store.describe()}")
    failures = cards_without_cardset(engine)
    for cardset_id in ids:
        partition = partition_key(cardset_id)
        for card_type in CARD_TYPES:
            pngs = make_pngs(
                engine, store, renderer.browser, templates, card_type, cardset_id,
                rerender_all=config.rerender_all, logger=context.log,
            )  # fmt: skip
            urls = write_back(engine, card_type, cardset_id, templates.version)
            failures += pngs.failures
            if pngs.cards == pngs.current and not urls.candidates:
                continue  # nothing pending here: no materialization to record
            context.log.info(
                f"{card_type} {partition}: {pngs.rendered} rendered, {pngs.reused} reused, "
                f"{pngs.failed} failed, {urls.written} URLs written"
            )
            for asset, metadata in (
                ("pngs", png_metadata([pngs])),
                ("image_urls", url_metadata([urls])),
            ):
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=f"{card_type}_{asset}", partition=partition, metadata=metadata
                    )
                )
    if failures:
        names = "\n".join(f"  - {error}" for _, error in failures[:50])
        more = f"\n  ... and {len(failures) - 50} more" if len(failures) > 50 else ""
        raise dg.Failure(
            description=f"{len(failures)} cards failed (every other card's URL is "
            f"written):\n{names}{more}",
            metadata={"failures": failures_markdown(failures)},
        )


@dg.job(
    executor_def=dg.in_process_executor,
    tags=RENDER_TAGS,
    description="CI entry point: render every pending card of every cardset; fails naming any "
    "card that failed, after writing every good card's URL.",
)
def render_pending_job() -> None:
    render_pending_cards()
