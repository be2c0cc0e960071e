"""Reading cards with everything their image shows (their render inputs) from the card tables."""

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from pd_pipeline.db import schema as s
from pd_pipeline.db.animated import COLUMN, has_column
from pd_pipeline.db.engine import gc_paused
from pd_pipeline.model import CARD_FIELDS, FIELDING_FIELDS, RESULTS, Card

# A ratings row's values, per card type: its outcomes' chances and the slash line.
RATING_NAMES = {kind: (*results, "avg", "obp", "slg") for kind, results in RESULTS.items()}
POSITIONS = tuple(f"pos_{i}" for i in range(1, 9))
# What a card's image is made from, table by table: every column `load_cards` reads (besides
# ids). A change to any of them changes a card; `db.changes` tracks exactly these.
MADE_FROM = {
    **{kind: ("player_id", "variant", *fields) for kind, fields in CARD_FIELDS.items()},
    **{f"{kind}ratings": (f"{kind}_id", "vs_hand", *names) for kind, names in RATING_NAMES.items()},
    "player": ("p_name", "cardset_id", "rarity_id", "mlbclub", "franchise", "bbref_id",
               *POSITIONS),
    "cardposition": ("player_id", "variant", *FIELDING_FIELDS),
    "cardset": ("name",),
    "rarity": ("name", "color", "value"),
}  # fmt: skip


def _num(value: Any) -> Any:
    # Floats that are whole numbers hash and render the same on SQLite and PostgreSQL. Past
    # 2**53 a float is no exact whole number: it stays a float (1e+300, not 300 digits).
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def load_cards(
    conn: sa.Connection,
    card_type: str,
    *,
    cardset_id: int | None = None,
    card_ids: Sequence[int] | None = None,
    lock: bool = False,
    no_cardset: bool = False,
    cache: "CardCache | None" = None,
) -> list[Card]:
    """Cards of one type in a cardset (or by id), with player, rarity, ratings and fielding.

    With a `cache`, a whole cardset read again hands back the cards whose rows read back equal
    as they were: their JSON and hashes already made.

    `no_cardset` selects the cards whose player has no cardset instead: no partition renders
    them, so they are reported as failed cards (validation names `player.cardset_id`).
    `lock` takes row locks (PostgreSQL `FOR UPDATE` on the cards, `FOR SHARE` on their data) so a
    write-back can compare the data and update the row with nobody changing either in between.
    """
    card, ratings = s.CARD_TABLES[card_type], s.RATINGS_TABLES[card_type]
    p, r, cs = s.player, s.rarity, s.cardset
    chosen = []
    if cardset_id is not None:
        chosen.append(p.c.cardset_id == cardset_id)
    if card_ids is not None:
        chosen.append(card.c.id.in_(card_ids))
    if no_cardset:
        chosen.append(p.c.cardset_id.is_(None))
    cards_of = card.join(p, card.c.player_id == p.c.player_id)
    query = (
        sa.select(
            *[card.c[name] for name in ("id", "image_url", *MADE_FROM[card_type])],
            card.c.animated_url if has_column(conn, card_type) else sa.null().label(COLUMN),
            *[p.c[name] for name in MADE_FROM["player"]],
            r.c.name.label("rarity_name"),
            r.c.color.label("rarity_color"),
            r.c.value.label("rarity_value"),
            cs.c.name.label("cardset_name"),
        )  # fmt: skip
        .select_from(cards_of)
        .outerjoin(r, p.c.rarity_id == r.c.id)
        .outerjoin(cs, p.c.cardset_id == cs.c.id)
        .where(*chosen)
        .order_by(card.c.id)
    )
    lockable = lock and conn.dialect.name == "postgresql"
    if lockable:
        query = query.with_for_update(of=card)
    with gc_paused():
        rows = conn.execute(query).all()
        if not rows:
            return []
        # The cards' ratings and fielding, selected by the same conditions in the database: a
        # cardset's thousands of ids never travel as IN (...) lists.
        ids = sa.select(card.c.id).select_from(cards_of).where(*chosen)
        players = sa.select(card.c.player_id).select_from(cards_of).where(*chosen)
        ratings_of = _ratings(conn, card_type, ratings, ids, lockable)
        fielding = _fielding(conn, players, lockable)
        keep = cache is not None and cardset_id is not None and card_ids is None
        built = cache.get(card_type, cardset_id) if keep else {}
        read = {}
        for row in rows:
            # A variant without its own fielding rows plays like the base card.
            field = fielding.get((row.player_id, row.variant)) or fielding.get((row.player_id, 0))
            source = (tuple(row), ratings_of.get(row.id, ()), field or ())
            seen = built.get(row.id)
            same = seen is not None and seen[0] == source
            read[row.id] = seen if same else (source, _card(card_type, row._mapping, *source[1:]))
        if keep:
            cache.keep(card_type, cardset_id, read)
        return [made for _, made in read.values()]


class CardCache:
    """The cards of the cardsets read last, by the rows they were built from: a card read again
    from equal rows is the same card, its JSON and hashes already made. A run's checks read the
    cardsets its plan read, and building cards is most of such a read's cost. (Equal rows make
    identical inputs: each column reads back as one Python type.) At most `keep_cards` cards
    are kept (~8 KB each with their rows, JSON and hashes), or one cardset when it alone has
    more. The card database resource owns one per run."""

    def __init__(self, keep_cards: int = 20_000) -> None:
        self.keep_cards = keep_cards
        self._lock = threading.Lock()  # sensors and steps read in threads of one process
        self._cardsets: OrderedDict[tuple[str, int], dict[int, tuple[tuple, Card]]] = OrderedDict()

    def get(self, card_type: str, cardset_id: int) -> dict[int, tuple[tuple, Card]]:
        with self._lock:
            return self._cardsets.get((card_type, cardset_id), {})

    def keep(self, card_type: str, cardset_id: int, read: dict[int, tuple[tuple, Card]]) -> None:
        with self._lock:
            self._cardsets[(card_type, cardset_id)] = read
            self._cardsets.move_to_end((card_type, cardset_id))
            kept = sum(map(len, self._cardsets.values()))
            while kept > self.keep_cards and len(self._cardsets) > 1:
                kept -= len(self._cardsets.popitem(last=False)[1])


def _ratings(conn, card_type, table, ids, lock) -> dict[int, tuple[tuple, ...]]:
    """Each card's rating rows, `(vs_hand, *RATING_NAMES)`, in id order."""
    fk = table.c[f"{card_type}_id"]
    columns = [table.c[k] for k in ("vs_hand", *RATING_NAMES[card_type])]
    query = sa.select(fk, *columns).where(fk.in_(ids)).order_by(table.c.id)
    return _grouped(conn, query, 1, lock)


def _fielding(conn, players, lock) -> dict[tuple[int, int], tuple[tuple, ...]]:
    """Each (player, variant)'s fielding rows, FIELDING_FIELDS, in id order."""
    t = s.cardposition
    query = (
        sa.select(t.c.player_id, t.c.variant, *[t.c[f] for f in FIELDING_FIELDS])
        .where(t.c.player_id.in_(players))
        .order_by(t.c.id)
    )
    return _grouped(conn, query, 2, lock)


def _grouped(conn, query, width: int, lock: bool) -> dict:
    """The query's rows as tuples, grouped by their first `width` columns (which they lose)."""
    if lock:
        query = query.with_for_update(read=True)
    out: dict = defaultdict(list)
    for row in conn.execute(query).all():  # tuples: a cardset has tens of thousands
        out[row[0] if width == 1 else row[:width]].append(row[width:])
    return {key: tuple(rows) for key, rows in out.items()}


def _card(card_type: str, row: Any, rated: tuple, field: tuple) -> Card:
    positions = [row[name] for name in POSITIONS if row[name]]
    names, sides = RATING_NAMES[card_type], {}
    for hand, *values in rated:  # a side rated twice: its last row counts
        sides[hand] = dict(zip(names, map(_num, values), strict=True))
    inputs = {
        "player": {
            "id": row["player_id"],
            "name": row["p_name"],
            "mlbclub": row["mlbclub"],
            "franchise": row["franchise"],
            "bbref_id": row["bbref_id"],
            "positions": positions,
        },
        "cardset": {"id": row["cardset_id"], "name": row["cardset_name"]},
        "rarity": {
            "name": row["rarity_name"],
            "color": row["rarity_color"],
            "value": row["rarity_value"],
        },
        "variant": row["variant"],
        "card": {f: _num(row[f]) for f in CARD_FIELDS[card_type]},
        "ratings": dict(sorted(sides.items())),
        "fielding": [dict(zip(FIELDING_FIELDS, values, strict=True)) for values in field],
    }
    return Card(
        card_type=card_type,
        card_id=row["id"],
        player_id=row["player_id"],
        variant=row["variant"],
        cardset_id=row["cardset_id"],
        image_url=row["image_url"],
        inputs=inputs,
        animated_url=row["animated_url"],
    )


def cardset_ids(conn: sa.Connection) -> list[int]:
    """Every cardset that has players (whether or not the cardset row exists)."""
    query = sa.select(s.player.c.cardset_id).where(s.player.c.cardset_id.is_not(None)).distinct()
    return sorted(conn.scalars(query))
