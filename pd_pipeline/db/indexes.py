"""Indexes that keep the sensor's queries cheap on large card tables.

The card tables belong to other tools, so these are added only on request (`pd-pipeline
add-indexes`, also part of `pd-pipeline init-db`): partial indexes over the rows still waiting
for an image, and the foreign keys the render inputs are read by. Every statement is idempotent.
"""

import sqlalchemy as sa

# (name, table, columns, only rows still waiting for an image)
CARD_INDEXES = [
    # The backlog: a partial index over NULL image_url rows stays as small as the backlog.
    ("pd_battingcard_pending", "battingcard", "player_id", True),
    ("pd_pitchingcard_pending", "pitchingcard", "player_id", True),
    ("pd_player_cardset", "player", "cardset_id", False),
    ("pd_battingcardratings_card", "battingcardratings", "battingcard_id", False),
    ("pd_pitchingcardratings_card", "pitchingcardratings", "pitchingcard_id", False),
    ("pd_cardposition_player", "cardposition", "player_id, variant", False),
]


def _statement(name: str, table: str, columns: str, pending: bool, dialect: str) -> str:
    where = " WHERE image_url IS NULL" if pending else ""
    concurrently = " CONCURRENTLY" if dialect == "postgresql" else ""
    return f"CREATE INDEX{concurrently} IF NOT EXISTS {name} ON {table} ({columns}){where}"


def add_indexes(engine: sa.Engine) -> list[str]:
    """Create the missing indexes (on PostgreSQL without blocking writers); returns the SQL run."""
    statements = [_statement(*index, engine.dialect.name) for index in CARD_INDEXES]
    if engine.dialect.name == "postgresql":
        # CREATE INDEX CONCURRENTLY cannot run inside a transaction block.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    else:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    return statements


def missing_indexes(engine: sa.Engine) -> list[str]:
    inspector = sa.inspect(engine)
    present = {
        index["name"]
        for table in {table for _, table, _, _ in CARD_INDEXES}
        for index in inspector.get_indexes(table)
    }
    return [name for name, *_ in CARD_INDEXES if name not in present]
