"""Planning one cardset's PNG step: what each card needs, from `state.assess`, and the ledger
noting which cards the run takes."""

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from pd_pipeline.db import candidates, ledger
from pd_pipeline.db.cards import CardCache, load_cards
from pd_pipeline.db.ledger import Entry
from pd_pipeline.images import state
from pd_pipeline.images.state import Next, Policy, Reason, State, Verdict
from pd_pipeline.images.survey import count_gaps, needing_a_look, survey
from pd_pipeline.model import CARD_TYPES, Card, Image
from pd_pipeline.render.validate import CardDataError, validate


@dataclass
class Work:
    """One card and what its plan says of it."""

    card: Card
    verdict: Verdict
    entry: Entry | None
    key: str
    digest: str  # the card's input hash in this run's design
    image: Image = Image.STATIC
    # The store was asked and holds no object of these inputs: upload without asking again.
    not_in_store: bool = False


@dataclass
class Plan:
    cards: int
    render: list[Work] = field(default_factory=list)  # to make (or find stored) in this design
    foreign: list[Work] = field(default_factory=list)  # URLs others made: confirm and keep them
    done: list[Work] = field(default_factory=list)  # settled or adopted: nothing to do
    retire: list[Work] = field(default_factory=list)  # animations the design dropped: cleared
    old_design: int = 0  # cards stale only by design left for later runs (the rollout's pace)
    reasons: Counter = field(default_factory=Counter)  # how many cards each rule applies to


def plan_cardset(
    engine: sa.Engine,
    policy: Policy,
    card_type: str,
    cardset_id: int,
    *,
    rerender_all: bool = False,
    roll_out: int = 0,
    whole: bool = False,
    run_id: str | None = None,
    cache: CardCache | None = None,
    image: Image = Image.STATIC,
) -> Plan:
    """Assess one image of the cardset's cards of one type and take those needing work: every
    new and changed card, and at most `roll_out` cards stale only by design (the rest stay as
    they are, for later rollout runs). Only the cards the ledger and the rows say may need work
    are read (`db.candidates`); with `whole` (the nightly reconcile) or `rerender_all`, every
    card is. With `rerender_all`, every card the pipeline made (or failed to) is rendered again;
    adopted images stay (PD_ADOPT=replace replaces them)."""
    whole = whole or rerender_all
    with engine.connect() as conn:
        if whole:
            found = list(survey(conn, policy, card_type, cardset_id=cardset_id, cache=cache,
                                image=image))  # fmt: skip
            found = [a for a in found if a.verdict.reason is not Reason.NOT_ANIMATED]
            total, older = len(found), None
        else:
            ids = _candidates(conn, policy, card_type, cardset_id, roll_out, image)
            found = list(survey(conn, policy, card_type, card_ids=ids, image=image)) if ids else []
            found = [a for a in found if a.verdict.reason is not Reason.NOT_ANIMATED]
            older = candidates.count_in_older_design(conn, card_type, cardset_id,
                                                     policy.template_version, image)  # fmt: skip
            if image is Image.STATIC:
                total = candidates.count_cards(conn, card_type, cardset_id)
            else:  # the cards with an animated entry, and those of animated tiers without
                waiting = count_gaps(conn, policy, card_type, cardset_id)  # read or not
                older += waiting
                total = candidates.count_entries(conn, card_type, cardset_id, image) + waiting
                total += sum(a.entry is None and a.verdict.reason is not Reason.NEW_ANIMATION
                             for a in found)  # fmt: skip
    plan = Plan(cards=total)
    rollout = []
    for card, entry, verdict in found:
        plan.reasons[verdict.reason.name.lower()] += 1
        key = state.key_of(card, image)
        work = Work(card, verdict, entry, key, card.input_hash(policy.template_version), image)
        rolled = verdict.next is Next.ROLL_OUT and not rerender_all
        if rolled and len(rollout) + len(plan.retire) >= roll_out:
            plan.done.append(work)  # its turn comes in a later run
            plan.old_design += 1
        elif verdict.reason is Reason.ANIMATION_RETIRED:
            plan.retire.append(work)
        elif rolled:
            rollout.append(work)
        elif verdict.next is Next.ADOPT:
            plan.foreign.append(work)
        elif verdict.next is Next.RENDER or (rerender_all and verdict.state is not State.ADOPTED):
            plan.render.append(work)
        elif verdict.next is not Next.WRITE_URL:  # write-back's to do
            plan.done.append(work)
    if older is not None:  # cards left in an older design, read or not
        plan.old_design = max(0, older - len(rollout))
    plan.render += rollout  # after every new and changed card
    now = ledger.utcnow()
    taken = [state.taken(w.card, now, run_id, _found_by(w.card, whole, image), image)
             for w in plan.render + plan.foreign]  # fmt: skip
    # Retired at write-back, under its locks, as a URL is written.
    taken += [state.flagged(w.card, Reason.ANIMATION_RETIRED, now, _found_by(w.card, whole, image),
                            image) for w in plan.retire]  # fmt: skip
    with engine.begin() as conn:
        ledger.upsert(conn, taken, **state.WAITING_UPSERT)
    return plan


def _candidates(conn, policy: Policy, card_type: str, cardset_id: int, roll_out: int,
                image: Image) -> list[int]:  # fmt: skip
    """The ids a run reads for one image: those that may need work, then a rollout's next."""
    ids = needing_a_look(conn, policy, card_type, cardset_id, image, roll_out)
    replace = image is Image.STATIC and policy.adopt == state.REPLACE
    ids |= set(candidates.in_older_design(conn, card_type, cardset_id, policy.template_version,
                                          roll_out, replace, image))  # fmt: skip
    return sorted(ids)


def _found_by(card: Card, whole: bool, image: Image) -> state.FoundBy:
    if whole:
        return state.FoundBy.RECONCILE
    return state.FoundBy.NO_URL if card.url(image) is None else state.FoundBy.RUN


def homeless_cards(engine: sa.Engine) -> list[tuple[str, str]]:
    """`(card label, error)` for each card whose player has no cardset: no partition renders
    it, so it counts as a failed card, named with the field to fix."""
    failures = []
    with engine.connect() as conn:
        for card_type in CARD_TYPES:
            for card in load_cards(conn, card_type, no_cardset=True):
                try:
                    validate(card)
                except CardDataError as e:
                    failures.append((card.label, str(e)))
    return failures
