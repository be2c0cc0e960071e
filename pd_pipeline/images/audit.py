"""Auditing one cardset: does every card have a valid, resolvable, current image?

Each card's rule comes from `state.assess`, and with it what the checks find (`Reason.finding`);
`objects.object_problem` judges the objects. The asset checks and `pd-pipeline status` report this
audit; each problem names the card (player, variant) and the reason.
"""

import datetime as dt
import functools
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from pd_pipeline.db import candidates, ledger
from pd_pipeline.db.animated import has_column
from pd_pipeline.db.cards import CardCache
from pd_pipeline.images import inventory
from pd_pipeline.images.objects import (
    animation_problem,
    listed_problem,
    object_problem,
    verified_problem,
)
from pd_pipeline.images.state import Finding, Next, Policy, Reason, State
from pd_pipeline.images.survey import count_gaps, needing_a_look, survey
from pd_pipeline.model import Card, Image, tier_of
from pd_pipeline.render.animation import Animation
from pd_pipeline.storage.stores import ObjectStore

IO_THREADS = 8
SAMPLE = 16  # objects an ordinary run's checks read and decode, beyond the listing
# States in which a card has the valid URL of an image of its current data.
VALID = {State.SETTLED, State.ADOPTED, State.STALE_BY_DESIGN}


@dataclass(frozen=True)
class Problem:
    card: Card
    reason: str


@dataclass
class Audit:
    cards: int = 0
    states: dict[State, int] = field(default_factory=dict)
    findings: dict[Finding, list[Problem]] = field(
        default_factory=lambda: {finding: [] for finding in Finding}
    )
    bad_objects: list[Problem] = field(default_factory=list)
    bad_animations: list[Problem] = field(default_factory=list)  # APNGs read: not the design's
    objects_checked: int = 0  # served cards whose object was checked (all: the reconcile)
    objects_scope: str = ""  # which they were
    old_design: int = 0  # cards whose image is of the current data in an older design
    no_column: int = 0  # animated images stored whose URL waits for the column animated_url
    waiting: set[int] = field(default_factory=set)  # ids of cards lacking a valid current URL
    first_pending: dt.datetime | None = None  # the oldest of them was first seen waiting then

    def count(self, *states: State) -> int:
        return sum(self.states.get(s, 0) for s in states)


def audit_cardset(
    engine: sa.Engine,
    store: ObjectStore | None,
    policy: Policy,
    card_type: str,
    cardset_id: int,
    *,
    check_objects: bool = True,
    read_all: bool = False,
    run_id: str | None = None,
    cache: CardCache | None = None,
    image: Image = Image.STATIC,
    animations: Mapping[int, Animation] | None = None,
) -> Audit:
    """Every card's finding for one of its images, and with `check_objects` the objects behind
    the served URLs: those `run_id` touched and a bounded sample of the rest. With `read_all`
    (the nightly reconcile) every card is read and every object checked; otherwise only the
    cards the ledger and the rows say may need work (`db.candidates`), those the run touched and
    the sample are read, and the rest are counted as the ledger holds them (current, adopted,
    or in an older design). The APNGs read are held to their tier's `animations`."""
    with engine.connect() as conn:
        if read_all:
            found = list(survey(conn, policy, card_type, cardset_id=cardset_id, cache=cache,
                                image=image))  # fmt: skip
        else:
            ids = needing_a_look(conn, policy, card_type, cardset_id, image)
            if run_id is not None:
                ids |= set(candidates.touched_by(conn, card_type, cardset_id, run_id, image))
            column = "image_url" if image is Image.STATIC else "animated_url"
            if check_objects and (image is Image.STATIC or has_column(conn, card_type)):
                ids |= set(candidates.served_sample(conn, card_type, cardset_id, SAMPLE, image,
                                                    column))  # fmt: skip
            found = list(survey(conn, policy, card_type, card_ids=sorted(ids), image=image))
        found = [a for a in found if a.verdict.reason is not Reason.NOT_ANIMATED]  # no image
        unread = {} if read_all else _unread(conn, policy, card_type, cardset_id, found, image)
        columnless = image is Image.ANIMATED and not has_column(conn, card_type)
    audit = Audit(cards=len(found) + sum(unread.values()), states=dict(unread))
    served, waits = [], []
    for card, entry, verdict in found:
        audit.states[verdict.state] = audit.states.get(verdict.state, 0) + 1
        if columnless and verdict.next is Next.WRITE_URL:
            audit.no_column += 1  # made and stored; its URL waits for the column, as decided
            continue
        has_url = card.url(image) is not None
        finding = verdict.reason.finding(has_url)
        if finding:
            why = _why(card, entry, verdict.reason, image)
            audit.findings[finding].append(Problem(card, why))
        if verdict.state not in VALID:
            audit.waiting.add(card.card_id)
            if entry is not None and entry.first_pending_at is not None:
                waits.append(entry.first_pending_at)
        if verdict.reason.served(has_url):
            served.append((card, entry))
    audit.old_design = audit.count(State.STALE_BY_DESIGN)
    if check_objects and served:
        read = _check_objects(audit, store, served, cardset_id, read_all, run_id, image)
        if image is Image.ANIMATED and animations:
            _check_animations(audit, store, read, animations)
    audit.first_pending = min(waits, default=None)
    return audit


def _unread(
    conn, policy: Policy, card_type: str, cardset_id: int, found, image: Image
) -> dict[State, int]:
    """The cards not read, by the state their ledger entries hold: adopted, in an older design,
    or current. The animated image's cards are those with an entry of it, and the gaps
    (`candidates.Gaps`: not read, they wait for the rollout); every other card of an animated
    tier without an entry is read."""
    older = candidates.count_in_older_design(conn, card_type, cardset_id, policy.template_version,
                                             image)  # fmt: skip
    if image is Image.STATIC:
        total, read_here = candidates.count_cards(conn, card_type, cardset_id), len(found)
    else:
        waiting = count_gaps(conn, policy, card_type, cardset_id)
        total = candidates.count_entries(conn, card_type, cardset_id, image) + waiting
        read_here = sum(entry is not None for _, entry, _ in found)
        older += waiting
    kept = candidates.count_adopted(conn, card_type, cardset_id, image)
    read = [verdict.state for _, _, verdict in found]
    unread = {
        State.ADOPTED: max(0, kept - read.count(State.ADOPTED)),
        State.STALE_BY_DESIGN: max(0, older - read.count(State.STALE_BY_DESIGN)),
    }
    unread[State.SETTLED] = max(0, total - read_here - sum(unread.values()))
    return {state: n for state, n in unread.items() if n}


def _check_objects(audit, store, served, cardset_id, read_all: bool, run_id, image) -> list:
    """The nightly reconcile: every object, through a listing of the cardset's folder, reading
    what it cannot vouch for. Any other run: the objects it touched (a HEAD each where the store
    states an MD5, or a listing's ETags when that is cheaper) and SAMPLE others at random, read
    and decoded: its cost follows its change."""
    if read_all:
        rule = functools.partial(verified_problem, listing=inventory.listed(store, cardset_id),
                                 image=image)  # fmt: skip
        checks = [(pair, rule) for pair in served]
        audit.objects_scope = f"every object ({len(served)}, nightly reconcile)"
    else:
        touched = [p for p in served if p[1] is not None and p[1].run_id == run_id]
        others = [p for p in served if p[1] is None or p[1].run_id != run_id]
        # SAMPLE read and decoded: others at random, topped up from the touched ones
        sample = random.sample(others, min(SAMPLE, len(others)))
        sample += random.sample(touched, min(SAMPLE - len(sample), len(touched)))
        read = {card.card_id for card, _ in sample}
        # a HEAD each, reading what the store cannot vouch for
        vouch = functools.partial(verified_problem, image=image)
        if inventory.cheaper_to_list(len(touched), audit.cards):  # a big run: its uploads' ETags
            listing = inventory.listed(store, cardset_id)
            vouch = functools.partial(_listed, listing=listing, image=image)
        checks = [(p, vouch) for p in touched if p[0].card_id not in read]
        checks += [(p, functools.partial(object_problem, image=image)) for p in sample]
        audit.objects_scope = (f"the {len(touched)} this run touched and {len(others)} others: "
                               f"{len(sample)} of them at random read")  # fmt: skip
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="audit") as io:
        problems = list(io.map(lambda check: check[1](store, *check[0]), checks))
    audit.bad_objects = [Problem(c[0][0], p) for c, p in zip(checks, problems, strict=True) if p]
    audit.objects_checked = len(checks)
    if read_all:
        sample = random.sample(served, min(SAMPLE, len(served)))
    return [card for card, _ in sample]  # the cards whose objects were read


def _check_animations(audit, store, cards: list[Card], animations) -> None:
    """The APNGs read at random: frames, delays and first frame as their design says."""
    checks = [(card, animations[tier_of(card.variant)]) for card in cards
              if tier_of(card.variant) in animations]  # fmt: skip
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="audit") as io:
        problems = list(io.map(lambda check: animation_problem(store, *check), checks))
    audit.bad_animations = [Problem(c[0], p) for c, p in zip(checks, problems, strict=True) if p]


def _listed(store: ObjectStore, card: Card, entry, listing, image: Image) -> str | None:
    return listed_problem(card, entry, listing, store.public_base_url, image)


def _why(card: Card, entry: ledger.Entry | None, reason: Reason, image: Image) -> str:
    if reason is Reason.FAILED and entry is not None and entry.error:
        return entry.error.removeprefix(f"{card.label}: ")  # errors name their card
    if reason in (Reason.UNSEEN_URL, Reason.OTHER_WRITER):
        return f"{reason.text}: {card.url(image)}"
    return reason.text
