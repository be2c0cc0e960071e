"""Which cards of a cardset a run reads: the ones the ledger and the rows say may need work, found
in SQL, so a run's cost follows what changed rather than the size of its cardset.

Every other card of the cardset is one the ledger holds current: its URL is the one the pipeline
wrote (or adopted) for it, nothing flagged it since, its image is in this design. That holds as
long as changes reach the ledger: the database's triggers (`db.changes`, drained by the sensor)
or, without them, the sensor's rolling sweep; the nightly reconcile reads every card whatever.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.ledger import LedgerStatus
from pd_pipeline.db.tiers import of_tiers

S = LedgerStatus


def _cards(card_type: str, cardset_id: int, image: str = "png"):
    """The cardset's cards of one type, each with its ledger entry (if any) of `image`."""
    card, entry, player = schema.CARD_TABLES[card_type], schema.card_render, schema.player
    its_entry = sa.and_(
        entry.c.card_type == card_type, entry.c.card_id == card.c.id, entry.c.image == image
    )
    rows = card.join(player, player.c.player_id == card.c.player_id).outerjoin(entry, its_entry)
    return card, entry, rows, player.c.cardset_id == cardset_id


def needing_a_look(
    conn: sa.Connection, card_type: str, cardset_id: int, base_url: str
) -> list[int]:
    """Ids of the cards whose row or entry says they may need work: no URL, never read, flagged,
    taken by a run that made nothing, a URL other than the one written or adopted (or one of an
    older public base), or failed (its data or the design may have changed since)."""
    card, entry, rows, in_cardset = _cards(card_type, cardset_id)
    query = (
        sa.select(card.c.id)
        .select_from(rows)
        .where(
            in_cardset,
            sa.or_(
                card.c.image_url.is_(None),
                entry.c.card_id.is_(None),
                entry.c.flag.is_not(None),
                entry.c.status == S.TAKEN,
                entry.c.status == S.RENDER_FAILED,
                sa.and_(
                    entry.c.status.in_([S.MADE, S.KEPT]),
                    card.c.image_url.is_distinct_from(entry.c.url),
                ),
                sa.and_(
                    entry.c.status == S.MADE,
                    sa.not_(entry.c.url.startswith(base_url.rstrip("/") + "/", autoescape=True)),
                ),
            ),
        )
        .order_by(card.c.id)
    )
    return list(conn.scalars(query))


@dataclass(frozen=True)
class Gaps:
    """Cards of a tier the design animates (`tiers`) that have no animation and whose still is
    one the pipeline did not make in this design (`template_version`): adopted from another
    renderer, or made before the design animated its tier. Their animations are the rollout's
    to make, at its pace, after every new and changed card (`state.Reason.NEW_ANIMATION`)."""

    tiers: frozenset[int]
    template_version: str
    with_column: bool  # whether the card table has `animated_url`

    def unmade(self, conn: sa.Connection, card: sa.Table) -> sa.ColumnElement:
        """The card's tier animates (the base card, variant 0, is T0)."""
        return sa.and_(card.c.variant != 0, of_tiers(conn, card.c.variant, self.tiers))

    @staticmethod
    def static_entry(card: sa.Table) -> sa.Alias:
        return schema.card_render.alias(f"{card.name}_static")

    @staticmethod
    def its_static(card: sa.Table, static: sa.Alias) -> sa.ColumnElement:
        return sa.and_(static.c.card_type == card.name, static.c.card_id == card.c.id,
                       static.c.image == "png")  # fmt: skip

    def gap(self, card: sa.Table, static: sa.Alias) -> sa.ColumnElement:
        older = sa.and_(static.c.status == S.MADE,
                        static.c.template_version != self.template_version)  # fmt: skip
        no_url = card.c.animated_url.is_(None) if self.with_column else sa.true()
        return sa.and_(no_url, sa.or_(static.c.status == S.KEPT, older))


def animated_needing_a_look(
    conn: sa.Connection,
    card_type: str,
    cardset_id: int,
    gaps: Gaps,
    roll_out: int = 0,
) -> list[int]:
    """For the animated image: ids of the cards whose animated entry says it may need work
    (flagged, taken, failed, a URL other than the one written or adopted: that only where the
    column `animated_url` exists), of the cards of an animated tier (or with an animated URL)
    that have no animated entry yet, except the gaps (`Gaps`), of which only the first
    `roll_out`: the rollout's."""
    card, entry, rows, in_cardset = _cards(card_type, cardset_id, "apng")
    looks = [
        entry.c.flag.is_not(None),
        entry.c.status.in_([S.TAKEN, S.RENDER_FAILED]),
    ]
    if gaps.with_column:
        looks.append(sa.and_(entry.c.status.in_([S.MADE, S.KEPT]),
                             card.c.animated_url.is_distinct_from(entry.c.url)))  # fmt: skip
    ids = set(
        conn.scalars(sa.select(card.c.id).select_from(rows).where(in_cardset, sa.or_(*looks)))
    )
    unmade = gaps.unmade(conn, card)
    if gaps.with_column:
        unmade = sa.or_(unmade, card.c.animated_url.is_not(None))
    static = gaps.static_entry(card)
    new = (
        sa.select(card.c.id)
        .select_from(rows.outerjoin(static, gaps.its_static(card, static)))
        .where(in_cardset, entry.c.card_id.is_(None), unmade)
    )
    ids |= set(conn.scalars(new.where(sa.not_(gaps.gap(card, static)))))
    if roll_out > 0:
        ids |= set(conn.scalars(new.where(gaps.gap(card, static)).order_by(card.c.id)
                                .limit(roll_out)))  # fmt: skip
    return sorted(ids)


def animation_gaps(
    conn: sa.Connection, card_type: str, gaps: Gaps, cardset_id: int | None = None
) -> dict[int, int]:
    """Cardset id -> how many of its cards of `card_type` are `gaps` (every cardset's, or
    `cardset_id`'s): a scan of the card table, so the sensor asks about once a minute."""
    if not gaps.tiers:
        return {}
    card, entry, player = schema.CARD_TABLES[card_type], schema.card_render, schema.player
    static = gaps.static_entry(card)
    its_entry = sa.and_(entry.c.card_type == card_type, entry.c.card_id == card.c.id,
                        entry.c.image == "apng")  # fmt: skip
    rows = (
        card.join(player, player.c.player_id == card.c.player_id)
        .join(static, gaps.its_static(card, static))
        .outerjoin(entry, its_entry)
    )
    query = (
        sa.select(player.c.cardset_id, sa.func.count())
        .select_from(rows)
        .where(entry.c.card_id.is_(None), gaps.unmade(conn, card), gaps.gap(card, static))
        .group_by(player.c.cardset_id)
    )
    if cardset_id is not None:
        query = query.where(player.c.cardset_id == cardset_id)
    return {i: n for i, n in conn.execute(query) if i is not None}


def in_older_design(
    conn: sa.Connection,
    card_type: str,
    cardset_id: int,
    template_version: str,
    limit: int,
    replace_adopted: bool = False,
    image: str = "png",
) -> list[int]:
    """Ids of at most `limit` cards whose image is of an older design (and, with
    `replace_adopted`, whose URL was adopted), in id order: a rollout's next cards."""
    if limit <= 0:
        return []
    entry = schema.card_render
    older = sa.and_(entry.c.status == S.MADE, entry.c.template_version != template_version)
    if replace_adopted:
        older = sa.or_(older, entry.c.status == S.KEPT)
    query = (
        sa.select(entry.c.card_id)
        .where(
            entry.c.card_type == card_type,
            entry.c.image == image,
            entry.c.cardset_id == cardset_id,
            older,
        )
        .order_by(entry.c.card_id)
        .limit(limit)
    )
    return list(conn.scalars(query))


def count_in_older_design(
    conn: sa.Connection, card_type: str, cardset_id: int, template_version: str, image: str = "png"
) -> int:
    entry = schema.card_render
    return conn.scalar(
        sa.select(sa.func.count()).where(
            entry.c.card_type == card_type,
            entry.c.image == image,
            entry.c.cardset_id == cardset_id,
            entry.c.status == S.MADE,
            entry.c.template_version != template_version,
        )
    )


def count_entries(
    conn: sa.Connection,
    card_type: str,
    cardset_id: int,
    image: str,
    statuses: Sequence[str] | None = None,
) -> int:
    """Cards of the cardset with an entry of `image` (of `statuses`, if given)."""
    entry = schema.card_render
    query = sa.select(sa.func.count()).where(
        entry.c.card_type == card_type, entry.c.image == image, entry.c.cardset_id == cardset_id
    )
    if statuses is not None:
        query = query.where(entry.c.status.in_(statuses))
    return conn.scalar(query)


def count_adopted(conn: sa.Connection, card_type: str, cardset_id: int, image: str = "png") -> int:
    return count_entries(conn, card_type, cardset_id, image, [S.KEPT])


def touched_by(
    conn: sa.Connection, card_type: str, cardset_id: int, run_id: str, image: str = "png"
) -> list[int]:
    """Ids of the cards whose entry of `image` the run `run_id` wrote last."""
    entry = schema.card_render
    query = sa.select(entry.c.card_id).where(
        entry.c.card_type == card_type,
        entry.c.image == image,
        entry.c.cardset_id == cardset_id,
        entry.c.run_id == run_id,
    )
    return list(conn.scalars(query))


def served_sample(
    conn: sa.Connection,
    card_type: str,
    cardset_id: int,
    size: int,
    image: str = "png",
    column: str = "image_url",
) -> list[int]:
    """Ids of `size` cards at random whose URL (in `column`) is the one the pipeline wrote or
    adopted for `image`."""
    card, entry, rows, in_cardset = _cards(card_type, cardset_id, image)
    query = (
        sa.select(card.c.id)
        .select_from(rows)
        .where(in_cardset, entry.c.status.in_([S.MADE, S.KEPT]), card.c[column] == entry.c.url)
        .order_by(sa.func.random())
        .limit(size)
    )
    return list(conn.scalars(query))


def count_cards(conn: sa.Connection, card_type: str, cardset_id: int) -> int:
    card, player = schema.CARD_TABLES[card_type], schema.player
    return conn.scalar(
        sa.select(sa.func.count())
        .select_from(card.join(player, player.c.player_id == card.c.player_id))
        .where(player.c.cardset_id == cardset_id)
    )
