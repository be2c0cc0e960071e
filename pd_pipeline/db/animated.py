"""The card tables' `animated_url` column, where the URL of a card's animated image is written.

`pd-pipeline init-db` makes it with the tables. On an existing database it is added only when an
operator asks (`pd-pipeline add-animated-column`): the card tables are otherwise never altered.
Without it animated images are still made and stored; their URLs wait for the column.
"""

import sqlalchemy as sa

from pd_pipeline.db import schema

COLUMN = "animated_url"
LOCK_TIMEOUT = "10s"  # ALTER TABLE waits this long for the table's lock, holding others back
_present: set[tuple[str, str]] = set()  # (database, table): a column once there stays there


def has_column(conn: sa.Connection, card_type: str) -> bool:
    """Whether the card table has the column (asked of the database until it has)."""
    table = schema.CARD_TABLES[card_type].name
    where = (conn.engine.url.render_as_string(hide_password=True), table)
    if where not in _present:
        columns = {c["name"] for c in sa.inspect(conn).get_columns(table)}
        if COLUMN not in columns:
            return False
        _present.add(where)
    return True


def add_column(engine: sa.Engine) -> list[str]:
    """Add the column to each card table lacking it (nullable, no default: no row is
    rewritten); the statements run."""
    done = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # not queued behind a long transaction for long
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        for card_type, table in schema.CARD_TABLES.items():
            if not has_column(conn, card_type):
                sql = f"ALTER TABLE {table.name} ADD COLUMN {COLUMN} TEXT"
                conn.exec_driver_sql(sql)
                done.append(sql)
    return done
