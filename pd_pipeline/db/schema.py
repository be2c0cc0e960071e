"""The card database's tables (Paper Dynasty's names: a contract with other tools) and our ledger.

The pipeline reads the card tables and writes only their `image_url` columns. `card_render` is
the one table the pipeline owns: the hand-off between rendering and write-back, and the
idempotency ledger.
"""

import sqlalchemy as sa

from pd_pipeline.model import BATTING_RESULTS, PITCHING_RESULTS

metadata = sa.MetaData()


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _chances(names: tuple[str, ...]) -> list[sa.Column]:
    return [sa.Column(n, sa.Float) for n in names] + [
        sa.Column(n, sa.Float) for n in ("avg", "obp", "slg")
    ]


cardset = sa.Table(
    "cardset",
    metadata,
    _id(),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text),
)

rarity = sa.Table(
    "rarity",
    metadata,
    _id(),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("color", sa.String(16), nullable=False),
)

player = sa.Table(
    "player",
    metadata,
    sa.Column("player_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("p_name", sa.String(255), nullable=False),
    sa.Column("cardset_id", sa.Integer, sa.ForeignKey("cardset.id")),
    sa.Column("rarity_id", sa.Integer, sa.ForeignKey("rarity.id")),
    sa.Column("mlbclub", sa.String(100)),
    sa.Column("franchise", sa.String(100)),
    *[sa.Column(f"pos_{i}", sa.String(8)) for i in range(1, 9)],
    sa.Column("bbref_id", sa.String(32)),
)

battingcard = sa.Table(
    "battingcard",
    metadata,
    _id(),
    sa.Column("player_id", sa.Integer, sa.ForeignKey("player.player_id"), nullable=False),
    sa.Column("variant", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("steal_low", sa.Integer),
    sa.Column("steal_high", sa.Integer),
    sa.Column("steal_auto", sa.Boolean),
    sa.Column("steal_jump", sa.Float),
    sa.Column("bunting", sa.String(2)),
    sa.Column("hit_and_run", sa.String(2)),
    sa.Column("running", sa.Integer),
    sa.Column("offense_col", sa.Integer),
    sa.Column("hand", sa.String(1)),
    sa.Column("image_url", sa.Text, nullable=True),
    # the animated image's URL (T3/T4): made by init-db; on an existing database only by
    # `pd-pipeline add-animated-column` (`db.animated`)
    sa.Column("animated_url", sa.Text, nullable=True),
    sa.UniqueConstraint("player_id", "variant", name="battingcard_player_variant"),
)

battingcardratings = sa.Table(
    "battingcardratings",
    metadata,
    _id(),
    sa.Column("battingcard_id", sa.Integer, sa.ForeignKey("battingcard.id"), nullable=False),
    sa.Column("vs_hand", sa.String(1), nullable=False),
    *_chances(BATTING_RESULTS),
    sa.UniqueConstraint("battingcard_id", "vs_hand", name="battingcardratings_card_hand"),
)

pitchingcard = sa.Table(
    "pitchingcard",
    metadata,
    _id(),
    sa.Column("player_id", sa.Integer, sa.ForeignKey("player.player_id"), nullable=False),
    sa.Column("variant", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("balk", sa.Integer),
    sa.Column("wild_pitch", sa.Integer),
    sa.Column("hold", sa.Integer),
    sa.Column("starter_rating", sa.Integer),
    sa.Column("relief_rating", sa.Integer),
    sa.Column("closer_rating", sa.Integer),
    sa.Column("batting", sa.String(16)),
    sa.Column("offense_col", sa.Integer),
    sa.Column("hand", sa.String(1)),
    sa.Column("image_url", sa.Text, nullable=True),
    # the animated image's URL (T3/T4): made by init-db; on an existing database only by
    # `pd-pipeline add-animated-column` (`db.animated`)
    sa.Column("animated_url", sa.Text, nullable=True),
    sa.UniqueConstraint("player_id", "variant", name="pitchingcard_player_variant"),
)

pitchingcardratings = sa.Table(
    "pitchingcardratings",
    metadata,
    _id(),
    sa.Column("pitchingcard_id", sa.Integer, sa.ForeignKey("pitchingcard.id"), nullable=False),
    sa.Column("vs_hand", sa.String(1), nullable=False),
    *_chances(PITCHING_RESULTS),
    sa.UniqueConstraint("pitchingcard_id", "vs_hand", name="pitchingcardratings_card_hand"),
)

cardposition = sa.Table(
    "cardposition",
    metadata,
    _id(),
    sa.Column("player_id", sa.Integer, sa.ForeignKey("player.player_id"), nullable=False),
    sa.Column("variant", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("position", sa.String(4), nullable=False),
    sa.Column("innings", sa.Integer),
    sa.Column("range", sa.Integer),
    sa.Column("error", sa.Integer),
    sa.Column("arm", sa.Integer),
    sa.Column("pb", sa.Integer),
    sa.Column("overthrow", sa.Integer),
)

CARD_TABLES = {"battingcard": battingcard, "pitchingcard": pitchingcard}
RATINGS_TABLES = {"battingcard": battingcardratings, "pitchingcard": pitchingcardratings}


ledger_metadata = sa.MetaData()

# One row per card row and image (card_type, card_id, image: 'png' or 'apng'): what the pipeline
# last made for it. Which state a card's image is in, and every change to these rows, is decided
# in `images.state`; `db.migrations` brings a table of an earlier release to this shape.
card_render = sa.Table(
    "card_render",
    ledger_metadata,
    sa.Column("card_type", sa.String(16), nullable=False),
    sa.Column("card_id", sa.Integer, nullable=False),
    sa.Column("image", sa.String(8), nullable=False, server_default="png"),
    sa.Column("cardset_id", sa.Integer),
    sa.Column("player_id", sa.Integer),
    sa.Column("variant", sa.BigInteger),
    # what the pipeline last did: `ledger.LedgerStatus`
    sa.Column("status", sa.String(16), nullable=False),
    # sha256 of the render inputs the object shows (card data + design), of the card data alone,
    # and the design's version
    sa.Column("input_hash", sa.String(64)),
    sa.Column("data_hash", sa.String(64)),
    sa.Column("template_version", sa.String(64)),
    sa.Column("object_key", sa.Text),
    sa.Column("png_sha256", sa.String(64)),  # of the object's bytes (a PNG or an APNG)
    sa.Column("png_md5", sa.String(32)),  # what the store reports as a single-part ETag
    sa.Column("png_bytes", sa.Integer),
    # the URL the row should carry: written back only once the object is confirmed in the store
    sa.Column("url", sa.Text),
    # the row's URL when a run last read it: a URL other than this or `url` is someone else's
    sa.Column("seen_url", sa.Text),
    # why the card waits for a run, set where a sweep or a write-back finds work (the sensor's
    # backlog reads it through a partial index); cleared once the card is done
    sa.Column("flag", sa.String(32)),
    # how the work was found: a tracked change, the sweep, a write-back, the first look, the
    # nightly reconcile, a NULL URL (`images.state` names them); cleared once the URL is written
    sa.Column("found_by", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("run_id", sa.String(64)),  # the last Dagster run that changed this row
    sa.Column("release", sa.String(32)),  # the pd_pipeline release that wrote it
    sa.Column("first_pending_at", sa.DateTime(timezone=True)),
    sa.Column("rendered_at", sa.DateTime(timezone=True)),
    sa.Column("written_at", sa.DateTime(timezone=True)),
    sa.PrimaryKeyConstraint("card_type", "card_id", "image", name="card_render_key"),
)

# Literal, not bound parameters: SQLite uses a partial index only when the query's condition
# matches the index's text.
flagged = sa.text("card_render.flag IS NOT NULL")
_flagged = sa.text("flag IS NOT NULL")
sa.Index("card_render_cardset_written", card_render.c.cardset_id, card_render.c.written_at)
sa.Index(
    "card_render_flagged",
    card_render.c.cardset_id,
    postgresql_where=_flagged,
    sqlite_where=_flagged,
)
# The cards waiting for a valid URL, by how long (the backlog alert and check ask for the oldest).
waiting = sa.text("card_render.first_pending_at IS NOT NULL")
_waiting = sa.text("first_pending_at IS NOT NULL")
sa.Index(
    "card_render_waiting",
    card_render.c.first_pending_at,
    postgresql_where=_waiting,
    sqlite_where=_waiting,
)

# Which migrations of the pipeline's tables a database has had (`db.migrations`).
card_render_schema = sa.Table(
    "card_render_schema",
    ledger_metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("release", sa.String(32), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)


def create_card_tables(engine: sa.Engine) -> None:
    """Create the card tables (for an empty database: `pd-pipeline init-db`) and the
    pipeline's own."""
    from pd_pipeline.db.migrations import migrate

    metadata.create_all(engine)
    migrate(engine)
