"""Writing image URLs back to card rows: only confirmed objects, never over someone else's change.

Write-back is driven by the database's state, not by what a run rendered: every row whose
`image_url` differs from the URL of its stored object is a candidate, so a PNG that an earlier
run stored (a render-cache hit) still gets its URL written. Under row locks (PostgreSQL) or the
write lock (SQLite) each candidate is assessed again (`state.assess`) and written only when its
rule says so; the rest are flagged for the next run.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import ledger, urls
from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.engine import write_transaction
from pd_pipeline.images import state
from pd_pipeline.images.state import Context, Next, Reason, State

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class WriteReport:
    candidates: int = 0
    written: int = 0
    changed: int = 0  # data changed since its PNG was made: left for the next run
    conflicts: int = 0  # image_url set by someone else since the run read the row: left alone
    gone: int = 0  # row deleted meanwhile
    cpu_s: float = 0.0  # CPU time it took

    def add(self, other: "WriteReport") -> None:
        for name in ("written", "changed", "conflicts", "gone"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def write_back(
    engine: sa.Engine, ctx: Context, card_type: str, cardset_id: int, run_id: str | None = None
) -> WriteReport:
    started = time.thread_time()
    with engine.connect() as conn:
        ids = urls.candidate_ids(conn, card_type, cardset_id)
    report = WriteReport(candidates=len(ids))
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        _retry_lost_connection(
            lambda b=batch: report.add(_write_batch(engine, ctx, card_type, b, run_id))
        )
    report.cpu_s = time.thread_time() - started
    return report


def _retry_lost_connection(write, attempts: int = 3) -> None:
    """A batch is one transaction: when its connection dies (a restarted or failed-over server,
    a killed backend), it rolled back whole and is simply written again on a new connection."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except sa.exc.DBAPIError as e:
            if not e.connection_invalidated or attempt == attempts:
                raise
            log.warning("write-back connection lost (%s); retrying the batch", e.orig)
            time.sleep(0.5 * attempt)


def _write_batch(
    engine: sa.Engine, ctx: Context, card_type: str, ids: Sequence[int], run_id: str | None
) -> WriteReport:
    counts = WriteReport()  # added to the run's report once committed: a retry counts once
    with write_transaction(engine) as conn:
        # Compare what the row shows now with what its PNG shows, then update: under the locks,
        # nobody can change either in between.
        cards = load_cards(conn, card_type, card_ids=ids, lock=True)
        made = ledger.entries(conn, card_type, ids)
        counts.gone = len(ids) - len(cards)
        updates, flags = [], []
        now = ledger.utcnow()
        for card in cards:
            entry = made[card.card_id]
            verdict = state.assess(card, entry, ctx)
            if verdict.next is Next.WRITE_URL:
                updates.append((card.card_id, card.image_url, entry.url))
            elif verdict.state is not State.SETTLED:  # settled meanwhile by another worker
                counts.conflicts += verdict.reason is Reason.OTHER_WRITER
                counts.changed += verdict.reason is not Reason.OTHER_WRITER
                flags.append(state.flagged(card, verdict.reason, now))
        ledger.upsert(conn, flags, **state.WAITING_UPSERT)
        if updates:
            urls.set_urls(conn, card_type, updates)
            written = [card_id for card_id, _, _ in updates]
            ledger.update(conn, card_type, written, state.written(now, run_id))
            counts.written = len(updates)
    return counts
