"""Objects under `cards/` that no card row uses, and removing them on purpose
(`pd-pipeline orphans`).

An object is used when it sits at a card row's own key (its PNG's, and its APNG's while the
ledger holds one) or a row's `image_url` or `animated_url` names it (whatever cardset that row is
in). The store is listed before the rows are read, so an object a run uploads meanwhile belongs
to a row already there, or is younger than the grace period: only orphans older than that are
ever deleted.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.animated import has_column
from pd_pipeline.db.ledger import utcnow
from pd_pipeline.images.inventory import listed, unavailable
from pd_pipeline.model import CARD_TYPES, Image
from pd_pipeline.storage.keys import key_of_url, object_key
from pd_pipeline.storage.stores import Listed, ObjectStore

ROOT = "cards/"


@dataclass(frozen=True)
class Orphan:
    key: str
    size: int
    last_modified: dt.datetime | None


@dataclass
class Orphans:
    grace: dt.timedelta
    old: list[Orphan] = field(default_factory=list)  # past the grace period: may be deleted
    young: list[Orphan] = field(default_factory=list)  # kept (or of unknown age)

    @property
    def old_bytes(self) -> int:
        return sum(o.size for o in self.old)


def find_orphans(
    engine: sa.Engine,
    store: ObjectStore,
    grace: dt.timedelta,
    cardset_ids: Sequence[int] = (),
    now: dt.datetime | None = None,
) -> Orphans:
    """The orphans in the folders of `cardset_ids` (every folder under `cards/` if none)."""
    if cardset_ids:
        listing = {k: v for c in cardset_ids for k, v in listed(store, c).items()}
    else:
        with unavailable(store):
            listing = dict(store.list(ROOT))
    used = used_keys(engine, store.public_base_url)
    now = now or utcnow()
    found = Orphans(grace)
    for key, item in sorted(listing.items()):
        if key in used:
            continue
        orphan = Orphan(key, item.size, item.last_modified)
        (found.old if _older(item, now, grace) else found.young).append(orphan)
    return found


def _older(item: Listed, now: dt.datetime, grace: dt.timedelta) -> bool:
    return item.last_modified is not None and now - item.last_modified >= grace


def used_keys(engine: sa.Engine, public_base_url: str) -> set[str]:
    """Every key a card row uses: its own PNG's, the APNG's the ledger holds for it (an animation
    its design dropped is retired from the ledger), and those its URLs name."""
    used = set()
    player, entry = schema.player, schema.card_render
    with engine.connect() as conn:
        for card_type in CARD_TYPES:
            card = schema.CARD_TABLES[card_type]
            animated = card.c.animated_url if has_column(conn, card_type) else sa.null()
            query = sa.select(
                player.c.cardset_id, card.c.player_id, card.c.variant, card.c.image_url, animated
            ).select_from(card.outerjoin(player, card.c.player_id == player.c.player_id))
            for cardset_id, player_id, variant, *urls in conn.execute(query):
                if cardset_id is not None:
                    used.add(object_key(card_type, cardset_id, player_id, variant))
                used |= {key_of_url(public_base_url, url) for url in urls if url is not None}
        query = sa.select(entry.c.object_key).where(entry.c.image == Image.ANIMATED)
        used |= set(conn.scalars(query))
    used.discard(None)
    return used


def delete_old(store: ObjectStore, found: Orphans) -> None:
    """Remove the orphans past the grace period."""
    with unavailable(store):
        for orphan in found.old:
            store.delete(orphan.key)
