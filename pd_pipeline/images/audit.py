"""Auditing one cardset: does every card have a valid, resolvable, current image?

Each card's rule comes from `state.assess`; `finding` says what the checks make of it, and
`objects.object_problem` judges the objects. The asset checks and `pd-pipeline status` report
this audit; each problem names the card (player, variant) and the reason.
"""

import datetime as dt
import functools
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from pd_pipeline.db import ledger
from pd_pipeline.db.cards import load_cards
from pd_pipeline.images import state, stored
from pd_pipeline.images.objects import listed_problem, object_problem, verified_problem
from pd_pipeline.images.state import Context, Reason, State
from pd_pipeline.model import Card
from pd_pipeline.storage.stores import ObjectStore

IO_THREADS = 8
SAMPLE = 16  # objects an ordinary run's checks read and decode, beyond the listing
R = Reason
FINDINGS = ("missing", "failed", "queued", "unseen", "not_canonical", "to_adopt", "stale",
            "old_design")  # fmt: skip
# Rules under which the row's URL is served as the card's image: its object must be valid.
SERVED = {R.SETTLED, R.ADOPTED, R.DATA_CHANGED, R.DESIGN_CHANGED, R.REPLACE_ADOPTED,
          R.ADOPTED_CHANGED, R.CHANGED_SINCE_FAILURE}  # fmt: skip
# States in which a card has the valid URL of an image of its current data.
VALID = {State.SETTLED, State.ADOPTED, State.STALE_BY_DESIGN}


def finding(reason: Reason, has_url: bool) -> str | None:
    """What the checks make of a card under `reason`: the one place that says it."""
    if reason is R.FAILED:
        return "failed"  # its last render failed, and its data has not changed since
    if not has_url:
        if reason in (R.WAITING, R.URL_NOT_WRITTEN):
            return "missing"  # a run took the card and left it without a URL
        # never read by a run, or changed or cleared since a run read it: the next run's work
        return "unseen" if reason is R.NEW else "queued"
    if reason in (R.URL_NOT_CANONICAL, R.URL_NOT_WRITTEN, R.WAITING):
        return "not_canonical"  # the pipeline's own URL, not (yet) the canonical one
    if reason in (R.UNSEEN_URL, R.OTHER_WRITER):
        return "to_adopt"  # someone else's URL: the next run confirms and keeps it, or not
    if reason in (R.DATA_CHANGED, R.ADOPTED_CHANGED, R.CHANGED_SINCE_FAILURE):
        return "stale"  # an image of data that has changed since
    if reason in (R.DESIGN_CHANGED, R.REPLACE_ADOPTED):
        return "old_design"  # an image of the current data in an older design
    return None  # settled or adopted


@dataclass(frozen=True)
class Problem:
    card: Card
    reason: str


@dataclass
class Audit:
    cards: int = 0
    states: dict[State, int] = field(default_factory=dict)
    findings: dict[str, list[Problem]] = field(
        default_factory=lambda: {name: [] for name in FINDINGS}
    )
    bad_objects: list[Problem] = field(default_factory=list)
    objects_checked: int = 0  # served cards whose object was checked (all: the reconcile)
    objects_scope: str = ""  # which they were
    waiting: set[int] = field(default_factory=set)  # ids of cards lacking a valid current URL
    first_pending: dt.datetime | None = None  # the oldest of them was first seen waiting then

    def count(self, *states: State) -> int:
        return sum(self.states.get(s, 0) for s in states)


def audit_cardset(
    engine: sa.Engine,
    store: ObjectStore | None,
    ctx: Context,
    card_type: str,
    cardset_id: int,
    *,
    check_objects: bool = True,
    read_all: bool = False,
    run_id: str | None = None,
) -> Audit:
    """Every card's finding, and with `check_objects` the objects behind the served URLs: those
    `run_id` touched and a bounded sample of the rest, or every one with `read_all` (the
    nightly reconcile)."""
    with engine.connect() as conn:
        cards = load_cards(conn, card_type, cardset_id=cardset_id)
        made = ledger.entries(conn, card_type, [c.card_id for c in cards])
    audit = Audit(cards=len(cards))
    served, waits = [], []
    for card in cards:
        entry = made.get(card.card_id)
        verdict = state.assess(card, entry, ctx)
        audit.states[verdict.state] = audit.states.get(verdict.state, 0) + 1
        has_url = card.image_url is not None
        found = finding(verdict.reason, has_url)
        if found:
            audit.findings[found].append(Problem(card, _why(card, entry, verdict.reason)))
        if verdict.state not in VALID:
            audit.waiting.add(card.card_id)
            if entry is not None and entry.first_pending_at is not None:
                waits.append(entry.first_pending_at)
        if has_url and verdict.reason in SERVED:
            served.append((card, entry))
    if check_objects and served:
        _check_objects(audit, store, served, cardset_id, read_all, run_id)
    audit.first_pending = min(waits, default=None)
    return audit


def _check_objects(audit, store, served, cardset_id, read_all: bool, run_id) -> None:
    """The nightly reconcile: every object, through a listing of the cardset's folder, reading
    what it cannot vouch for. Any other run: the objects it touched (a HEAD each where the store
    states an MD5, or a listing's ETags when that is cheaper) and SAMPLE others at random, read
    and decoded: its cost follows its change."""
    if read_all:
        rule = functools.partial(verified_problem, listing=stored.listed(store, cardset_id))
        checks = [(pair, rule) for pair in served]
        audit.objects_scope = f"every object ({len(served)}, nightly reconcile)"
    else:
        touched = [p for p in served if p[1] is not None and p[1].run_id == run_id]
        others = [p for p in served if p[1] is None or p[1].run_id != run_id]
        # SAMPLE read and decoded: others at random, topped up from the touched ones
        sample = random.sample(others, min(SAMPLE, len(others)))
        sample += random.sample(touched, min(SAMPLE - len(sample), len(touched)))
        read = {card.card_id for card, _ in sample}
        vouch = verified_problem  # a HEAD each, reading what the store cannot vouch for
        if stored.cheaper_to_list(len(touched), len(served)):  # a big run: its uploads' ETags
            listing = stored.listed(store, cardset_id)
            vouch = functools.partial(_listed, listing=listing)
        checks = [(p, vouch) for p in touched if p[0].card_id not in read]
        checks += [(p, object_problem) for p in sample]
        audit.objects_scope = (f"the {len(touched)} this run touched and {len(others)} others: "
                               f"{len(sample)} of them at random read")  # fmt: skip
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="audit") as io:
        problems = list(io.map(lambda check: check[1](store, *check[0]), checks))
    audit.bad_objects = [Problem(c[0][0], p) for c, p in zip(checks, problems, strict=True) if p]
    audit.objects_checked = len(checks)


def _listed(store: ObjectStore, card: Card, entry, listing) -> str | None:
    return listed_problem(card, entry, listing, store.public_base_url)


def _why(card: Card, entry: ledger.Entry | None, reason: Reason) -> str:
    if reason is Reason.FAILED and entry is not None and entry.error:
        return entry.error.removeprefix(f"{card.label}: ")  # errors name their card
    if reason in (Reason.UNSEEN_URL, Reason.OTHER_WRITER):
        return f"{reason.text}: {card.image_url}"
    return reason.text
