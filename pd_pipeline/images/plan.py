"""Planning one cardset's PNG step: what each card needs, from `state.assess`, and the ledger
noting which cards the run takes."""

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from pd_pipeline.db import ledger
from pd_pipeline.db.cards import load_cards
from pd_pipeline.images import state
from pd_pipeline.images.state import Context, Next, State, Verdict
from pd_pipeline.model import CARD_TYPES, Card
from pd_pipeline.render.validate import CardDataError, validate
from pd_pipeline.storage.keys import object_key


@dataclass
class Work:
    """One card and what its plan says of it."""

    card: Card
    verdict: Verdict
    entry: ledger.Entry | None
    key: str
    digest: str  # the card's input hash in this run's design
    # The store was asked and holds no object of these inputs: upload without asking again.
    not_in_store: bool = False


@dataclass
class Plan:
    cards: int
    render: list[Work] = field(default_factory=list)  # to make (or find stored) in this design
    adopt: list[Work] = field(default_factory=list)  # their own URL to confirm and keep
    done: list[Work] = field(default_factory=list)  # settled or adopted: nothing to do
    old_design: int = 0  # cards stale only by design left for later runs (the rollout's pace)
    reasons: Counter = field(default_factory=Counter)  # how many cards each rule applies to


def plan_cardset(
    engine: sa.Engine,
    ctx: Context,
    card_type: str,
    cardset_id: int,
    *,
    rerender_all: bool = False,
    roll_out: int = 0,
    run_id: str | None = None,
) -> Plan:
    """Assess every card of one type in the cardset and take those needing work: every new and
    changed card, and at most `roll_out` cards stale only by design (the rest stay as they
    are, for later rollout runs). With `rerender_all`, every card the pipeline made (or failed
    to) is rendered again; adopted images stay (PD_ADOPT=replace replaces them)."""
    with engine.connect() as conn:
        cards = load_cards(conn, card_type, cardset_id=cardset_id)
        entries = ledger.entries(conn, card_type, [c.card_id for c in cards])
    plan = Plan(cards=len(cards))
    unflag, rollout = [], []
    for card in cards:
        entry = entries.get(card.card_id)
        verdict = state.assess(card, entry, ctx)
        plan.reasons[verdict.reason.name.lower()] += 1
        key = object_key(card_type, cardset_id, card.player_id, card.variant)
        work = Work(card, verdict, entry, key, card.input_hash(ctx.template_version))
        rolled = verdict.next is Next.ROLL_OUT and not rerender_all
        if rolled and len(rollout) >= roll_out:
            plan.done.append(work)  # its turn comes in a later run
            plan.old_design += 1
        elif rolled:
            rollout.append(work)
        elif verdict.next is Next.ADOPT:
            plan.adopt.append(work)
        elif verdict.next is Next.RENDER or (rerender_all and verdict.state is not State.ADOPTED):
            plan.render.append(work)
        elif verdict.next is not Next.WRITE_URL:  # write-back's to do
            plan.done.append(work)
            if entry is not None and entry.flag is not None:
                unflag.append(card.card_id)
    plan.render += rollout  # after every new and changed card
    now = ledger.utcnow()
    taken = [state.taken(w.card, now, run_id) for w in plan.render + plan.adopt]
    with engine.begin() as conn:
        ledger.upsert(conn, taken, **state.WAITING_UPSERT)
        ledger.update(conn, card_type, unflag, state.UNFLAGGED)
    return plan


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
