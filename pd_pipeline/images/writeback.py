"""Writing image URLs back to card rows: only confirmed objects, never over someone else's change.

Write-back is driven by the database's state, not by what a run rendered: every row whose
`image_url` differs from the URL of its stored object is a candidate, so a PNG that an earlier
run stored (a render-cache hit) still gets its URL written. Under row locks (PostgreSQL) or the
write lock (SQLite) each candidate is assessed again (`state.assess`) and written only when its
rule says so; the rest are flagged for the next run. Flagged cards are candidates too: one that
needs nothing any more (its change undone, its work done elsewhere) has its flag cleared here,
under the same locks, so a change made meanwhile is never unflagged unseen.

The animated image is written the same way to `animated_url` (`db.animated`); until that column
is added its URLs wait (counted as `no_column`). An animation its design dropped, flagged by a
rollout run, is retired here: its entry goes, and its URL is cleared where it is still ours.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import animated, candidates, ledger, statistics, urls
from pd_pipeline.db.engine import write_transaction
from pd_pipeline.db.ledger import LedgerStatus
from pd_pipeline.images import state
from pd_pipeline.images.state import Next, Policy, Reason, State
from pd_pipeline.images.survey import survey
from pd_pipeline.model import Image

log = logging.getLogger(__name__)
BATCH = 500
RETIRING = Reason.ANIMATION_RETIRED.name.lower()  # the flag of an animation to retire now
# Verdicts that need no run: such a card's flag, if any, is cleared.
AT_REST = {Next.NOTHING, Next.WAIT, Next.ROLL_OUT}


@dataclass
class WriteReport:
    candidates: int = 0
    written: int = 0
    changed: int = 0  # data changed since its PNG was made: left for the next run
    conflicts: int = 0  # image_url set by someone else since the run read the row: left alone
    gone: int = 0  # row deleted meanwhile
    retired: int = 0  # animations the design dropped: entry dropped, URL cleared where ours
    no_column: int = 0  # animated URLs waiting for `pd-pipeline add-animated-column`

    def add(self, other: "WriteReport") -> None:
        for name in ("written", "changed", "conflicts", "gone", "retired", "no_column"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def write_back(
    engine: sa.Engine,
    policy: Policy,
    card_type: str,
    cardset_id: int,
    run_id: str | None = None,
    image: Image = Image.STATIC,
) -> WriteReport:
    statistics.keep_current(engine)  # the image step just changed a cardset of ledger rows
    with engine.connect() as conn:
        column = _column(conn, card_type, image)
        ids = urls.candidate_ids(conn, card_type, cardset_id, image, column)
        waiting = 0 if column else candidates.count_entries(conn, card_type, cardset_id, image,
                                                             [LedgerStatus.MADE])  # fmt: skip
    report = WriteReport(candidates=len(ids), no_column=waiting)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        _retry_lost_connection(
            lambda b=batch: report.add(
                _write_batch(engine, policy, card_type, b, run_id, image, column)
            )
        )
    return report


def _column(conn: sa.Connection, card_type: str, image: Image) -> str | None:
    """The column the image's URL is written to; None while it is not there."""
    if image is Image.STATIC:
        return "image_url"
    return animated.COLUMN if animated.has_column(conn, card_type) else None


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
    engine: sa.Engine,
    policy: Policy,
    card_type: str,
    ids: Sequence[int],
    run_id: str | None,
    image: Image,
    column: str | None,
) -> WriteReport:
    counts = WriteReport()  # added to the run's report once committed: a retry counts once
    with write_transaction(engine) as conn:
        # Compare what the row shows now with what its image shows, then update: under the
        # locks, nobody can change either in between.
        found = list(survey(conn, policy, card_type, card_ids=ids, lock=True, image=image))
        counts.gone = len(ids) - len(found)
        updates, flags, unflag, retired = [], [], [], []
        now = ledger.utcnow()
        for card, entry, verdict in found:
            if verdict.next is Next.WRITE_URL:
                updates.append((card.card_id, card.url(image), entry.url))
            elif verdict.reason is Reason.ANIMATION_RETIRED and entry.flag == RETIRING:
                retired.append(card.card_id)
                if column and entry.status == LedgerStatus.MADE and card.url(image) == entry.url:
                    updates.append((card.card_id, entry.url, None))
            elif verdict.next in AT_REST:
                if entry is not None and entry.flag is not None:
                    unflag.append(card.card_id)
            elif verdict.state is not State.SETTLED:  # settled meanwhile by another worker
                counts.conflicts += verdict.reason is Reason.OTHER_WRITER
                counts.changed += verdict.reason is not Reason.OTHER_WRITER
                flags.append(state.flagged(card, verdict.reason, now, state.FoundBy.WRITE_BACK,
                                           image))  # fmt: skip
        ledger.upsert(conn, flags, **state.WAITING_UPSERT)
        ledger.update(conn, card_type, unflag, state.UNFLAGGED, image)
        ledger.delete(conn, card_type, retired, image)
        counts.retired = len(retired)
        if column is not None and updates:
            urls.set_urls(conn, card_type, updates, column)
            written = [card_id for card_id, _, url in updates if url is not None]
            ledger.update(conn, card_type, written, state.written(now, run_id), image)
            counts.written = len(written)
    return counts
