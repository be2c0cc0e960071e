"""Jobs: the partitioned asset job, the design preview's, and `render_pending_job`, the CI entry
point. `build_jobs` makes them for an executor (the Celery location passes its own).

`render_pending_job` needs no partition: it registers every cardset, then runs the asset job's
steps over every cardset with work, with the same step bodies (`steps.py`), the same
materializations and metadata and the same checks, reported as the assets' own events. It exits
non-zero when a check fails (naming the cards) or a card has no cardset.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from pd_pipeline import __version__
from pd_pipeline.db.cards import cardset_ids
from pd_pipeline.defs.cards import checks, steps
from pd_pipeline.defs.cards.assets import GROUP, RENDER_POOL, design_preview
from pd_pipeline.defs.cards.metadata import image_metadata, url_metadata
from pd_pipeline.defs.cards.names import ALL, ImageNames
from pd_pipeline.defs.partitions import cardsets
from pd_pipeline.defs.resources import RELEASE_TAG, CardDatabase, CardRenderer, CardStore
from pd_pipeline.images.plan import homeless_cards
from pd_pipeline.settings import Settings
from pd_pipeline.storage.keys import partition_key

# deploy/dagster.yaml limits how many runs with this tag render at once; the release that made a
# run's images is on it from the start (the card database resource adds it to any other run).
RENDER_TAGS = {"pd/render": "true", RELEASE_TAG: __version__}
# Run monitoring (deploy/dagster.yaml) ends a run past its maximum runtime: a hung browser or
# store call; the sensor then launches its work again. A cardset renders in minutes; the CI job
# renders everything pending, which after a new season can take hours.
MAX_RUNTIME = "dagster/max_runtime"


@dataclass(frozen=True)
class Jobs:
    card_images: Any  # asset jobs, resolved against the assets by Definitions
    design_preview: Any
    render_pending: dg.JobDefinition

    def all(self) -> list:
        return [self.card_images, self.render_pending, self.design_preview]


def build_jobs(settings: Settings, executor: dg.ExecutorDefinition) -> Jobs:
    """The jobs, their steps on `executor` (the in-process one keeps one warm Chromium for all
    of a run's steps; `render_pending_job` always runs in one process: it is the CI job)."""
    return Jobs(
        card_images=dg.define_asset_job(
            "card_images_job",
            selection=dg.AssetSelection.groups(GROUP),
            executor_def=executor,
            tags={**RENDER_TAGS, MAX_RUNTIME: "3600"},
            description="Render, store and write back the card images of the selected cardsets.",
        ),
        design_preview=dg.define_asset_job(
            "design_preview_job",
            selection=[design_preview],
            executor_def=dg.in_process_executor,
            tags={MAX_RUNTIME: "900", RELEASE_TAG: __version__},
            description="Draw the configured design on sample cards, beside the images it would "
            "replace.",
        ),
        render_pending=_render_pending_job(settings),
    )


@dg.op(description="Register every cardset with players as a partition; all of them, in order.")
def register_cardsets(context: dg.OpExecutionContext, card_db: CardDatabase) -> list[int]:
    with card_db.engine().connect() as conn:
        ids = cardset_ids(conn)
    context.instance.add_dynamic_partitions(cardsets.name, [partition_key(i) for i in ids])
    context.log.info(f"{len(ids)} cardsets: {', '.join(partition_key(i) for i in ids)}")
    return ids


def _each_cardset(
    context, asset: str, reports: Iterable[tuple[int, Any]], due, metadata
) -> list[int]:
    """Each cardset's report as its step is done; record the asset's materialization where it
    was `due`."""
    worked = []
    for cardset_id, report in reports:
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


def build_ci_steps(of: ImageNames, settings: Settings):
    """The three steps of one image of a card type, as ops named after the asset job's steps
    (op names are unique in a code location, hence the prefix)."""

    @dg.op(
        name=f"pending_{of.objects}",
        description=f"{of.objects}, every cardset.",
        pool=RENDER_POOL,
        retry_policy=steps.step_retries(settings),
    )
    def objects(
        context: dg.OpExecutionContext,
        config: steps.ImageConfig,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
        cardset_ids: list[int],
        after: list[int],  # the step this one waits for (the animated image's: static URLs)
    ) -> list[int]:
        made = steps.images(card_db, card_store, renderer, config, context.log,
                            context.run, of.card_type, cardset_ids, of.image)  # fmt: skip
        return _each_cardset(
            context, of.objects, ((r.cardset_id, r) for r in made),
            due=lambda _, report: report.cards > report.current, metadata=image_metadata,
        )  # fmt: skip

    @dg.op(
        name=f"pending_{of.urls}",
        description=f"{of.urls}, every cardset.",
        retry_policy=steps.step_retries(settings),
    )
    def urls(
        context: dg.OpExecutionContext,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
        cardset_ids: list[int],
        rendered: list[int],
    ) -> list[int]:
        written = (
            (i, steps.urls(card_db, card_store, renderer, context.log, context.run.run_id,
                           of.card_type, i, of.image))
            for i in cardset_ids
        )  # fmt: skip
        return _each_cardset(
            context, of.urls, written,
            due=lambda i, report: report.candidates or i in rendered, metadata=url_metadata,
        )  # fmt: skip

    @dg.op(
        name=f"pending_{of.checks}",
        description=f"{of.urls} checks, where materialized.",
        out={},  # it reports check evaluations, no output
        retry_policy=steps.step_retries(settings),
    )
    def image_checks(
        context: dg.OpExecutionContext,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
        cardset_ids: list[int],
    ):
        yield from checks.evaluate(context, card_db, card_store, renderer, of, cardset_ids,
                                   settings.backlog_max_wait)  # fmt: skip

    return objects, urls, image_checks


@dg.op(description="Cards whose player has no cardset: no partition renders them.")
def cards_without_cardset(card_db: CardDatabase) -> None:
    homeless = homeless_cards(card_db.engine())
    if homeless:
        lines = [f"{len(homeless)} cards belong to no cardset, so no run renders them:"]
        lines += [f"  - {error}" for _, error in homeless[:50]]
        raise dg.Failure(description="\n".join(lines), allow_retries=False)


def _render_pending_job(settings: Settings) -> dg.JobDefinition:
    ci_steps = [build_ci_steps(of, settings) for of in ALL]

    @dg.job(
        name="render_pending_job",
        executor_def=dg.in_process_executor,
        tags={**RENDER_TAGS, MAX_RUNTIME: str(12 * 3600)},
        description="CI entry point: render every pending card of every cardset, write every "
        "good card's URL, and run the image checks; fails naming any card that failed.",
    )
    def render_pending_job() -> None:
        ids = register_cardsets()
        written = {}  # each card type's static URLs: its animated images follow them
        for of, (objects, urls, image_checks) in zip(ALL, ci_steps, strict=True):
            written[of.card_type] = urls(ids, objects(ids, written.get(of.card_type, ids)))
            image_checks(written[of.card_type])
        cards_without_cardset()

    return render_pending_job
