"""Every card of a read with its ledger entry and the rule that applies to it: the one loop that
plan, audit, sweep and write-back share."""

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import sqlalchemy as sa

from pd_pipeline.db import candidates, ledger
from pd_pipeline.db.animated import has_column
from pd_pipeline.db.cards import CardCache, load_cards
from pd_pipeline.db.ledger import Entry
from pd_pipeline.images.state import FoundBy, Policy, Verdict, assess, noticed
from pd_pipeline.model import Card, Image


class Assessed(NamedTuple):
    card: Card
    entry: Entry | None
    verdict: Verdict


def survey(
    conn: sa.Connection,
    policy: Policy,
    card_type: str,
    *,
    cardset_id: int | None = None,
    card_ids: Sequence[int] | None = None,
    lock: bool = False,
    cache: CardCache | None = None,
    image: Image = Image.STATIC,
) -> Iterator[Assessed]:
    """The cards of one type in a cardset (or by id), each with the entry and verdict of one
    of its images, in id order. `lock` and `cache` are `load_cards`'."""
    cards = load_cards(conn, card_type, cardset_id=cardset_id, card_ids=card_ids, lock=lock,
                       cache=cache)  # fmt: skip
    yield from _assessed(conn, policy, card_type, cards, image)


def _assessed(
    conn: sa.Connection, policy: Policy, card_type: str, cards: list[Card], image: Image
) -> Iterator[Assessed]:
    ids = [card.card_id for card in cards]
    entries = ledger.entries(conn, card_type, ids, image)
    statics = ledger.entries(conn, card_type, ids) if image is Image.ANIMATED else {}
    for card in cards:
        entry = entries.get(card.card_id)
        verdict = assess(card, entry, policy, image, statics.get(card.card_id))
        yield Assessed(card, entry, verdict)


def notice(
    conn: sa.Connection,
    policy: Policy,
    card_type: str,
    card_ids: Sequence[int],
    now: dt.datetime,
    found_by: FoundBy,
) -> list[dict]:
    """The ledger rows work found outside a run writes for the cards (`state.noticed`): each
    image needing work flagged, or noted waiting. The cards are read once for both images."""
    cards = load_cards(conn, card_type, card_ids=card_ids) if card_ids else []
    rows = [
        noticed(*item, now, found_by, image)
        for image in Image
        for item in _assessed(conn, policy, card_type, cards, image)
    ]
    return [row for row in rows if row is not None]


def needing_a_look(
    conn: sa.Connection,
    policy: Policy,
    card_type: str,
    cardset_id: int,
    image: Image,
    roll_out: int = 0,
) -> set[int]:
    """Ids of the cardset's cards whose row or entry says one of their images may need work
    (`db.candidates`); for the animated image, with every card of a tier the design animates
    that has no animated entry yet, but of the gaps only `roll_out`."""
    if image is Image.STATIC:
        return set(candidates.needing_a_look(conn, card_type, cardset_id, policy.public_base_url))
    waiting = gaps(conn, policy, card_type)
    return set(candidates.animated_needing_a_look(conn, card_type, cardset_id, waiting, roll_out))


def count_gaps(conn: sa.Connection, policy: Policy, card_type: str, cardset_id: int) -> int:
    """How many of the cardset's cards wait for their animation from the rollout."""
    return animation_gaps(conn, policy, card_type, cardset_id).get(cardset_id, 0)


def animation_gaps(
    conn: sa.Connection, policy: Policy, card_type: str, cardset_id: int | None = None
) -> dict[int, int]:
    """Cardset id -> its cards of `card_type` waiting for their animation from the rollout."""
    return candidates.animation_gaps(conn, card_type, gaps(conn, policy, card_type), cardset_id)


def gaps(conn: sa.Connection, policy: Policy, card_type: str) -> candidates.Gaps:
    """What counts as a card waiting for its animation from the rollout, under `policy`."""
    return candidates.Gaps(policy.animated_tiers, policy.template_version,
                           has_column(conn, card_type))  # fmt: skip
