"""What each step of a card run does for one cardset: the one body behind both the assets
(`assets.py`, `checks.py`: UI, sensor, backfill and schedule runs) and the CI job (`jobs.py`).
"""

from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from pd_pipeline.defs.resources import CardDatabase, CardRenderer, CardStore, card_policy
from pd_pipeline.images.audit import Audit, audit_cardset
from pd_pipeline.images.exclusive import in_turn
from pd_pipeline.images.produce import ImageReport, make_images
from pd_pipeline.images.writeback import WriteReport, write_back
from pd_pipeline.model import Image
from pd_pipeline.settings import Settings
from pd_pipeline.storage.keys import partition_key

# The nightly reconcile's runs carry this tag (`schedules.py`): their checks read every object.
RECONCILE_TAG = "pd/reconcile"
# The sensor's runs say how many cards with no URL, and how many flagged, they were launched for.
MISSING_TAG, FLAGGED_TAG = "pd/missing", "pd/flagged"


def step_retries(settings: Settings) -> dg.RetryPolicy | None:
    """How a step that failed for the store or the database is tried again in its run: a few
    times, the waits doubling, jittered (PD_STEP_RETRIES): it rides out a store's throttling or
    a database failover; longer outages are the sensor's to retry (automation/retries.py)."""
    if not settings.step_retries:
        return None
    return dg.RetryPolicy(
        max_retries=settings.step_retries,
        delay=settings.step_retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


class ImageConfig(dg.Config):
    rerender_all: bool = Field(
        default=False,
        description="Render every card again, not only missing or stale ones (identical bytes "
        "are not uploaded again, so URLs change only where pixels do).",
    )
    roll_out: int = Field(
        default=0,
        description="Cards stale only by design (a new design, PD_ADOPT=replace) this run "
        "renders again per card type, after every new and changed card: a rollout's pace. "
        "pending_images_sensor's rollout runs set it (PD_ROLLOUT_CARDS_PER_RUN); with 0 they "
        "wait, and new work never waits behind them.",
    )
    verify_objects: bool = Field(
        default=False,
        description="Also check the stored object of every card needing nothing (re-making "
        "lost or altered ones) and report orphan objects. The nightly reconcile sets this.",
    )


def images(
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
    config: ImageConfig,
    log: Any,
    run: dg.DagsterRun,
    card_type: str,
    cardset_ids: Sequence[int],
    image: Image,
) -> Iterator[ImageReport]:
    """Each cardset's images (PNGs, or APNGs), as each is done: those no other run is rendering
    first, then the others as they come free (one run at a time renders a cardset's image:
    `images.exclusive`). A run the sensor launched for waiting cards launches Chromium while it
    plans; any other starts it only when a card must be rendered."""
    if launched_for_cards(run):
        renderer.warm_up()

    def make(cardset_id: int, lock_wait: float) -> ImageReport:
        return make_images(
            card_db.engine(), card_store.open(), renderer.browser, renderer.design(),
            card_policy(card_store, renderer), card_type, cardset_id,
            rerender_all=config.rerender_all, roll_out=config.roll_out,
            verify_objects=config.verify_objects, logger=log, run_id=run.run_id,
            cache=card_db.cache, lock_wait=lock_wait, image=image,
        )  # fmt: skip

    return in_turn(cardset_ids, make)


def launched_for_cards(run: dg.DagsterRun) -> bool:
    """Whether the sensor launched `run` for cards with no URL or flagged: cards that almost
    always need rendering."""
    return any(run.tags.get(tag, "0") != "0" for tag in (MISSING_TAG, FLAGGED_TAG))


def urls(
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
    log: Any,
    run_id: str,
    card_type: str,
    cardset_id: int,
    image: Image,
) -> WriteReport:
    policy = card_policy(card_store, renderer)
    report = write_back(card_db.engine(), policy, card_type, cardset_id, run_id, image)
    what = f"{card_type} {partition_key(cardset_id)}"
    log.info(f"{what}: {report.written} {image.upper()} URLs written of {report.candidates} "
             f"candidates")  # fmt: skip
    if report.retired:
        log.info(f"{what}: {report.retired} animations retired (the design no longer animates "
                 f"their tier)")  # fmt: skip
    if report.no_column:
        log.warning(f"{what}: {report.no_column} animated URLs wait for the column animated_url "
                    f"(pd-pipeline add-animated-column adds it)")  # fmt: skip
    return report


def audit(
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
    log: Any,
    run: dg.DagsterRun,
    card_type: str,
    cardset_id: int,
    image: Image,
) -> Audit:
    """The audit the checks report. The nightly reconcile's runs check every object; other runs
    the objects they touched and a bounded sample of the rest (`audit.SAMPLE`)."""
    found = audit_cardset(
        card_db.engine(), card_store.open(), card_policy(card_store, renderer), card_type,
        cardset_id, read_all=RECONCILE_TAG in run.tags, run_id=run.run_id, cache=card_db.cache,
        image=image, animations=renderer.design().animations,
    )  # fmt: skip
    log.info(
        f"{card_type} {partition_key(cardset_id)} {image.upper()}s: {found.cards} cards, "
        f"{len(found.waiting)} lacking a valid URL; objects checked: {found.objects_scope}"
    )
    return found
