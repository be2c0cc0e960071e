"""The card assets, per card type and cardset partition: the PNGs in the store (`*_pngs`) and the
`image_url` column that points at them (`*_image_urls`), the APNGs of animated cards (`*_apngs`)
and the `animated_url` column (`*_animated_urls`); and `design_preview`. Their checks are in
`checks.py`; what each step does is in `steps.py`, which the CI job runs too."""

import warnings

import dagster as dg

from pd_pipeline.db.backlog import old_design
from pd_pipeline.defs.cards import steps
from pd_pipeline.defs.cards.metadata import design_preview_metadata, image_metadata, url_metadata
from pd_pipeline.defs.cards.names import ALL, ImageNames
from pd_pipeline.defs.partitions import cardsets
from pd_pipeline.defs.resources import CardDatabase, CardRenderer, CardStore
from pd_pipeline.images.picks import preview_cards
from pd_pipeline.model import Image
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.settings import Settings
from pd_pipeline.storage.keys import cardset_id_of

GROUP = "card_images"
DESIGN_GROUP = "card_design"
PREVIEW_CARDS = 8
# A backfill from the UI groups cardsets into runs of a few: one warm browser serves them all.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=4)
# Dagster 1.13 still calls the parameter beta, and would say so on every import: every CLI call.
warnings.filterwarnings("ignore", "Parameter `backfill_policy`", dg.BetaWarning)
# Rendering steps share a concurrency pool (deploy/dagster.yaml sizes it), whatever run they are in.
RENDER_POOL = "card_render"
OWNERS = ["team:card-pipeline"]
# A run writes a card's URL as soon as its image is stored, ahead of the other card type's
# images: an edited batting card's URL does not wait for the pitching cards' step.
URLS_FIRST = {"dagster/priority": "1"}


def build_image_assets(of: ImageNames, settings: Settings) -> list[dg.AssetsDefinition]:
    """The asset of one image of a card type in the store and the asset of its URL column:
    `battingcard_pngs` and `battingcard_image_urls`, `battingcard_apngs` and
    `battingcard_animated_urls`."""
    animated = of.image is Image.ANIMATED
    made = (
        f"Looping APNGs of the {of.card_type}s whose tier the design animates (frame 0 the "
        "static card, later frames the rectangle that moves)"
        if animated
        else f"Rendered {of.card_type} PNGs"
    )
    column = "animated_url" if animated else "image_url"

    @dg.asset(
        name=of.objects,
        # The animated image follows its card's static URL: a new card is served at once.
        deps=[f"{of.card_type}_image_urls"] if animated else None,
        partitions_def=cardsets,
        backfill_policy=BACKFILL_POLICY,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"playwright", "s3"},
        pool=RENDER_POOL,
        retry_policy=steps.step_retries(settings),
        description=f"{made} in the object store, one per card row, each confirmed in the store "
        "and recorded in the card_render ledger (or the row's own, adopted image, confirmed).",
    )
    def objects(
        context: dg.AssetExecutionContext,
        config: steps.ImageConfig,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
    ) -> dg.MaterializeResult:
        cardset_ids = [cardset_id_of(p) for p in context.partition_keys]  # several: a backfill
        reports = steps.images(card_db, card_store, renderer, config, context.log,
                               context.run, of.card_type, cardset_ids, of.image)  # fmt: skip
        ordered = sorted(reports, key=lambda r: r.cardset_id)  # done in turn; shown in order
        return dg.MaterializeResult(metadata=image_metadata(ordered))

    @dg.asset(
        name=of.urls,
        deps=[objects],
        op_tags=URLS_FIRST,
        partitions_def=cardsets,
        backfill_policy=BACKFILL_POLICY,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"sql"},
        retry_policy=steps.step_retries(settings),
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=settings.freshness_fail, warn_window=settings.freshness_warn
        ),
        description=f"The `{of.card_type}.{column}` column: the URL of each row's confirmed "
        f"{of.image.upper()}, written with a conditional UPDATE that never overwrites a row "
        "changed meanwhile."
        + (
            " Until `pd-pipeline add-animated-column` adds the column, the URLs wait."
            if animated
            else ""
        ),  # fmt: skip
    )
    def urls(
        context: dg.AssetExecutionContext,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
    ) -> dg.MaterializeResult:
        reports = [
            steps.urls(
                card_db,
                card_store,
                renderer,
                context.log,
                context.run.run_id,
                of.card_type,
                cardset_id_of(partition),
                of.image,
            )  # fmt: skip
            for partition in context.partition_keys
        ]
        return dg.MaterializeResult(metadata=url_metadata(reports))

    return [objects, urls]


def build_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """Every asset of the code location."""
    cards = [asset for of in ALL for asset in build_image_assets(of, settings)]
    return [*cards, design_preview]


@dg.asset(
    group_name=DESIGN_GROUP,
    owners=OWNERS,
    kinds={"playwright"},
    description="The configured card design drawn on sample cards from the card database (both "
    "types, every tier, the longest names, the extremes of the data), and beside the current "
    "images it would replace, with the share of pixels each changes. pending_images_sensor "
    "materializes it once per new design, as its rollout begins (or waits, with "
    "PD_ROLLOUT=manual); it writes nothing to the store or the card database.",
)
def design_preview(
    context: dg.AssetExecutionContext,
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
) -> dg.MaterializeResult:
    design = renderer.design()
    made = preview_cards(design, find_chromium(renderer.chromium_path), database_url=card_db.url,
                         store=card_store.open(), cards=PREVIEW_CARDS)  # fmt: skip
    with card_db.engine().connect() as conn:
        older = sum(old_design(conn, design.version).values())
    context.log.info(
        f"design {design.version[:12]}: {sum(c.png is not None for c in made)} of "
        f"{len(made)} sample cards drawn; {older} cards are in an older design"
    )
    return dg.MaterializeResult(metadata=design_preview_metadata(design.version, made, older))
