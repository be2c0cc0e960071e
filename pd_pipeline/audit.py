"""Auditing one cardset: does every card have a valid, resolvable, current image?

The asset checks report this audit; each problem names the card (player, variant) and the reason.
"""

import datetime as dt
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from pd_pipeline.db import ledger
from pd_pipeline.db.cards import Card, load_cards
from pd_pipeline.render.png import InvalidPng, verify_png
from pd_pipeline.storage.keys import TOKEN_LENGTH, object_key, public_url
from pd_pipeline.storage.stores import PNG, ObjectStore

IO_THREADS = 8


@dataclass(frozen=True)
class Problem:
    card: Card
    reason: str


PROBLEM_KINDS = ("missing", "failed", "not_canonical", "bad_objects", "stale", "queued", "unseen")


@dataclass
class Audit:
    cards: int = 0
    missing: list[Problem] = field(default_factory=list)  # NULL image_url, no failed render
    failed: list[Problem] = field(default_factory=list)  # the last render of the card failed
    not_canonical: list[Problem] = field(default_factory=list)
    bad_objects: list[Problem] = field(default_factory=list)
    stale: list[Problem] = field(default_factory=list)
    # moved on while a run made their image (edited, or URL set by another writer): queued
    queued: list[Problem] = field(default_factory=list)
    unseen: list[Problem] = field(default_factory=list)  # NULL rows no run has read yet
    first_pending: dt.datetime | None = None  # the oldest card still waiting was first seen then

    @classmethod
    def combine(cls, audits: list["Audit"]) -> "Audit":
        """One audit of several cardsets (a backfill run covers a few)."""
        out = cls(cards=sum(a.cards for a in audits))
        for kind in PROBLEM_KINDS:
            setattr(out, kind, [p for a in audits for p in getattr(a, kind)])
        out.first_pending = min(filter(None, (a.first_pending for a in audits)), default=None)
        return out

    def waiting(self) -> set[int]:
        """Ids of the cards that lack a valid, current URL."""
        return {p.card.card_id for kind in PROBLEM_KINDS for p in getattr(self, kind)}

    def counts(self) -> dict[str, int]:
        """How many cards have each kind of problem."""
        return {kind: len(getattr(self, kind)) for kind in PROBLEM_KINDS}


def audit_cardset(
    engine: sa.Engine,
    store: ObjectStore,
    card_type: str,
    cardset_id: int,
    template_version: str,
    *,
    check_objects: bool = True,
) -> Audit:
    with engine.connect() as conn:
        cards = load_cards(conn, card_type, cardset_id=cardset_id)
        made = ledger.entries(conn, card_type, [c.card_id for c in cards])
    audit = Audit(cards=len(cards))
    with_url = []
    for card in cards:
        entry = made.get(card.card_id)
        if entry is not None and entry.status == ledger.STALE:
            audit.queued.append(Problem(card, "changed while its image was made; queued"))
            continue
        if entry is not None and entry.status == ledger.FAILED:
            audit.failed.append(Problem(card, entry.error or "render failed"))
        if card.image_url is None:
            if entry is None:
                audit.unseen.append(Problem(card, "no run has seen it yet"))
            elif entry.status != ledger.FAILED:
                audit.missing.append(Problem(card, "image_url is NULL"))
            continue
        with_url.append(card)
        _check_row(audit, card, entry, store, template_version)
    if check_objects:
        with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="audit") as io:
            problems = io.map(lambda c: _object_problem(c, store), with_url)
            for card, problem in zip(with_url, problems, strict=True):
                if problem:
                    audit.bad_objects.append(Problem(card, problem))
    audit.first_pending = _oldest_wait(audit, made)
    return audit


def _oldest_wait(audit: Audit, made: dict) -> dt.datetime | None:
    """When the pipeline first saw the longest-waiting card that still lacks a valid URL."""
    waiting = [made[i] for i in audit.waiting() if i in made]
    seen = [entry.first_pending_at for entry in waiting if entry.first_pending_at]
    return min((_aware(moment) for moment in seen), default=None)


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; the ledger writes UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _check_row(audit: Audit, card: Card, entry, store: ObjectStore, version: str) -> None:
    if entry is None or entry.png_sha256 is None:
        audit.not_canonical.append(Problem(card, "URL not made by the pipeline"))
        return
    key = object_key(card.card_type, card.cardset_id, card.player_id, card.variant)
    canonical = public_url(store.public_base_url, key, entry.png_sha256)
    if card.image_url != canonical:
        audit.not_canonical.append(Problem(card, f"URL is {card.image_url}, expected {canonical}"))
    elif entry.input_hash != card.input_hash(version) and entry.status != ledger.FAILED:
        audit.stale.append(Problem(card, "card data changed since its image was made"))


def _object_problem(card: Card, store: ObjectStore) -> str | None:
    """Why the object behind the card's URL is not a valid, matching PNG (None if it is)."""
    base = store.public_base_url + "/"
    if not card.image_url.startswith(base):
        return "URL points outside the store"
    key, _, query = card.image_url[len(base) :].partition("?")
    try:
        head = store.head(key)
        if head is None:
            return f"object {key} does not exist"
        if head.content_type != PNG:
            return f"object {key} has Content-Type {head.content_type!r}"
        data = store.get(key)
        verify_png(data)
    except InvalidPng as e:
        return f"object {key}: {e}"
    except Exception as e:
        return f"object {key} could not be read: {type(e).__name__}"
    if query != f"d={hashlib.sha256(data).hexdigest()[:TOKEN_LENGTH]}":
        return f"object {key} bytes do not match the URL's token"
    return None
