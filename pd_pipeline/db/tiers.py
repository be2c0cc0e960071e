"""A variant's tier in SQL, as `model.tier_of` computes it: so that the cards of the tiers a
design animates are found by the database, not by reading every card.

PostgreSQL computes the hash itself (`sha256`, PostgreSQL 11+); SQLite calls `tier_of`, which
`engine.make_engine` registers on its connections as `pd_tier`.
"""

import sqlalchemy as sa

from pd_pipeline.model import TIERS

SQLITE_FUNCTION = "pd_tier"


def tier(conn: sa.Connection, variant: sa.ColumnElement) -> sa.ColumnElement:
    """The tier of `variant` (a column or expression), in `conn`'s dialect."""
    if conn.dialect.name != "postgresql":
        return getattr(sa.func, SQLITE_FUNCTION)(variant)
    digest = sa.func.sha256(sa.func.convert_to(sa.cast(variant, sa.Text), "UTF8"))
    return sa.case((variant == 0, 0), else_=1 + sa.func.get_byte(digest, 0) % TIERS)


def of_tiers(conn: sa.Connection, variant: sa.ColumnElement, tiers) -> sa.ColumnElement:
    """Whether `variant`'s tier is one of `tiers` (false for none)."""
    tiers = sorted(tiers)
    if not tiers:
        return sa.false()
    return tier(conn, variant).in_(tiers)
