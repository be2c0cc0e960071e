"""Versioned migrations of the pipeline's own tables: `card_render` and its schema table.

Each step brings the tables from one version to the next; `migrate` applies the missing ones in
order, in one transaction, one process at a time (PostgreSQL: an advisory lock; SQLite: its
write lock), and records each in `card_render_schema`. `pd-pipeline migrate` runs it, and so does
the first use of a database by any process of a new release (`engine.ready_engine`). A database
migrated by a newer release is refused: its tables may mean things this one does not know.

A ledger made before versions were recorded is recognised by its columns. Steps hold their own
DDL: they must keep doing what they did when later releases change `schema.card_render`.
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline import __version__
from pd_pipeline.db.schema import card_render_schema, ledger_metadata

log = logging.getLogger(__name__)
LOCK_KEY = 0x70645F6D  # "pd_m": the advisory lock that makes migrations one at a time
# The design versions earlier releases shipped, by what their ledgers recorded for no card: an
# entry of such a release whose input hash is its card's current inputs in one of these designs
# shows data that has not changed since.
EARLIER_DESIGNS = {"5604e0f99c0d": "the design shipped on 2026-11-30 (e75a719)"}


class SchemaTooNew(RuntimeError):
    pass


@dataclass(frozen=True)
class Step:
    version: int
    note: str
    apply: Callable[[sa.Connection], None]


def _v1_baseline(conn: sa.Connection) -> None:
    """The ledger of 2026-11-30 (e75a719): nothing to do, it is recognised by its columns."""


def _v2_hashes_and_flags(conn: sa.Connection) -> None:
    """2026-12-01: the card data's own hash and the design's version beside the input hash, the
    store's MD5, a flag for work found outside a run, the run that last wrote each entry; the
    status 'stale' becomes a flag."""
    for column, kind in (("data_hash", "VARCHAR(64)"), ("template_version", "VARCHAR(64)"),
                         ("png_md5", "VARCHAR(32)"), ("flag", "VARCHAR(32)"),
                         ("run_id", "VARCHAR(64)")):  # fmt: skip
        conn.exec_driver_sql(f"ALTER TABLE card_render ADD COLUMN {column} {kind}")
    conn.exec_driver_sql("DROP INDEX IF EXISTS card_render_needs_work")
    conn.exec_driver_sql(
        "UPDATE card_render SET flag = 'moved_on', "
        "status = CASE WHEN png_sha256 IS NULL THEN 'pending' ELSE 'stored' END "
        "WHERE status = 'stale'"
    )
    _recover_data_hashes(conn)


def _recover_data_hashes(conn: sa.Connection) -> None:
    """An entry of the first release has only its input hash, of the card's data and the design
    together. Where it is the card's current data in a design that release shipped, the data
    has not changed since its image: its data hash and design are recorded, so the card counts as
    stale by design (rolled out at the rollout's pace), not as changed (rendered at once)."""
    from pd_pipeline.db.cards import load_cards  # the reader of today: it reads the same inputs

    entry = sa.table("card_render", sa.column("card_type"), sa.column("card_id"),
                     sa.column("input_hash"), sa.column("data_hash"),
                     sa.column("template_version"))  # fmt: skip
    rows = conn.execute(
        sa.select(entry.c.card_type, entry.c.card_id, entry.c.input_hash).where(
            entry.c.input_hash.is_not(None), entry.c.data_hash.is_(None)
        )
    ).all()
    by_type: dict[str, dict[int, str]] = {}
    for card_type, card_id, input_hash in rows:
        by_type.setdefault(card_type, {})[card_id] = input_hash
    recovered = 0
    for card_type, hashes in by_type.items():
        ids = sorted(hashes)
        for start in range(0, len(ids), 5000):
            for card in load_cards(conn, card_type, card_ids=ids[start : start + 5000]):
                design = next((v for v in EARLIER_DESIGNS
                               if card.input_hash(v) == hashes[card.card_id]), None)  # fmt: skip
                if design is None:
                    continue  # changed since (or drawn in a design of the operator's own)
                conn.execute(
                    sa.update(entry)
                    .where(entry.c.card_type == card_type, entry.c.card_id == card.card_id)
                    .values(data_hash=card.data_hash, template_version=design)
                )
                recovered += 1
    log.info("card_render: %s of %s earlier entries show unchanged data", recovered, len(rows))


def _v3_images_and_releases(conn: sa.Connection) -> None:
    """0.2.0: an entry per image of a card ('png', and 'apng' for animated ones), keyed by it;
    how its work was found; the release that wrote it."""
    columns = (
        "card_type, card_id, cardset_id, player_id, variant, status, input_hash, data_hash, "
        "template_version, object_key, png_sha256, png_md5, png_bytes, url, seen_url, flag, "
        "error, run_id, first_pending_at, rendered_at, written_at"
    )
    conn.exec_driver_sql(
        "CREATE TABLE card_render_v3 ("
        "card_type VARCHAR(16) NOT NULL, card_id INTEGER NOT NULL, "
        "image VARCHAR(8) DEFAULT 'png' NOT NULL, cardset_id INTEGER, player_id INTEGER, "
        "variant BIGINT, status VARCHAR(16) NOT NULL, input_hash VARCHAR(64), "
        "data_hash VARCHAR(64), template_version VARCHAR(64), object_key TEXT, "
        "png_sha256 VARCHAR(64), png_md5 VARCHAR(32), png_bytes INTEGER, url TEXT, "
        "seen_url TEXT, flag VARCHAR(32), found_by VARCHAR(32), error TEXT, run_id VARCHAR(64), "
        "release VARCHAR(32), "
        f"first_pending_at {_timestamp(conn)}, rendered_at {_timestamp(conn)}, "
        f"written_at {_timestamp(conn)}, "
        "CONSTRAINT card_render_key PRIMARY KEY (card_type, card_id, image))"
    )
    conn.exec_driver_sql(
        f"INSERT INTO card_render_v3 ({columns}, image) SELECT {columns}, 'png' FROM card_render"
    )
    conn.exec_driver_sql("DROP TABLE card_render")
    conn.exec_driver_sql("ALTER TABLE card_render_v3 RENAME TO card_render")
    for sql in (
        "CREATE INDEX card_render_cardset_written ON card_render (cardset_id, written_at)",
        "CREATE INDEX card_render_flagged ON card_render (cardset_id) WHERE flag IS NOT NULL",
        "CREATE INDEX card_render_waiting ON card_render (first_pending_at) "
        "WHERE first_pending_at IS NOT NULL",
    ):
        conn.exec_driver_sql(sql)


def _timestamp(conn: sa.Connection) -> str:
    return "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"


STEPS = (
    Step(1, "the ledger of 2026-11-30 (e75a719)", _v1_baseline),
    Step(2, "data hash, design version, MD5, flag and run id (2026-12-01)", _v2_hashes_and_flags),
    Step(3, "an entry per image; how work was found; the release (0.2.0)", _v3_images_and_releases),
)
LATEST = STEPS[-1].version


def migrate(engine: sa.Engine) -> list[str]:
    """Bring the pipeline's tables to this release's version; what was done, in words."""
    from pd_pipeline.db.engine import write_transaction

    with engine.connect() as conn:
        if _version_of(conn)[0] == LATEST:
            return []  # the common case, without taking a lock
    done = []
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        # Again, under the lock: another process may have migrated meanwhile.
        current, recorded = _version_of(conn)
        if current > LATEST:
            raise SchemaTooNew(
                f"card_render is at version {current}, made by a newer pd_pipeline than "
                f"{__version__} (which knows versions up to {LATEST}): upgrade pd_pipeline"
            )
        if current == 0:  # a database new to the pipeline: the tables as they are now
            ledger_metadata.create_all(conn)
            conn.execute(sa.insert(card_render_schema), [_row(step) for step in STEPS])
            done.append(f"created card_render at version {LATEST}")
        else:
            if not recorded:  # a ledger of a release that recorded no versions
                card_render_schema.create(conn)
                known = [_row(step) for step in STEPS if step.version <= current]
                conn.execute(sa.insert(card_render_schema), known)
            for step in STEPS:
                if step.version > current:
                    step.apply(conn)
                    conn.execute(sa.insert(card_render_schema).values(_row(step)))
                    done.append(f"version {step.version}: {step.note}")
    for line in done:
        log.info("card_render migrated to %s", line)
    return done


def _version_of(conn: sa.Connection) -> tuple[int, bool]:
    """The version the tables are at (0 for a database without them), and whether it was
    recorded or told by the columns of a ledger made before versions were."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if "card_render_schema" in tables:
        return conn.scalar(sa.select(sa.func.max(card_render_schema.c.version))) or 0, True
    if "card_render" not in tables:
        return 0, False
    columns = {c["name"] for c in inspector.get_columns("card_render")}
    return (2 if "data_hash" in columns else 1), False


def _row(step: Step) -> dict:
    return {"version": step.version, "release": __version__, "note": step.note,
            "applied_at": dt.datetime.now(dt.UTC)}  # fmt: skip
