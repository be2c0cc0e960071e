"""Finding work cheaply: which cardsets have cards waiting for an image.

Two sources, each bounded so a sensor tick stays cheap on millions of rows:
- NULL `image_url` rows (new cards, new variants, rows someone cleared), through the partial
  indexes `pd-pipeline add-indexes` creates: the cost follows the backlog, not the table. A row
  whose last render failed for its own data is not work until that data changes (the sweep then
  flags it), so a bad card never makes its cardset relaunch;
- ledger rows flagged as waiting (by the sensor's sweep or a write-back: `images.sweep`),
  through a partial index of our own.
"""

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.ledger import LedgerStatus
from pd_pipeline.model import CARD_TYPES, Card


@dataclass(frozen=True)
class Backlog:
    """One cardset's waiting cards; `signature` changes whenever new work appears in it."""

    cardset_id: int
    missing: int  # rows with a NULL image_url
    flagged: int  # rows the ledger flags as waiting
    signature: str


def backlog(conn: sa.Connection) -> dict[int, Backlog]:
    counts: dict[int, list] = defaultdict(list)
    entry = schema.card_render
    for card_type in CARD_TYPES:
        card = schema.CARD_TABLES[card_type]
        its_entry = sa.and_(
            entry.c.card_type == card_type, entry.c.card_id == card.c.id, entry.c.image == "png"
        )
        query = (
            sa.select(schema.player.c.cardset_id, sa.func.count(), sa.func.max(card.c.id))
            .join(schema.player, schema.player.c.player_id == card.c.player_id)
            .outerjoin(entry, its_entry)
            .where(card.c.image_url.is_(None), schema.player.c.cardset_id.is_not(None))
            .where(
                sa.or_(
                    entry.c.status.is_(None),
                    entry.c.status != LedgerStatus.RENDER_FAILED,
                    entry.c.flag.is_not(None),
                )
            )  # fmt: skip
            .group_by(schema.player.c.cardset_id)
        )
        for cardset_id, count, last_id in conn.execute(query):
            counts[cardset_id] += [("missing", card_type, count, last_id)]
    query = (
        sa.select(
            entry.c.cardset_id, entry.c.card_type, sa.func.count(), sa.func.max(entry.c.card_id)
        )
        .where(schema.flagged)
        .group_by(entry.c.cardset_id, entry.c.card_type)
    )
    for cardset_id, card_type, count, last_id in conn.execute(query):
        counts[cardset_id] += [("flagged", card_type, count, last_id)]
    last_writes = _last_writes(conn, list(counts))
    return {
        cardset_id: Backlog(
            cardset_id,
            missing=sum(c for kind, _, c, _ in parts if kind == "missing"),
            flagged=sum(c for kind, _, c, _ in parts if kind == "flagged"),
            # A row that goes NULL again after a run wrote it yields a new signature, since the
            # run's write moved the cardset's last write; unchanged work keeps its signature.
            signature=_digest(sorted(parts, key=str), last_writes.get(cardset_id)),
        )
        for cardset_id, parts in counts.items()
    }


def _last_writes(conn: sa.Connection, cardset_ids: list[int]) -> dict[int, object]:
    # One max() per cardset: each is a single probe of the (cardset_id, written_at) index.
    entry = schema.card_render
    query = sa.select(sa.func.max(entry.c.written_at)).where(
        entry.c.cardset_id == sa.bindparam("cardset_id")
    )
    return {i: conn.scalar(query, {"cardset_id": i}) for i in cardset_ids}


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Late:
    label: str
    error: str | None  # its last render's error, which names the card
    since: dt.datetime


@dataclass(frozen=True)
class Overdue:
    count: int
    cardset_ids: list[int]
    named: list[Late]  # the longest-waiting of them


def overdue(conn: sa.Connection, before: dt.datetime, limit: int) -> Overdue:
    """Cards waiting since before `before` for a valid URL (through the ledger's
    `card_render_waiting` partial index)."""
    entry = schema.card_render
    late = sa.and_(schema.waiting, entry.c.first_pending_at < before)
    count = conn.scalar(sa.select(sa.func.count()).select_from(entry).where(late))
    if not count:
        return Overdue(0, [], [])
    ids = list(conn.scalars(sa.select(entry.c.cardset_id).where(late).distinct()
                            .order_by(entry.c.cardset_id)))  # fmt: skip
    rows = conn.execute(
        sa.select(entry.c.card_type, entry.c.card_id, entry.c.player_id, entry.c.variant,
                  entry.c.cardset_id, entry.c.error, entry.c.first_pending_at)
        .where(late).order_by(entry.c.first_pending_at).limit(limit)
    )  # fmt: skip
    named = [
        Late(Card(t, i, p, v, c, None, {}).label, error, since)
        for t, i, p, v, c, error, since in rows
    ]
    return Overdue(count, [i for i in ids if i is not None], named)


def old_design(conn: sa.Connection, template_version: str) -> dict[int, int]:
    """Cardsets whose stored images are in another design than `template_version`, with how
    many (a scan of the ledger: the sensor counts it again only when runs start or end)."""
    entry = schema.card_render
    query = (
        sa.select(entry.c.cardset_id, sa.func.count())
        .where(
            entry.c.status == LedgerStatus.MADE,
            entry.c.template_version != template_version,
            entry.c.cardset_id.is_not(None),
        )  # fmt: skip
        .group_by(entry.c.cardset_id)
    )
    return dict(conn.execute(query).all())
