"""The ledger rows an image step makes, buffered and written in batches (a transaction each)."""

from typing import Any

import sqlalchemy as sa

from pd_pipeline.db import ledger
from pd_pipeline.images import state
from pd_pipeline.images.plan import Work
from pd_pipeline.images.state import Policy
from pd_pipeline.profiling import phase

BATCH = 200


class Recorder:
    def __init__(self, engine: sa.Engine, policy: Policy, run_id: str | None):
        self.engine, self.policy, self.run_id = engine, policy, run_id
        self.rows: list[dict[str, Any]] = []

    def confirmed(self, work: Work, sha256: str, md5: str | None, size: int) -> None:
        self._add(
            state.object_confirmed(
                work.card, self.policy, sha256=sha256, md5=md5, size=size, now=ledger.utcnow(),
                run_id=self.run_id, image=work.image,
            )
        )  # fmt: skip

    def failed(self, work: Work, error: str) -> None:
        self._add(state.failed(work.card, self.policy, error, self.run_id, work.image))

    def kept(self, work: Work, size: int | None) -> None:
        self._add(state.url_kept(work.card, size=size, now=ledger.utcnow(), run_id=self.run_id,
                                 image=work.image))  # fmt: skip

    def _add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            with phase("ledger"), self.engine.begin() as conn:
                ledger.upsert(conn, self.rows)
            self.rows.clear()
