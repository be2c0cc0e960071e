"""The sensor's drain of tracked changes (`db.changes`): the cards the database says changed are
assessed (`state.assess`), the ones needing work flagged for the backlog, and the queue rows
handled removed, all in one transaction: a crash loses nothing and flags nothing twice.

Cards of a renamed cardset or rarity are too many to assess in a tick: every image of them shows
the old name, so their entries are flagged in one statement (a run assesses them anyway).
"""

from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import changes, ledger, schema
from pd_pipeline.db.engine import write_transaction
from pd_pipeline.db.ledger import LedgerStatus
from pd_pipeline.images import state
from pd_pipeline.images.state import FoundBy, Policy
from pd_pipeline.images.survey import notice


@dataclass(frozen=True)
class Drained:
    changes: int  # queue rows handled
    cards: int  # cards they named, assessed
    flagged: int  # of those, flagged for work
    broadly: int  # entries flagged for a renamed cardset or rarity


def drain(engine: sa.Engine, policy: Policy, limit: int) -> Drained:
    """Handle at most `limit` queue rows, oldest first."""
    now = ledger.utcnow()
    with write_transaction(engine) as conn:
        queued = changes.read(conn, limit)
        rows = [
            row
            for card_type, ids in queued.cards.items()
            for row in notice(conn, policy, card_type, sorted(ids), now, FoundBy.TRACKED_CHANGE)
        ]
        ledger.upsert(conn, rows, **state.WAITING_UPSERT)
        broadly = _flag_broadly(conn, queued.broad, now)
        changes.forget(conn, queued.ids)
    assessed = sum(len(ids) for ids in queued.cards.values())
    flagged = sum(row.get("flag") is not None for row in rows)
    return Drained(len(queued.ids), assessed, flagged, broadly)


def _flag_broadly(conn: sa.Connection, broad: dict[str, set[int]], now) -> int:
    """Flag every made or adopted image of the renamed cardsets' and rarities' cards."""
    entry, player = schema.card_render, schema.player
    of = []
    if broad["cardset"]:
        of.append(entry.c.cardset_id.in_(sorted(broad["cardset"])))
    if broad["rarity"]:
        players = sa.select(player.c.player_id).where(player.c.rarity_id.in_(broad["rarity"]))
        of.append(entry.c.player_id.in_(players))
    if not of:
        return 0
    flag = state.Reason.DATA_CHANGED.name.lower()
    result = conn.execute(
        sa.update(entry)
        .where(sa.or_(*of), entry.c.status.in_([LedgerStatus.MADE, LedgerStatus.KEPT]))
        .values(
            flag=flag,
            found_by=FoundBy.TRACKED_CHANGE,
            first_pending_at=sa.func.coalesce(entry.c.first_pending_at, now),
        )  # fmt: skip
    )
    return result.rowcount
