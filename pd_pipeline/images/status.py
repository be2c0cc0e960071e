"""Per-cardset counts of where every card's image stands, for `pd-pipeline status`."""

import datetime as dt
import itertools
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import changes, schema
from pd_pipeline.db.animated import has_column
from pd_pipeline.db.cards import cardset_ids
from pd_pipeline.images import sweep
from pd_pipeline.images.audit import audit_cardset
from pd_pipeline.images.state import Policy, State
from pd_pipeline.model import CARD_TYPES, Image


@dataclass(frozen=True)
class CardsetStatus:
    cardset_id: int
    card_type: str
    image: Image
    total: int
    valid: int  # the canonical URL of a current image of ours
    adopted: int  # a URL someone else made, confirmed and kept
    old_design: int  # a valid image of the current data, in an older design
    waiting: int  # no URL yet, or one to confirm or write
    stale: int  # the image shows data that has changed since
    failed: int  # the last render failed
    oldest_wait: dt.timedelta | None

    @property
    def lacking(self) -> int:
        """Cards without a valid URL of an image of their current data."""
        return self.waiting + self.stale + self.failed


def cardset_status(engine: sa.Engine, policy: Policy) -> list[CardsetStatus]:
    """Every cardset's cards by state, per image (the animated one: of the cards of tiers the
    design animates, or that have an animation), from the database and the ledger (no object
    is read)."""
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        ids = cardset_ids(conn)
    out = []
    for cardset_id in ids:
        for card_type, image in itertools.product(CARD_TYPES, Image):
            audit = audit_cardset(engine, None, policy, card_type, cardset_id,
                                  check_objects=False, image=image)  # fmt: skip
            if not audit.cards:
                continue
            out.append(
                CardsetStatus(
                    cardset_id,
                    card_type,
                    image,
                    total=audit.cards,
                    valid=audit.count(State.SETTLED),
                    adopted=audit.count(State.ADOPTED),
                    old_design=audit.count(State.STALE_BY_DESIGN),
                    waiting=audit.count(State.UNSEEN, State.PENDING, State.STORED),
                    stale=audit.count(State.STALE),
                    failed=audit.count(State.FAILED),
                    oldest_wait=now - audit.first_pending if audit.first_pending else None,
                )
            )
    return out


def example_urls(conn: sa.Connection) -> list[str]:
    """One written URL per card type and image, to show people where to look."""
    urls = []
    for card_type, table in schema.CARD_TABLES.items():
        columns = [table.c.image_url]
        if has_column(conn, card_type):
            columns.append(table.c.animated_url)
        for column in columns:
            urls += list(conn.scalars(sa.select(column).where(column.is_not(None)).limit(1)))
    return urls


def tables_without_animated_url(conn: sa.Connection) -> list[str]:
    """The card tables lacking the `animated_url` column (whose animated URLs wait for it)."""
    return [schema.CARD_TABLES[t].name for t in CARD_TYPES if not has_column(conn, t)]


def how_changes_are_found(
    conn: sa.Connection, sweep_cards: int, pass_minutes: int | None, interval_s: int
) -> str:
    """Whether the database tracks changes (and how many wait to be drained) or, if not, how
    long the sensor's sweep takes to re-check every card at this size: for status and why."""
    if changes.is_tracking(conn):
        return (
            f"changes tracked by the database's triggers: an edited card is found within a tick "
            f"or two ({changes.waiting(conn)} changes waiting to be drained)"
        )
    last = sweep.last_ids(conn)
    size = max(last.values(), default=0)
    per_tick = sweep.window(size, sweep_cards, pass_minutes, interval_s)
    full = -(-size // per_tick) * interval_s if size else 0
    return (
        f"changes not tracked: the sensor's sweep re-checks {per_tick} cards per type a tick "
        f"(every {interval_s} s), a full pass over {size:,} cards every {full / 60:.0f} min at "
        "the least; `pd-pipeline track-changes` finds an edited card within a tick or two"
    )
