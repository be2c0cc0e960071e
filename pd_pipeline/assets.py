"""The card assets, per card type and cardset partition: the PNGs in the store (`*_pngs`) and the
`image_url` column that points at them (`*_image_urls`)."""

import warnings

import dagster as dg
from pydantic import Field

from pd_pipeline import settings
from pd_pipeline.db import ledger
from pd_pipeline.db.cards import CARD_TYPES
from pd_pipeline.db.writeback import write_back
from pd_pipeline.metadata import failures_markdown, png_metadata, url_metadata
from pd_pipeline.partitions import cardsets
from pd_pipeline.pngs import make_pngs
from pd_pipeline.resources import CardDatabase, CardRenderer, CardStore
from pd_pipeline.storage.keys import cardset_id_of

GROUP = "card_images"
# A backfill from the UI groups cardsets into runs of a few: one warm browser serves them all.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=4)
# Dagster 1.13 still calls the parameter beta, and would say so on every import: every CLI call.
warnings.filterwarnings("ignore", "Parameter `backfill_policy`", dg.BetaWarning)
# Rendering steps share a concurrency pool (deploy/dagster.yaml sizes it), whatever run they are in.
RENDER_POOL = "card_render"
OWNERS = ["team:card-pipeline"]


class PngConfig(dg.Config):
    rerender_all: bool = Field(
        default=False,
        description="Render every card of the cardset again, not only missing or stale ones.",
    )
    verify_objects: bool = Field(
        default=False,
        description="Also check the stored object of every settled card (re-making lost or "
        "altered ones) and report orphan objects. The nightly reconcile sets this.",
    )


RENDERED_CHECK = "all_cards_rendered"


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
        description=f"Rendered {card_type} PNGs in the object store, one per card row, each "
        "confirmed in the store and recorded in the card_render ledger.",
    )
    def pngs(
        context: dg.AssetExecutionContext,
        config: PngConfig,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
    ) -> dg.MaterializeResult:
        engine, store = card_db.engine(), card_store.open()
        reports = [
            make_pngs(
                engine,
                store,
                renderer.browser,
                renderer.templates(),
                card_type,
                cardset_id_of(partition),
                rerender_all=config.rerender_all,
                verify_objects=config.verify_objects,
                logger=context.log,
            )
            for partition in context.partition_keys  # several in a backfill run
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
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=settings.FRESHNESS_FAIL, warn_window=settings.FRESHNESS_WARN
        ),
        description=f"The `{card_type}.image_url` column: the URL of each row's confirmed PNG, "
        "written with a conditional UPDATE that never overwrites a row changed meanwhile.",
        check_specs=[
            dg.AssetCheckSpec(
                RENDERED_CHECK,
                asset=f"{card_type}_image_urls",
                blocking=True,
                description="Every card of the partition rendered; failures are named.",
            )
        ],
    )
    def image_urls(
        context: dg.AssetExecutionContext, card_db: CardDatabase, renderer: CardRenderer
    ):
        engine, version = card_db.engine(), renderer.templates().version
        reports, failed = [], []
        for partition in context.partition_keys:
            cardset_id = cardset_id_of(partition)
            report = write_back(engine, card_type, cardset_id, version)
            context.log.info(
                f"{card_type} {partition}: {report.written} URLs written "
                f"of {report.candidates} candidates"
            )
            reports.append(report)
            with engine.connect() as conn:
                failed += ledger.failures(conn, card_type, cardset_id)
        yield dg.MaterializeResult(metadata=url_metadata(reports))
        metadata = {"failed_cards": len(failed)}
        if failed:
            metadata["failures"] = failures_markdown([(f"#{i}", e) for i, e in failed])
        yield dg.AssetCheckResult(
            check_name=RENDERED_CHECK,
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
        )

    return [pngs, image_urls]


card_assets = [asset for card_type in CARD_TYPES for asset in build_card_assets(card_type)]
