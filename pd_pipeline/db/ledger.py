"""Reading and writing `card_render`, the pipeline's own table. What the rows mean, and which
change is made when, is `images.state`'s to say: this module only moves rows in and out."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pd_pipeline.db.engine import chunks, gc_paused
from pd_pipeline.db.schema import card_render


class LedgerStatus(StrEnum):
    """What the pipeline last did for a card (the `status` column); the card's state is
    `images.state`'s to decide from it."""

    TAKEN = "pending"  # a run or a sweep took note of the card; nothing made yet
    MADE = "stored"  # an object of its inputs was made (or found) and confirmed in the store
    RENDER_FAILED = "failed"  # its render failed for its own data (see `error`)
    KEPT = "adopted"  # the row's own URL, made by someone else, was confirmed and is kept


@dataclass(frozen=True)
class Entry:
    """One ledger row (see `schema.card_render` for what each column holds)."""

    card_type: str
    card_id: int
    status: str
    image: str = "png"
    cardset_id: int | None = None
    player_id: int | None = None
    variant: int | None = None
    input_hash: str | None = None
    data_hash: str | None = None
    template_version: str | None = None
    object_key: str | None = None
    png_sha256: str | None = None
    png_md5: str | None = None
    png_bytes: int | None = None
    url: str | None = None
    seen_url: str | None = None
    flag: str | None = None
    found_by: str | None = None
    error: str | None = None
    run_id: str | None = None
    release: str | None = None
    first_pending_at: dt.datetime | None = None
    rendered_at: dt.datetime | None = None
    written_at: dt.datetime | None = None


_COLUMNS = [f.name for f in fields(Entry)]
KEY = ["card_type", "card_id", "image"]
_TIMES = [_COLUMNS.index(name) for name in ("first_pending_at", "rendered_at", "written_at")]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _entry(row: sa.Row) -> Entry:
    values = list(row)  # the columns in Entry's order: positional, as a cardset has thousands
    for i in _TIMES:  # SQLite hands back naive datetimes; the ledger writes UTC
        moment = values[i]
        if moment is not None and moment.tzinfo is None:
            values[i] = moment.replace(tzinfo=dt.UTC)
    return Entry(*values)


def entries(
    conn: sa.Connection, card_type: str, card_ids: Sequence[int], image: str = "png"
) -> dict[int, Entry]:
    """The ledger rows of one image of the cards (`png`, or `apng`), by card id (cards never seen
    have none)."""
    out = {}
    with gc_paused():
        for chunk in chunks(card_ids):
            query = sa.select(*[card_render.c[name] for name in _COLUMNS]).where(
                card_render.c.card_type == card_type,
                card_render.c.image == image,
                card_render.c.card_id.in_(chunk),
            )
            out.update({row.card_id: _entry(row) for row in conn.execute(query).all()})
    return out


def upsert(
    conn: sa.Connection,
    rows: list[dict[str, Any]],
    *,
    keep: Sequence[str] = (),
    insert_only: Sequence[str] = (),
) -> None:
    """Insert or update ledger rows (keyed by card_type, card_id, image), a statement per shape.

    Columns named in `keep` keep their stored value when it is not NULL (e.g. first_pending_at:
    the time the pipeline *first* saw the card waiting); columns in `insert_only` are set only
    on rows that did not exist.
    """
    by_shape: dict[tuple, list] = {}
    for row in rows:
        by_shape.setdefault(tuple(row), []).append(row)
    for shaped in by_shape.values():
        _upsert(conn, shaped, keep, insert_only)


def _upsert(conn, rows: list[dict[str, Any]], keep: Sequence[str], insert_only: Sequence[str]):
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        card_render
    )
    columns = [c for c in rows[0] if c not in (*KEY, *insert_only)]
    updates = {
        c: sa.func.coalesce(card_render.c[c], insert.excluded[c])
        if c in keep
        else insert.excluded[c]
        for c in columns
    }
    statement = insert.on_conflict_do_update(index_elements=KEY, set_=updates)
    # Key order: two workers upserting overlapping cards lock rows in the same order, no deadlock.
    rows = sorted(rows, key=lambda row: tuple(row[k] for k in KEY))
    for chunk in chunks(rows, 1000):
        conn.execute(statement, list(chunk))


def update(
    conn: sa.Connection,
    card_type: str,
    card_ids: Sequence[int],
    values: dict[str, Any],
    image: str = "png",
) -> None:
    """Set the same `values` (constants or SQL expressions) on one image's rows of `card_ids`."""
    for chunk in chunks(sorted(card_ids)):
        conn.execute(
            sa.update(card_render)
            .where(
                card_render.c.card_type == card_type,
                card_render.c.image == image,
                _one_of(conn, chunk),
            )
            .values(values)
        )


def delete(conn: sa.Connection, card_type: str, card_ids: Sequence[int], image: str) -> None:
    """Drop one image's rows of `card_ids` (an image the design no longer makes)."""
    for chunk in chunks(sorted(card_ids)):
        conn.execute(
            sa.delete(card_render).where(
                card_render.c.card_type == card_type,
                card_render.c.image == image,
                _one_of(conn, chunk),
            )
        )


def _one_of(conn: sa.Connection, ids: Sequence[int]) -> sa.ColumnElement:
    """`card_id IN (ids)`; on PostgreSQL as one array parameter, not one per id."""
    if conn.dialect.name == "postgresql":
        array = sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.Integer))
        return card_render.c.card_id == sa.any_(array)
    return card_render.c.card_id.in_(ids)
