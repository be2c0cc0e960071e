"""The card database's tables (Paper Dynasty's names: a contract with other tools) and our ledger.

The pipeline reads the card tables and writes only their `image_url` columns. `card_render` is
the one table the pipeline owns: the hand-off between rendering and write-back, and the
idempotency ledger.
"""

import sqlalchemy as sa

metadata = sa.MetaData()

BATTING_RESULTS = (
    "homerun", "bp_homerun", "triple", "double_three", "double_two", "double_pull",
    "single_two", "single_one", "single_center", "bp_single", "hbp", "walk", "strikeout",
    "lineout", "popout", "flyout_a", "flyout_bq", "flyout_lf_b", "flyout_rf_b",
    "groundout_a", "groundout_b", "groundout_c",
)  # fmt: skip
PITCHING_RESULTS = (
    "homerun", "bp_homerun", "triple", "double_three", "double_two", "double_cf",
    "single_two", "single_one", "single_center", "bp_single", "hbp", "walk", "strikeout",
    "flyout_lf_b", "flyout_cf_b", "flyout_rf_b", "groundout_a", "groundout_b",
    "xcheck_p", "xcheck_c", "xcheck_1b", "xcheck_2b", "xcheck_3b", "xcheck_ss",
    "xcheck_lf", "xcheck_cf", "xcheck_rf",
)  # fmt: skip
CHANCES_PER_SIDE = 108


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
RESULTS = {"battingcard": BATTING_RESULTS, "pitchingcard": PITCHING_RESULTS}

ledger_metadata = sa.MetaData()

# One row per card row (card_type, card_id): what the pipeline last made for it.
card_render = sa.Table(
    "card_render",
    ledger_metadata,
    sa.Column("card_type", sa.String(16), primary_key=True),
    sa.Column("card_id", sa.Integer, primary_key=True),
    sa.Column("cardset_id", sa.Integer),
    sa.Column("player_id", sa.Integer),
    sa.Column("variant", sa.BigInteger),
    # sha256 of the render inputs (card data + template version) the stored PNG shows
    sa.Column("input_hash", sa.String(64)),
    sa.Column("object_key", sa.Text),
    sa.Column("png_sha256", sa.String(64)),
    sa.Column("png_bytes", sa.Integer),
    # the URL the row should carry: written back only once the object is confirmed in the store
    sa.Column("url", sa.Text),
    # the row's image_url when the pipeline read it: write-back leaves the row alone if it moved on
    sa.Column("seen_url", sa.Text),
    # 'stored' (object confirmed in the store), 'failed' (see error), or needing work: 'pending'
    # (a run planned it) and 'stale' (a sweep found its data or URL no longer match)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("first_pending_at", sa.DateTime(timezone=True)),
    sa.Column("rendered_at", sa.DateTime(timezone=True)),
    sa.Column("written_at", sa.DateTime(timezone=True)),
)


NEEDS_WORK = ("pending", "stale")
# Literal, not bound parameters: SQLite uses a partial index only when the query's condition
# matches the index's text.
needs_work = sa.text("card_render.status IN ('pending', 'stale')")
_needs_work = sa.text("status IN ('pending', 'stale')")
sa.Index("card_render_cardset_written", card_render.c.cardset_id, card_render.c.written_at)
sa.Index(
    "card_render_needs_work",
    card_render.c.cardset_id,
    postgresql_where=_needs_work,
    sqlite_where=_needs_work,
)


def create_card_tables(engine: sa.Engine) -> None:
    """Create the card tables (for an empty database: `pd-pipeline init-db`) and the ledger."""
    metadata.create_all(engine)
    create_ledger(engine)


def create_ledger(engine: sa.Engine) -> None:
    """Create the pipeline's own table and its indexes if missing; safe to call on every run."""
    ledger_metadata.create_all(engine)
    for index in card_render.indexes:
        index.create(engine, checkfirst=True)
