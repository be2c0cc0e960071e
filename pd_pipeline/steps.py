"""What each step of a card run does, for a list of cardsets: the one body behind both the assets
(`assets.py`, `checks.py`: UI, sensor, backfill and schedule runs) and the CI job (`jobs.py`).
"""

from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from pd_pipeline.images.audit import Audit, audit_cardset
from pd_pipeline.images.produce import PngReport, make_pngs
from pd_pipeline.images.state import Context
from pd_pipeline.images.writeback import WriteReport, write_back
from pd_pipeline.render.pages import CardPages
from pd_pipeline.resources import CardDatabase, CardRenderer, CardStore
from pd_pipeline.storage.keys import partition_key
from pd_pipeline.storage.stores import ObjectStore

# The nightly reconcile's runs carry this tag (`schedules.py`): their checks read every object.
RECONCILE_TAG = "pd/reconcile"
# What every card step uses (`resources.py` makes them from the environment).
RESOURCES = {"card_db", "card_store", "renderer"}


class PngConfig(dg.Config):
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


@dataclass
class Opened:
    """A step's resources, opened: the database, the store, the design and the card context."""

    engine: sa.Engine
    store: ObjectStore
    pages: CardPages
    ctx: Context
    renderer: CardRenderer

    @classmethod
    def of(cls, card_db: CardDatabase, card_store: CardStore, renderer: CardRenderer) -> "Opened":
        store, pages = card_store.open(), renderer.card_pages()
        ctx = Context(pages.version, store.public_base_url, card_store.adopt,
                      card_store.adopt_outside)  # fmt: skip
        return cls(card_db.engine(), store, pages, ctx, renderer)

    @classmethod
    def of_step(cls, context: Any) -> "Opened":
        """From a step's context (every step asks for RESOURCES)."""
        r = context.resources
        return cls.of(r.card_db, r.card_store, r.renderer)


def pngs(
    res: Opened, log: Any, run_id: str, card_type: str, cardset_id: int, config: PngConfig
) -> PngReport:
    return make_pngs(
        res.engine, res.store, res.renderer.browser, res.pages, res.ctx, card_type, cardset_id,
        rerender_all=config.rerender_all, roll_out=config.roll_out,
        verify_objects=config.verify_objects, logger=log, run_id=run_id,
    )  # fmt: skip


def urls(res: Opened, log: Any, run_id: str, card_type: str, cardset_id: int) -> WriteReport:
    report = write_back(res.engine, res.ctx, card_type, cardset_id, run_id)
    log.info(
        f"{card_type} {partition_key(cardset_id)}: {report.written} URLs written "
        f"of {report.candidates} candidates"
    )
    return report


def audit(res: Opened, log: Any, run: dg.DagsterRun, card_type: str, cardset_id: int) -> Audit:
    """The audit the checks report. The nightly reconcile's runs check every object; other runs
    the objects they touched and a bounded sample of the rest (`audit.SAMPLE`)."""
    reconcile = RECONCILE_TAG in run.tags
    found = audit_cardset(
        res.engine, res.store, res.ctx, card_type, cardset_id, read_all=reconcile,
        run_id=run.run_id,
    )  # fmt: skip
    log.info(
        f"{card_type} {partition_key(cardset_id)}: {found.cards} cards, {len(found.waiting)} "
        f"lacking a valid URL; objects checked: {found.objects_scope}"
    )
    return found
