"""The ledger's planner statistics, kept current by the pipeline itself.

`card_render` grows by a million rows in one first look, and its statuses turn over by the
cardset in a run. Planned with the statistics of the table it was before, a run's candidate
queries join every card to a ledger the planner believes holds a few rows: a nested loop that
reads the whole ledger once per card, minutes for a cardset. PostgreSQL's autovacuum would
analyze it within a minute or so, where it is on; the pipeline does not wait on that. Between
the cardsets of a first look, and before a run plans and writes back, it analyzes `card_render`
by autovacuum's own rule: once more than a tenth of its rows (and 50) changed since the last
analyze. SQLite plans these queries by their indexes alone.
"""

import logging
import time
from typing import Any

import sqlalchemy as sa

from pd_pipeline.db import schema

log = logging.getLogger(__name__)

THRESHOLD_ROWS = 50  # autovacuum_analyze_threshold's default
SCALE = 0.1  # autovacuum_analyze_scale_factor's default

_CHANGED = sa.text(
    "SELECT s.n_mod_since_analyze, greatest(c.reltuples, 0) FROM pg_stat_user_tables s "
    "JOIN pg_class c ON c.oid = s.relid WHERE s.relid = to_regclass(:table)"
)


def keep_current(
    engine: sa.Engine, *, changed: int = 0, logger: logging.Logger | Any | None = None
) -> bool:
    """Analyze `card_render` if enough of it changed since it was last analyzed (PostgreSQL):
    the rows the server counted as changed, plus `changed`, the caller's own writes (the server
    counts a session's writes a second or more after they commit). Whether it did. Another
    session analyzing it meanwhile, or a role not allowed to, only skips it (said in the log):
    the next run tries again."""
    if engine.dialect.name != "postgresql":
        return False
    table = schema.card_render.name
    logger = logger or log
    with engine.connect() as conn:
        found = conn.execute(_CHANGED, {"table": table}).first()
    if found is None:
        return False
    changed += found[0]
    if changed <= THRESHOLD_ROWS + SCALE * found[1]:
        return False
    started = time.monotonic()
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
            conn.exec_driver_sql(f"ANALYZE {table}")
    except sa.exc.DBAPIError as e:
        logger.warning(f"ANALYZE {table} skipped ({e.orig}); the next run tries again")
        return False
    logger.info(f"ANALYZE {table}: {changed:,} rows changed since the planner's last look "
                f"({time.monotonic() - started:.1f} s)")  # fmt: skip
    return True
