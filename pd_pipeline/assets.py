"""The card assets, per card type and cardset partition: the PNGs in the store (`*_pngs`) and the
`image_url` column that points at them (`*_image_urls`). Their checks are in `checks.py`; what
each step does is in `steps.py`, which the CI job runs too."""

import warnings

import dagster as dg

from pd_pipeline import settings, steps
from pd_pipeline.db.backlog import old_design
from pd_pipeline.images.preview import preview_cards
from pd_pipeline.metadata import design_preview_metadata, png_metadata, url_metadata
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.partitions import cardsets
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.resources import CardDatabase, CardRenderer, CardStore
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


def build_card_assets(card_type: str) -> list[dg.AssetsDefinition]:
    """The PNG asset and the URL asset of one card type (`battingcard` or `pitchingcard`)."""

    @dg.asset(
        name=f"{card_type}_pngs",
        partitions_def=cardsets,
        backfill_policy=BACKFILL_POLICY,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"playwright", "s3"},
        pool=RENDER_POOL,
        required_resource_keys=steps.RESOURCES,
        description=f"Rendered {card_type} PNGs in the object store, one per card row, each "
        "confirmed in the store and recorded in the card_render ledger (or the row's own, "
        "adopted image, confirmed).",
    )
    def pngs(context: dg.AssetExecutionContext, config: steps.PngConfig) -> dg.MaterializeResult:
        res = steps.Opened.of_step(context)
        reports = [
            steps.pngs(res, context.log, context.run.run_id, card_type, cardset_id_of(p), config)
            for p in context.partition_keys  # several in a backfill run
        ]
        return dg.MaterializeResult(metadata=png_metadata(reports))

    @dg.asset(
        name=f"{card_type}_image_urls",
        deps=[pngs],
        partitions_def=cardsets,
        backfill_policy=BACKFILL_POLICY,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"sql"},
        required_resource_keys=steps.RESOURCES,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=settings.FRESHNESS_FAIL, warn_window=settings.FRESHNESS_WARN
        ),
        description=f"The `{card_type}.image_url` column: the URL of each row's confirmed PNG, "
        "written with a conditional UPDATE that never overwrites a row changed meanwhile.",
    )
    def image_urls(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        res = steps.Opened.of_step(context)
        reports = [
            steps.urls(res, context.log, context.run.run_id, card_type, cardset_id_of(p))
            for p in context.partition_keys
        ]
        return dg.MaterializeResult(metadata=url_metadata(reports))

    return [pngs, image_urls]


card_assets = [asset for card_type in CARD_TYPES for asset in build_card_assets(card_type)]


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
    pages = renderer.card_pages()
    made = preview_cards(pages, find_chromium(renderer.chromium_path), database_url=card_db.url,
                         store=card_store.open(), cards=PREVIEW_CARDS)  # fmt: skip
    with card_db.engine().connect() as conn:
        older = sum(old_design(conn, pages.version).values())
    context.log.info(
        f"design {pages.version[:12]}: {sum(c.png is not None for c in made)} of "
        f"{len(made)} sample cards drawn; {older} cards are in an older design"
    )
    return dg.MaterializeResult(metadata=design_preview_metadata(pages.version, made, older))
