"""The ledger rows a PNG step makes, buffered and written in batches (a transaction each)."""

import time
from typing import Any

import sqlalchemy as sa

from pd_pipeline.db import ledger
from pd_pipeline.images import state
from pd_pipeline.images.plan import Work
from pd_pipeline.images.state import Context

BATCH = 200


class Recorder:
    def __init__(self, engine: sa.Engine, ctx: Context, run_id: str | None):
        self.engine, self.ctx, self.run_id = engine, ctx, run_id
        self.rows: list[dict[str, Any]] = []
        self.cpu_s = 0.0  # CPU time its writes took

    def stored(self, work: Work, sha256: str, md5: str | None, size: int) -> None:
        now = ledger.utcnow()
        row = state.stored(
            work.card, self.ctx, sha256=sha256, md5=md5, size=size, now=now, run_id=self.run_id
        )
        self._add(row)

    def failed(self, work: Work, error: str) -> None:
        self._add(state.failed(work.card, self.ctx, error, self.run_id))

    def adopted(self, work: Work, size: int | None) -> None:
        self._add(state.adopted(work.card, size=size, now=ledger.utcnow(), run_id=self.run_id))

    def _add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            started = time.thread_time()
            with self.engine.begin() as conn:
                ledger.upsert(conn, self.rows)
            self.rows.clear()
            self.cpu_s += time.thread_time() - started
