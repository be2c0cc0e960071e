"""`pd-pipeline why`: everything that explains one card's image, gathered in one place.

The card's row, its ledger entry, the object behind its URL, the last run that touched it, and
the rule `state.assess` applies, with when the automation acts on it. Pure data gathering:
`pd-pipeline` formats it.
"""

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import sqlalchemy as sa

from pd_pipeline.db import changes, schema
from pd_pipeline.db.animated import has_column
from pd_pipeline.db.ledger import Entry
from pd_pipeline.images import state
from pd_pipeline.images.inventory import unavailable
from pd_pipeline.images.objects import object_problem
from pd_pipeline.images.state import Next, Policy
from pd_pipeline.images.status import how_changes_are_found
from pd_pipeline.images.survey import survey
from pd_pipeline.model import CARD_TYPES, Card, Image
from pd_pipeline.storage.keys import key_of_url, partition_key, token
from pd_pipeline.storage.stores import ObjectStore


class CardNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Timing:
    """When the automation looks: the sensor's interval and sweep, the nightly reconcile's
    cron."""

    sensor_interval_seconds: int
    reconcile_cron: str
    reconcile_timezone: str = "UTC"
    sweep_cards: int = 500
    sweep_pass_minutes: int | None = None


@dataclass(frozen=True)
class LedgerFacts:
    status: str
    input_hash: str | None  # the inputs of what the pipeline last made (or failed to)
    current_input_hash: str  # the card's inputs now
    inputs_current: bool
    error: str | None
    flag: str | None
    found_by: str | None  # how the work it waits for was found
    url: str | None  # the URL the pipeline stands behind
    first_pending_at: dt.datetime | None
    rendered_at: dt.datetime | None
    written_at: dt.datetime | None
    run_id: str | None
    release: str | None  # the pd_pipeline release that wrote the entry


@dataclass(frozen=True)
class ObjectFacts:
    key: str
    named_by_url: bool  # the row's URL names this key (else it is the card's own key)
    exists: bool
    content_type: str | None = None
    size: int | None = None
    matches_token: bool | None = None  # its bytes are what the URL's `?d=` token names
    problem: str | None = None  # why it is no valid object behind the URL (objects.py's rule)


@dataclass(frozen=True)
class ImageFacts:
    """One image of the card (its PNG, or its animated APNG): where it stands and why."""

    url: str | None
    ledger: LedgerFacts | None
    object: ObjectFacts | None
    run_id: str | None
    run_url: str | None  # the run in the Dagster UI
    state: str
    reason: str
    reason_text: str
    next: str
    when: str


@dataclass(frozen=True)
class Explanation(ImageFacts):
    """The card, and its static image's facts (the animated one's in `animated`)."""

    card_type: str
    card_id: int
    label: str
    player_id: int
    variant: int
    cardset_id: int | None
    partition: str | None
    animated: ImageFacts | None  # None: its design does not animate its tier, nor did
    animated_column: bool  # whether the card table has animated_url to write its URL to
    changes: str  # how the sensor finds cards whose data changed, here

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


def find_card(
    engine: sa.Engine, player_id: int, variant: int, card_type: str | None = None
) -> tuple[str, int]:
    """The (card type, card id) of a player's variant; a clear error when none or two match."""
    found = []
    with engine.connect() as conn:
        for kind in [card_type] if card_type else CARD_TYPES:
            table = schema.CARD_TABLES[kind]
            query = sa.select(table.c.id).where(
                table.c.player_id == player_id, table.c.variant == variant
            )
            found += [(kind, card_id) for card_id in conn.scalars(query)]
    what = f"player {player_id} variant {variant}"
    if not found:
        raise CardNotFound(f"no {card_type or 'card'} of {what}")
    if len(found) > 1:
        names = ", ".join(f"{kind} {card_id}" for kind, card_id in found)
        raise CardNotFound(f"{what} has several cards ({names}): name one with --type")
    return found[0]


def explain(
    engine: sa.Engine,
    store: ObjectStore,
    policy: Policy,
    card_type: str,
    card_id: int,
    *,
    timing: Timing,
    dagster_ui_url: str,
) -> Explanation:
    """Why card `card_id` of `card_type` has the images it has (or none), and what happens next."""
    if card_type not in CARD_TYPES:
        raise CardNotFound(f"unknown card type {card_type!r} (one of {', '.join(CARD_TYPES)})")
    with engine.connect() as conn:
        found = {
            image: list(survey(conn, policy, card_type, card_ids=[card_id], image=image))
            for image in Image
        }
        tracked = changes.is_tracking(conn)
        column = has_column(conn, card_type)
        watching = how_changes_are_found(conn, timing.sweep_cards, timing.sweep_pass_minutes,
                                         timing.sensor_interval_seconds)  # fmt: skip
    if not found[Image.STATIC]:
        raise CardNotFound(f"{card_type} {card_id} does not exist")
    card = found[Image.STATIC][0].card

    def facts(image: Image) -> ImageFacts:
        _, entry, verdict = found[image][0]
        seen = _object(store, card, entry, image)
        run_id = entry.run_id if entry else None
        return ImageFacts(
            url=card.url(image),
            ledger=_ledger(card, entry, policy),
            object=seen,
            run_id=run_id,
            run_url=f"{dagster_ui_url.rstrip('/')}/runs/{run_id}" if run_id else None,
            state=verdict.state.value,
            reason=verdict.reason.name.lower(),
            reason_text=verdict.reason.text,
            next=verdict.next.value,
            when=_when(card, entry, verdict, seen, timing, tracked, image),
        )

    animated = found[Image.ANIMATED][0].verdict.reason is not state.Reason.NOT_ANIMATED
    return Explanation(
        **vars(facts(Image.STATIC)),
        card_type=card_type,
        card_id=card_id,
        label=card.label,
        player_id=card.player_id,
        variant=card.variant,
        cardset_id=card.cardset_id,
        partition=None if card.cardset_id is None else partition_key(card.cardset_id),
        animated=facts(Image.ANIMATED) if animated else None,
        animated_column=column,
        changes=watching,
    )


def _ledger(card: Card, entry: Entry | None, policy: Policy) -> LedgerFacts | None:
    if entry is None:
        return None
    current = card.input_hash(policy.template_version)
    return LedgerFacts(
        status=entry.status,
        input_hash=entry.input_hash,
        current_input_hash=current,
        inputs_current=entry.input_hash == current,
        error=entry.error,
        flag=entry.flag,
        found_by=entry.found_by,
        url=entry.url,
        first_pending_at=entry.first_pending_at,
        rendered_at=entry.rendered_at,
        written_at=entry.written_at,
        run_id=entry.run_id,
        release=entry.release,
    )


def _object(
    store: ObjectStore, card: Card, entry: Entry | None, image: Image
) -> ObjectFacts | None:
    """The object the row's URL of the image names, else the card's own key of it (None for a
    card with no cardset: it has no key)."""
    url = card.url(image)
    named = key_of_url(store.public_base_url, url) if url else None
    if named is None and card.cardset_id is None:
        return None
    key = named or state.key_of(card, image)
    with unavailable(store):
        head = store.head(key)
        if head is None:
            problem = object_problem(store, card, entry, image) if named else None
            return ObjectFacts(key, bool(named), exists=False, problem=problem)
        data = store.get(key)
        problem = object_problem(store, card, entry, image) if named else None
    matches = None
    if named:
        wanted = parse_qs(url.partition("?")[2]).get("d", [None])[0]
        matches = wanted == token(hashlib.sha256(data).hexdigest())
    return ObjectFacts(key, bool(named), True, head.content_type, head.size, matches, problem)


def _when(
    card: Card,
    entry: Entry | None,
    verdict: state.Verdict,
    facts: ObjectFacts | None,
    t: Timing,
    tracked: bool,
    image: Image = Image.STATIC,
) -> str:
    """When the sensor or the nightly reconcile acts on one of the card's images, in a
    sentence."""
    tick = f"every {t.sensor_interval_seconds} s"
    nightly = f"the nightly reconcile (cron `{t.reconcile_cron}`, {t.reconcile_timezone})"
    finds = (
        "the database's triggers queue it and the sensor's next tick flags it"
        if tracked
        else f"the sensor's rolling sweep (PD_SENSOR_SWEEP_CARDS cards per type a tick, {tick}) "
        "flags it"
    )
    if card.cardset_id is None:
        return "Never: no partition renders a card whose player has no cardset (player.cardset_id)."
    partition = partition_key(card.cardset_id)
    if verdict.next is Next.NOTHING:
        if facts is not None and facts.problem:
            return (
                f"The sensor does not look at objects: {nightly} finds {facts.problem} and makes "
                f"the image again (now: run card_images_job for {partition} with verify_objects)."
            )
        return f"Nothing to do; {nightly} checks its object again."
    if verdict.next is Next.WAIT:
        return (
            f"Nothing until the card's data changes; then {finds}, and a run of {partition} "
            "renders it."
        )
    if verdict.next is Next.ROLL_OUT:
        return (
            f"A rollout run of {partition} renders it in the current design: with PD_ROLLOUT=auto "
            "the sensor launches them one at a time, PD_ROLLOUT_CARDS_PER_RUN cards per type "
            "each, where no new or changed card waits; with manual, an operator's run does."
        )
    if verdict.next is Next.WRITE_URL and image is Image.ANIMATED:
        return (
            f"Its APNG is stored; the next run of {partition} writes its URL to animated_url "
            "(once pd-pipeline add-animated-column has added that column)."
        )
    if card.url(image) is None or (entry is not None and entry.flag):
        return (
            f"The sensor ({tick}) launches a card_images_job run for {partition} on its next "
            "tick, unless PD_SENSOR_MAX_RUNS_PER_TICK or PD_SENSOR_MAX_RUNS_IN_FLIGHT defer it."
        )
    return f"{finds[0].upper()}{finds[1:]}, then a tick launches a run for {partition}; " \
        f"{nightly} at the latest."  # fmt: skip


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
