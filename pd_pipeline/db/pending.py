"""Finding work cheaply: which cardsets have cards waiting for an image, and why.

Three sources, each bounded so a sensor tick stays cheap on millions of rows:
- NULL `image_url` rows (new cards, new variants, rows someone cleared), through the partial
  indexes `pd-pipeline add-indexes` creates: the cost follows the backlog, not the table;
- ledger rows flagged as needing work (`pending`, `stale`), through a partial index of our own;
- a rolling sweep over a window of card ids that compares each card's current render inputs and
  URL with what the ledger says its image shows, and flags the ones that drifted (the nightly
  reconcile sweeps everything).
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import ledger, schema
from pd_pipeline.db.cards import CARD_TYPES, Card, load_cards
from pd_pipeline.db.engine import write_transaction


@dataclass(frozen=True)
class Backlog:
    """One cardset's waiting cards; `signature` changes whenever new work appears in it."""

    cardset_id: int
    missing: int  # rows with a NULL image_url
    flagged: int  # rows the ledger marks as pending or stale
    signature: str


def backlog(conn: sa.Connection) -> dict[int, Backlog]:
    counts: dict[int, list] = defaultdict(list)
    for card_type in CARD_TYPES:
        card = schema.CARD_TABLES[card_type]
        query = (
            sa.select(schema.player.c.cardset_id, sa.func.count(), sa.func.max(card.c.id))
            .join(schema.player, schema.player.c.player_id == card.c.player_id)
            .where(card.c.image_url.is_(None), schema.player.c.cardset_id.is_not(None))
            .group_by(schema.player.c.cardset_id)
        )
        for cardset_id, count, last_id in conn.execute(query):
            counts[cardset_id] += [("missing", card_type, count, last_id)]
    entry = schema.card_render
    query = (
        sa.select(
            entry.c.cardset_id, entry.c.card_type, sa.func.count(), sa.func.max(entry.c.card_id)
        )
        .where(schema.needs_work)
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


def drifted(card: Card, entry, template_version: str) -> str | None:
    """Why a card needs a new image or URL, or None when its image is current."""
    if card.image_url is None:
        return "missing"
    if entry is None:
        return "not made by the pipeline"
    digest = card.input_hash(template_version)
    if entry.status == ledger.FAILED:
        return "changed since it failed" if entry.input_hash != digest else None
    if entry.input_hash != digest:
        return "stale"
    if card.image_url != entry.url:
        return "URL not canonical"
    return None


def sweep(
    engine: sa.Engine, card_type: str, after_id: int, limit: int, template_version: str
) -> tuple[int, int]:
    """Check the `limit` cards after `after_id`; flag drifted ones in the ledger (and record when
    NULL ones were first seen). Returns the cursor for the next sweep (0 to start over) and the
    number of cards it found stale."""
    card = schema.CARD_TABLES[card_type]
    window = sa.select(card.c.id).where(card.c.id > after_id).order_by(card.c.id).limit(limit)
    with engine.connect() as conn:
        ids = list(conn.scalars(window))
        made = ledger.entries(conn, card_type, ids)
        cards = load_cards(conn, card_type, card_ids=ids) if ids else []
    now = ledger.utcnow()
    flagged = []
    for c in cards:
        entry = made.get(c.card_id)
        reason = drifted(c, entry, template_version)
        if reason is None or c.cardset_id is None:
            continue
        if reason == "missing":
            # The NULL row is found by its index; the sweep only notes when it was first seen.
            if entry is not None and entry.first_pending_at is not None:
                continue
            status = entry.status if entry is not None else ledger.PENDING
        elif entry is not None and entry.status in schema.NEEDS_WORK:
            continue  # flagged already
        else:
            status = ledger.STALE
        flagged.append(
            {
                "card_type": card_type,
                "card_id": c.card_id,
                "cardset_id": c.cardset_id,
                "player_id": c.player_id,
                "variant": c.variant,
                "status": status,
                "first_pending_at": now,
            }  # fmt: skip
        )
    if flagged:
        with write_transaction(engine) as conn:
            ledger.upsert(conn, flagged, keep=("first_pending_at",))
    next_cursor = ids[-1] if len(ids) == limit else 0
    return next_cursor, sum(1 for f in flagged if f["status"] == ledger.STALE)
