"""Change capture: triggers on every table a card is made from record which cards changed in
`card_render_changes`, a queue the pipeline owns, so the sensor finds an edited card in seconds
on any size of table instead of when a rolling sweep reaches it.

`pd-pipeline track-changes` installs them (idempotent; `--remove` takes them and the queue away
again, leaving the database as it was); `init-db` does for the databases it creates. The card
tables' rows are never altered. Only changes to what a card is made from (`cards.MADE_FROM`)
queue it: the pipeline's own URL writes touch none of those columns, and so queue nothing (an
UPDATE of a ratings or fielding row queues its card whatever it sets: see `Tracked.compare`).

A queue row names what changed: a card (`battingcard`/`pitchingcard` and its id), a player (its
cards of both types), a cardset or a rarity (every card showing it). On PostgreSQL the triggers
are per statement, over its transition tables, so a bulk UPDATE of a new season's ratings queues
its cards in one INSERT; on SQLite they are per row.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.cards import MADE_FROM

PREFIX = "pd_track_"
queue_metadata = sa.MetaData()
queue = sa.Table(
    "card_render_changes",
    queue_metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # a card type, player, cardset, rarity
    sa.Column("changed_id", sa.BigInteger, nullable=False),  # its id
    sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
# The kinds whose change reaches too many cards to assess one by one in a tick.
BROAD = ("cardset", "rarity")


@dataclass(frozen=True)
class Tracked:
    table: str
    primary_key: str
    queues: tuple[tuple[str, str], ...]  # (kind, column holding its id)
    events: tuple[str, ...]
    # Whether an UPDATE queues only rows whose made-from columns changed. Where others write
    # other columns too (the card tables: the pipeline's own URLs; players), yes. The ratings and
    # fielding tables hold a card's data and nothing else: any UPDATE of them queues its cards,
    # which spares a bulk update (a new season's ratings) the row-by-row comparison.
    compare: bool = True


ALL = ("INSERT", "UPDATE", "DELETE")
TRACKED = (
    *(Tracked(t, "id", ((t, "id"),), ALL) for t in schema.CARD_TABLES),
    *(
        Tracked(f"{t}ratings", "id", ((t, f"{t}_id"),), ALL, compare=False)
        for t in schema.CARD_TABLES
    ),
    Tracked("cardposition", "id", (("player", "player_id"),), ALL, compare=False),
    Tracked("player", "player_id", (("player", "player_id"),), ("UPDATE", "DELETE")),
    Tracked("cardset", "id", (("cardset", "id"),), ("UPDATE",)),
    Tracked("rarity", "id", (("rarity", "id"),), ("UPDATE",)),
)


def _name(tracked: Tracked, event: str) -> str:
    return f"{PREFIX}{tracked.table}_{event.lower()}"


def trigger_names() -> list[str]:
    return [_name(t, event) for t in TRACKED for event in t.events]


def is_tracking(conn: sa.Connection) -> bool:
    """Whether every trigger is in place (and so the queue is complete)."""
    if conn.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE tgname LIKE :names"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :names"
    found = conn.execute(sa.text(query), {"names": f"{PREFIX}%"}).scalars()
    return set(trigger_names()) <= set(found)


def install(engine: sa.Engine) -> list[str]:
    """Create the queue and the triggers (again, if present); what was created, in words."""
    with engine.begin() as conn:
        queue_metadata.create_all(conn)
        for tracked in TRACKED:
            for event in tracked.events:
                for sql in _trigger_sql(conn.dialect.name, tracked, event):
                    conn.exec_driver_sql(sql)
    return [f"trigger {name}" for name in trigger_names()] + [f"table {queue.name}"]


def remove(engine: sa.Engine) -> list[str]:
    """Drop the triggers, their functions and the queue; what was dropped, in words."""
    with engine.begin() as conn:
        for tracked in TRACKED:
            for event in tracked.events:
                name = _name(tracked, event)
                conn.exec_driver_sql(
                    f"DROP TRIGGER IF EXISTS {name} ON {tracked.table}"
                    if conn.dialect.name == "postgresql"
                    else f"DROP TRIGGER IF EXISTS {name}"
                )
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}()")
        queue_metadata.drop_all(conn)
    return [f"trigger {name}" for name in trigger_names()] + [f"table {queue.name}"]


def _trigger_sql(dialect: str, tracked: Tracked, event: str) -> list[str]:
    name, columns = _name(tracked, event), MADE_FROM[tracked.table]
    if dialect == "postgresql":
        return _postgres(name, tracked, event, columns)
    return _sqlite(name, tracked, event, columns)


def _postgres(name: str, tracked: Tracked, event: str, columns: Sequence[str]) -> list[str]:
    """A statement-level trigger reading the statement's transition tables."""
    pk = tracked.primary_key
    if event == "UPDATE" and not tracked.compare:  # every row's key, before and after
        selects = [
            f"SELECT '{kind}', {key} FROM new_rows UNION ALL SELECT '{kind}', {key} FROM old_rows"
            for kind, key in tracked.queues
        ]
        referencing = "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    elif event == "UPDATE":
        new, old = [f"n.{c}" for c in columns], [f"o.{c}" for c in columns]
        changed = f"({', '.join(new)}) IS DISTINCT FROM ({', '.join(old)})"
        # One pass over the statement's rows: each changed row names its key before and after
        # (the same, unless the row moved to another card or player).
        selects = [
            f"SELECT '{kind}', k FROM new_rows n JOIN old_rows o ON o.{pk} = n.{pk} "
            f"CROSS JOIN LATERAL (VALUES (n.{key}), (o.{key})) AS keys(k) WHERE {changed}"
            for kind, key in tracked.queues
        ]
        referencing = "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    else:
        rows = "new_rows" if event == "INSERT" else "old_rows"
        selects = [f"SELECT '{kind}', {key} FROM {rows}" for kind, key in tracked.queues]
        referencing = f"REFERENCING {'NEW' if event == 'INSERT' else 'OLD'} TABLE AS {rows}"
    body = " UNION ALL ".join(selects)
    return [
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $pd$ BEGIN "
        f"INSERT INTO {queue.name} (kind, changed_id) SELECT DISTINCT kind, changed_id FROM "
        f"({body}) AS changed(kind, changed_id) WHERE changed_id IS NOT NULL; RETURN NULL; "
        "END $pd$",
        f"DROP TRIGGER IF EXISTS {name} ON {tracked.table}",
        f"CREATE TRIGGER {name} AFTER {event} ON {tracked.table} {referencing} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


def _sqlite(name: str, tracked: Tracked, event: str, columns: Sequence[str]) -> list[str]:
    """A row-level trigger (SQLite has no transition tables)."""
    when = ""
    inserts = []
    for kind, key in tracked.queues:
        row = "OLD" if event == "DELETE" else "NEW"
        inserts.append(
            f"INSERT INTO {queue.name} (kind, changed_id) SELECT '{kind}', {row}.{key} "
            f"WHERE {row}.{key} IS NOT NULL;"
        )
        if event == "UPDATE":  # the row moved to another card or player: that one changed too
            inserts.append(
                f"INSERT INTO {queue.name} (kind, changed_id) SELECT '{kind}', OLD.{key} "
                f"WHERE OLD.{key} IS NOT NEW.{key} AND OLD.{key} IS NOT NULL;"
            )
    if event == "UPDATE" and tracked.compare:
        when = "WHEN " + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    return [
        f"DROP TRIGGER IF EXISTS {name}",
        f"CREATE TRIGGER {name} AFTER {event} ON {tracked.table} FOR EACH ROW {when} "
        f"BEGIN {' '.join(inserts)} END",
    ]


@dataclass(frozen=True)
class Queued:
    """What a read of the queue found: the rows' ids, the cards they name, and the broad kinds
    (cardsets and rarities) whose every card changed."""

    ids: list[int]
    cards: dict[str, set[int]]  # card type -> card ids
    broad: dict[str, set[int]]  # "cardset"/"rarity" -> ids


def read(conn: sa.Connection, limit: int) -> Queued:
    """The oldest `limit` queue rows (through its primary key), with the cards they name. On
    PostgreSQL the rows are locked, and rows another drain holds are skipped."""
    query = sa.select(queue.c.id, queue.c.kind, queue.c.changed_id)
    query = query.order_by(queue.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    cards: dict[str, set[int]] = {t: set() for t in schema.CARD_TABLES}
    players, broad = set(), {kind: set() for kind in BROAD}
    for _, kind, key in rows:
        if kind in cards:
            cards[kind].add(key)
        elif kind == "player":
            players.add(key)
        else:
            broad[kind].add(key)
    if players:
        for card_type, table in schema.CARD_TABLES.items():
            of_players = sa.select(table.c.id).where(table.c.player_id.in_(sorted(players)))
            cards[card_type] |= set(conn.scalars(of_players))
    return Queued([row.id for row in rows], cards, broad)


def forget(conn: sa.Connection, ids: Sequence[int]) -> None:
    """Remove the queue rows a drain handled (in the transaction that recorded what it found)."""
    for start in range(0, len(ids), 5000):
        conn.execute(sa.delete(queue).where(queue.c.id.in_(ids[start : start + 5000])))


def waiting(conn: sa.Connection) -> int:
    """Queue rows not drained yet."""
    return conn.scalar(sa.select(sa.func.count()).select_from(queue))
