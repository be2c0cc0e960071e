"""Which cards a design preview shows (`pd-pipeline preview`, the `design_preview` asset),
picked from the card database, and their current images.

The cards shown are the ones a design most often gets wrong: both types in every tier present,
the longest names, and the extremes of the data (most and fewest home runs, most strikeouts,
the longest defence line). An empty or missing database falls back to the built-in samples.
Where a card's `image_url` names an object in the store, that image is the "before" of the
comparison. Only reads: no row, ledger entry or object is written.
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.engine import make_engine
from pd_pipeline.model import CARD_TYPES, Card, tier_of
from pd_pipeline.render.pages import CardPages
from pd_pipeline.render.preview import (
    Preview,
    PreviewCard,
    render_animated_samples,
    render_samples,
    write_preview,
)
from pd_pipeline.render.samples import Sample, builtin_samples
from pd_pipeline.storage.keys import key_of_url
from pd_pipeline.storage.stores import STORE_ERRORS, ObjectStore

DEFAULT_CARDS = 16
ANIMATED_CARDS = 4  # of them, or of the built-in samples, made moving too


def preview(
    pages: CardPages,
    chromium: str,
    out: Path,
    *,
    database_url: str,
    store: ObjectStore | None = None,
    cards: int = DEFAULT_CARDS,
    player_ids: Sequence[int] = (),
) -> Preview:
    """Render the picked cards (or the built-in samples) in `pages`' design into `out`, with a
    before/after comparison for those whose current image is in `store`, and a few animated
    cards' APNGs (with sheets of their frames) into `out/animated`."""
    rendered = preview_cards(
        pages, chromium, database_url=database_url, store=store, cards=cards, player_ids=player_ids
    )
    made = write_preview(out, pages.version, rendered)
    # The picked cards that animate, or the built-in samples of the animated tiers.
    moving = [c.sample for c in rendered if c.png and pages.animation(c.sample.card)]
    moving = moving or [s for s in builtin_samples() if pages.animation(s.card)]
    if moving:
        made.animated, made.animation_errors = render_animated_samples(
            pages, moving[:ANIMATED_CARDS], chromium, out / "animated"
        )
    return made


def preview_cards(
    pages: CardPages,
    chromium: str,
    *,
    database_url: str,
    store: ObjectStore | None = None,
    cards: int = DEFAULT_CARDS,
    player_ids: Sequence[int] = (),
) -> list[PreviewCard]:
    """The picked cards (or the built-in samples) rendered in `pages`' design, each compared
    with its current image where `store` has it; nothing written."""
    engine = open_existing(database_url)
    samples = pick_cards(engine, cards, player_ids) if engine is not None else []
    if not samples and not player_ids:
        samples = builtin_samples()[:cards]
    befores = [current_image(store, s.card) for s in samples]
    return render_samples(pages, samples, chromium, befores)


def open_existing(url: str) -> sa.Engine | None:
    """The card database, or None when there is none to read (no file, no card tables): a
    preview never creates one."""
    parsed = sa.make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and not (parsed.database and Path(parsed.database).expanduser().is_file()):
        return None
    engine = make_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    return engine if {schema.player.name, *CARD_TYPES} <= names else None


def pick_cards(engine: sa.Engine, count: int, player_ids: Sequence[int] = ()) -> list[Sample]:
    """`count` cards showing the most of a design (or every card of `player_ids`), labelled
    with why each was picked; both types take turns."""
    with engine.connect() as conn:
        if player_ids:
            reasons = {t: _players_cards(conn, t, player_ids) for t in CARD_TYPES}
        else:
            reasons = {t: _interesting(conn, t) for t in CARD_TYPES}
        loaded = {
            t: {c.card_id: c for c in load_cards(conn, t, card_ids=list(reasons[t]))}
            for t in CARD_TYPES
        }
    queues = [
        [Sample(" · ".join(why), loaded[t][i]) for i, why in reasons[t].items() if i in loaded[t]]
        for t in CARD_TYPES
    ]
    turns = [s for pair in _zip_all(*queues) for s in pair if s is not None]
    return turns if player_ids else turns[:count]


def current_image(store: ObjectStore | None, card: Card) -> bytes | None:
    """The bytes behind the card's `image_url`, if that names an object in `store`."""
    if store is None or not card.image_url:
        return None
    key = key_of_url(store.public_base_url, card.image_url)
    if key is None:
        return None
    try:
        return store.get(key)
    except (*STORE_ERRORS, ValueError):  # gone, unreadable, or a key outside the store
        return None


def _players_cards(conn: sa.Connection, card_type: str, player_ids: Sequence[int]) -> dict:
    table = schema.CARD_TABLES[card_type]
    query = (
        sa.select(table.c.id, table.c.player_id)
        .where(table.c.player_id.in_(player_ids))
        .order_by(table.c.player_id, table.c.variant, table.c.id)
    )
    return {card_id: [f"player {player_id}"] for card_id, player_id in conn.execute(query)}


def _interesting(conn: sa.Connection, card_type: str) -> dict[int, list[str]]:
    """Card id -> why it is worth a look, in the order they should be shown."""
    card, ratings = schema.CARD_TABLES[card_type], schema.RATINGS_TABLES[card_type]
    player, position = schema.player, schema.cardposition
    fk = ratings.c[f"{card_type}_id"]
    picks: dict[int, list[str]] = {}

    def add(reason: str, query) -> None:
        card_id = conn.scalar(query)
        if card_id is not None:
            picks.setdefault(card_id, []).append(reason)

    # Every tier present: a variant's tier is a hash of its number, so look at each variant.
    first_of_tier: dict[int, tuple[int, int]] = {}
    for variant, card_id in conn.execute(
        sa.select(card.c.variant, sa.func.min(card.c.id)).group_by(card.c.variant)
    ):
        tier = tier_of(variant)
        if tier not in first_of_tier or variant < first_of_tier[tier][0]:
            first_of_tier[tier] = (variant, card_id)
    for tier in sorted(first_of_tier):
        picks.setdefault(first_of_tier[tier][1], []).append(f"T{tier}")
    with_player = sa.select(card.c.id).join(player, card.c.player_id == player.c.player_id)
    name_length = sa.func.length(player.c.p_name)
    add("longest name", with_player.order_by(name_length.desc(), card.c.id).limit(1))
    for result, word in (("homerun", "home runs"), ("strikeout", "strikeouts")):
        total = sa.func.sum(ratings.c[result])
        per_card = sa.select(fk).group_by(fk)
        add(f"most {word}", per_card.order_by(total.desc(), fk).limit(1))
        add(f"fewest {word}", per_card.order_by(total.asc(), fk).limit(1))
    fielded = (
        sa.select(position.c.player_id)
        .group_by(position.c.player_id)
        .order_by(sa.func.count().desc(), position.c.player_id)
        .limit(1)
        .scalar_subquery()
    )
    add(
        "longest defence line",
        sa.select(sa.func.min(card.c.id)).where(card.c.player_id == fielded),
    )
    add(
        "second-longest name",
        with_player.where(card.c.id.not_in(list(picks)))
        .order_by(name_length.desc(), card.c.id)
        .limit(1),
    )
    return picks


def _zip_all(*queues: list) -> list[tuple]:
    longest = max((len(q) for q in queues), default=0)
    return [tuple(q[i] if i < len(q) else None for q in queues) for i in range(longest)]
