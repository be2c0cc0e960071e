"""Card state: where each card's image stands, and every change to the ledger. The one owner.

`assess(card, entry, policy)` is a pure function of a card row, its `card_render` entry and the
`Policy` it is held to (design version, public base URL, adoption). It names the rule that
applies (a `Reason`), which gives the card's `State`, what happens `Next` and what the checks
find. Plan, sweep, write-back, checks, `pd-pipeline status` and `pd-pipeline why` all ask it,
and nothing else decides.

The functions at the end are the ledger's transitions: each returns the columns one event sets.
The database layer only persists them.
"""

import datetime as dt
import functools
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from pd_pipeline import __version__
from pd_pipeline.db.ledger import Entry, LedgerStatus
from pd_pipeline.db.schema import card_render
from pd_pipeline.images.fetch import AllowedHosts
from pd_pipeline.model import Card, Image, tier_of
from pd_pipeline.render.pages import CardPages
from pd_pipeline.storage.keys import key_of_url, object_key, public_url

ERROR_MAX = 2000  # characters of an error kept in the ledger


class State(StrEnum):
    UNSEEN = "unseen"  # no ledger entry: no run or sweep has read the row
    PENDING = "pending"  # needs an image (or to confirm its URL), waiting for a run
    STORED = "stored"  # a confirmed object shows its current inputs; its URL is not written
    SETTLED = "settled"  # the row's URL is the canonical URL of its current, confirmed object
    ADOPTED = "adopted"  # the row's URL was made by someone else, confirmed, and is kept
    STALE = "stale"  # the card's data changed since its image was made
    STALE_BY_DESIGN = "stale_by_design"  # only the card design changed: rolled out gradually
    FAILED = "failed"  # its last render failed for its own data; retried once that changes


class Next(StrEnum):
    NOTHING = "nothing"
    RENDER = "render"  # make an object of the current inputs (or find one already stored)
    WRITE_URL = "write_url"  # write the confirmed object's URL to the row
    ADOPT = "adopt"  # confirm the object behind the row's own URL, then keep it
    ROLL_OUT = "roll_out"  # render in the current design, at the rollout's pace
    WAIT = "wait"  # nothing until the card's data changes


class Finding(StrEnum):
    """What the image checks make of a card (`Reason.finding`)."""

    MISSING = "missing"  # a run took the card and left it without a URL
    FAILED = "failed"  # its last render failed, and its data has not changed since
    QUEUED = "queued"  # no URL, changed or cleared since a run read it: the next run's work
    UNSEEN = "unseen"  # no URL, never read by a run
    NOT_CANONICAL = "not_canonical"  # the pipeline's own URL, not (yet) the canonical one
    TO_ADOPT = "to_adopt"  # someone else's URL: the next run confirms and keeps it, or not
    STALE = "stale"  # an image of data that has changed since
    OLD_DESIGN = "old_design"  # an image of the current data in an older design


F = Finding


class Reason(Enum):
    """Every rule: (state, next, finding with a URL, finding without one, words for people).
    A finding of None is nothing to report; "-" marks a case the rule never meets."""

    NEW = (State.UNSEEN, Next.RENDER, "-", F.UNSEEN, "no image yet: no run has read this row")
    UNSEEN_URL = (
        State.UNSEEN, Next.ADOPT, F.TO_ADOPT, "-", "its URL was not made by the pipeline"
    )  # fmt: skip
    OTHER_WRITER = (
        State.PENDING, Next.ADOPT, F.TO_ADOPT, "-", "its URL was set by someone else"
    )  # fmt: skip
    WAITING = (
        State.PENDING, Next.RENDER, F.NOT_CANONICAL, F.MISSING,
        "waiting for a run to make its image",
    )  # fmt: skip
    FAILED = (State.FAILED, Next.WAIT, F.FAILED, F.FAILED, "its last render failed")
    CHANGED_SINCE_FAILURE = (
        State.PENDING, Next.RENDER, F.STALE, F.QUEUED, "its data changed since its render failed"
    )  # fmt: skip
    ADOPTED = (State.ADOPTED, Next.NOTHING, None, "-", "keeps the image it had before the pipeline")
    ADOPTED_CLEARED = (State.PENDING, Next.RENDER, "-", F.QUEUED, "its adopted URL was cleared")
    ADOPTED_CHANGED = (
        State.STALE, Next.RENDER, F.STALE, F.QUEUED, "its data changed since its image was adopted"
    )  # fmt: skip
    REPLACE_ADOPTED = (
        State.STALE_BY_DESIGN, Next.ROLL_OUT, F.OLD_DESIGN, "-",
        "its adopted image is to be replaced (PD_ADOPT=replace)",
    )  # fmt: skip
    DATA_CHANGED = (
        State.STALE, Next.RENDER, F.STALE, F.QUEUED, "its data changed since its image was made"
    )  # fmt: skip
    DESIGN_CHANGED = (
        State.STALE_BY_DESIGN, Next.ROLL_OUT, F.OLD_DESIGN, F.QUEUED,
        "the card design changed since its image was made",
    )  # fmt: skip
    URL_NOT_WRITTEN = (
        State.STORED, Next.WRITE_URL, F.NOT_CANONICAL, F.MISSING,
        "its image is stored; its URL is not written",
    )  # fmt: skip
    URL_CLEARED = (
        State.PENDING, Next.RENDER, "-", F.QUEUED,
        "its URL was cleared: its stored image is to be confirmed again",
    )  # fmt: skip
    URL_NOT_CANONICAL = (
        State.STORED, Next.RENDER, F.NOT_CANONICAL, F.QUEUED,
        "its URL is not the canonical URL of its image (was PD_PUBLIC_BASE_URL changed?)",
    )  # fmt: skip
    SETTLED = (State.SETTLED, Next.NOTHING, None, "-", "its URL shows its current image")
    # The animated image only (a tier the design animates, or no longer does):
    NOT_ANIMATED = (
        State.SETTLED, Next.NOTHING, "-", None, "its design does not animate its tier"
    )  # fmt: skip
    NEW_ANIMATION = (
        State.STALE_BY_DESIGN, Next.ROLL_OUT, "-", None,
        "its design animates its tier, and its still came from elsewhere or an older design: "
        "its animation comes at the rollout's pace",
    )  # fmt: skip
    ANIMATION_RETIRED = (
        State.STALE_BY_DESIGN, Next.ROLL_OUT, F.OLD_DESIGN, None,
        "its design no longer animates its tier: its animated URL is cleared at the "
        "rollout's pace",
    )  # fmt: skip

    @property
    def state(self) -> State:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[4]

    def finding(self, has_url: bool) -> Finding | None:
        """What the checks make of a card under this rule, with or without a URL in its row."""
        found = self.value[2] if has_url else self.value[3]
        return None if found == "-" else found

    def served(self, has_url: bool) -> bool:
        """Whether the row's URL is served as the card's image (so its object must be valid):
        a current image, or one of older data or an older design until it is replaced."""
        return has_url and self.finding(True) in (None, F.STALE, F.OLD_DESIGN)


# What PD_ADOPT may say of URLs the pipeline did not make.
KEEP, REPLACE = "keep", "replace"


@dataclass(frozen=True)
class Policy:
    """What a card is held to besides its row and entry: the design, where its URLs point,
    and what becomes of URLs others made."""

    template_version: str
    public_base_url: str
    adopt: str = KEEP
    adopt_outside: str = "render"  # URLs outside the store: render, check over http, or trust
    adopt_http_hosts: str | None = None  # PD_ADOPT_HTTP_HOSTS, as set
    animated_tiers: frozenset[int] = frozenset()  # the tiers the design animates

    @classmethod
    def of(cls, design: "CardPages", public_base_url: str, **adoption: Any) -> "Policy":
        """The policy of a design (its version, the tiers it animates) and a store's base URL;
        `adoption` is the PD_ADOPT* fields."""
        return cls(design.version, public_base_url, animated_tiers=frozenset(design.animations),
                   **adoption)  # fmt: skip

    @functools.cached_property
    def http_hosts(self) -> AllowedHosts:
        """The hosts `http` adoption may fetch from: the one place that decides."""
        return AllowedHosts.choose(self.adopt_http_hosts, self.public_base_url)

    def canonical_url(self, card: Card, sha256: str, image: Image = Image.STATIC) -> str:
        return public_url(self.public_base_url, key_of(card, image), sha256)

    def animates(self, card: Card) -> bool:
        return tier_of(card.variant) in self.animated_tiers


def key_of(card: Card, image: Image = Image.STATIC) -> str:
    """The object key of one of the card's images."""
    return object_key(card.card_type, card.cardset_id, card.player_id, card.variant, image)


@dataclass(frozen=True)
class Verdict:
    reason: Reason
    next: Next

    @property
    def state(self) -> State:
        return self.reason.state


def assess(
    card: Card,
    entry: Entry | None,
    policy: Policy,
    image: Image = Image.STATIC,
    static: Entry | None = None,
) -> Verdict:
    """The rule that applies to one of `card`'s images now, and what happens next. For the
    animated image, `static` is the entry of its static one (its design tells whether a missing
    animation is new work or the rollout's)."""
    if image is Image.ANIMATED:
        return _verdict(_animated(card, entry, policy, static), policy)
    return _verdict(_reason(card, entry, policy), policy)


def _animated(card: Card, entry: Entry | None, policy: Policy, static: Entry | None) -> Reason:
    if not policy.animates(card):  # an animated URL others wrote for such a card stays theirs
        return Reason.NOT_ANIMATED if entry is None else Reason.ANIMATION_RETIRED
    if entry is None and card.animated_url is None and static is not None:
        # A still adopted, or made before the design animated its tier (db.candidates.Gaps).
        older = static.template_version != policy.template_version
        if static.status == LedgerStatus.KEPT or (static.status == LedgerStatus.MADE and older):
            return Reason.NEW_ANIMATION
    return _reason(card, entry, policy, Image.ANIMATED)


def _verdict(reason: Reason, policy: Policy) -> Verdict:
    action = reason.value[1]
    if action is Next.ADOPT and policy.adopt == REPLACE:
        action = Next.RENDER  # replacing what others made is asked for
    return Verdict(reason, action)


def _reason(card: Card, entry: Entry | None, policy: Policy, image: Image = Image.STATIC) -> Reason:
    url = card.url(image)
    if entry is None:
        return Reason.NEW if url is None else Reason.UNSEEN_URL
    if url is not None and not _ours(url, card, entry, policy, image):
        return Reason.OTHER_WRITER
    digest = card.input_hash(policy.template_version)
    if entry.status == LedgerStatus.RENDER_FAILED:
        return Reason.FAILED if entry.input_hash == digest else Reason.CHANGED_SINCE_FAILURE
    if entry.status == LedgerStatus.KEPT:
        if url is None:
            return Reason.ADOPTED_CLEARED
        if entry.data_hash != card.data_hash:
            return Reason.ADOPTED_CHANGED
        return Reason.REPLACE_ADOPTED if policy.adopt == REPLACE else Reason.ADOPTED
    if entry.status != LedgerStatus.MADE:
        # Only noted by the sensor's sweep (no run took it yet): as new as a row with no entry.
        return Reason.WAITING if entry.run_id or url is not None else Reason.NEW
    if entry.input_hash != digest:
        if entry.data_hash is not None and entry.data_hash == card.data_hash:
            return Reason.DESIGN_CHANGED
        return Reason.DATA_CHANGED
    canonical = policy.canonical_url(card, entry.png_sha256, image)
    if url == canonical:
        return Reason.SETTLED
    if entry.url != canonical:
        return Reason.URL_NOT_CANONICAL
    if url is None:  # NULL now; was it when the pipeline last read or wrote the row?
        return Reason.URL_NOT_WRITTEN if entry.seen_url is None else Reason.URL_CLEARED
    if url == entry.seen_url:  # what the row showed before: the new URL is to be written
        return Reason.URL_NOT_WRITTEN
    return Reason.URL_NOT_CANONICAL  # its own key, with a token that is not its bytes'


def _ours(url: str, card: Card, entry: Entry, policy: Policy, image: Image) -> bool:
    """Whether the row's URL is one the pipeline wrote or last read there, or names the card's
    own object (else someone else set it since)."""
    if url in (entry.url, entry.seen_url):
        return True
    return key_of_url(policy.public_base_url, url) == key_of(card, image)


# ---------------------------------------------------------------------------------------------
# Transitions: the columns each event sets on a card's ledger row. The ones that only note that
# a card waits are upserted with WAITING_UPSERT: once set, the time a card first waited stays,
# and `status` (what was last made) is set only on a card that has no entry yet.

WAITING_UPSERT = {"keep": ("first_pending_at", "found_by"), "insert_only": ("status",)}


class FoundBy(StrEnum):
    """How work on a card was found (the `found_by` column, for `pd-pipeline why`)."""

    TRACKED_CHANGE = "tracked change"  # the database's triggers queued it; the sensor drained it
    SWEEP = "sweep"  # the sensor's rolling sweep (no tracked changes)
    FIRST_LOOK = "first look"  # the first look at a database's rows
    NO_URL = "no URL"  # its row has no URL (a new card, a new variant, a cleared URL)
    RUN = "a run's read"  # a run read it among the cards that may need work
    RECONCILE = "nightly reconcile"  # the reconcile's read of every card
    WRITE_BACK = "write-back"  # the row changed while a run made its image


def _row(card: Card, image: Image, **values: Any) -> dict[str, Any]:
    return {
        "card_type": card.card_type,
        "card_id": card.card_id,
        "image": image.value,
        "cardset_id": card.cardset_id,
        "player_id": card.player_id,
        "variant": card.variant,
        "release": __version__,
        **values,
    }


def taken(
    card: Card,
    now: dt.datetime,
    run_id: str | None,
    found_by: FoundBy,
    image: Image = Image.STATIC,
) -> dict:
    """A run takes the card's image: note the URL it read (anything else there later is someone
    else's), since when it waits and how its work was found (unless already noted)."""
    return _row(
        card,
        image,
        status=LedgerStatus.TAKEN,
        found_by=found_by,
        seen_url=card.url(image),
        first_pending_at=now,
        run_id=run_id,
    )


def object_confirmed(
    card: Card,
    policy: Policy,
    *,
    sha256: str,
    md5: str | None,
    size: int,
    now: dt.datetime,
    run_id: str | None,
    image: Image = Image.STATIC,
) -> dict:
    """An object of the card's current inputs is confirmed in the store."""
    key = key_of(card, image)
    return _row(
        card,
        image,
        status=LedgerStatus.MADE,
        input_hash=card.input_hash(policy.template_version),
        data_hash=card.data_hash,
        template_version=policy.template_version,
        object_key=key,
        png_sha256=sha256,
        png_md5=md5,
        png_bytes=size,
        url=public_url(policy.public_base_url, key, sha256),
        error=None,
        rendered_at=now,
        run_id=run_id,
    )


def failed(
    card: Card, policy: Policy, error: str, run_id: str | None, image: Image = Image.STATIC
) -> dict:
    """The image's render failed. Its inputs are kept: it is tried again once they change."""
    return _row(
        card,
        image,
        status=LedgerStatus.RENDER_FAILED,
        input_hash=card.input_hash(policy.template_version),
        data_hash=card.data_hash,
        template_version=policy.template_version,
        error=error[:ERROR_MAX],
        flag=None,
        run_id=run_id,
    )


def url_kept(
    card: Card,
    *,
    size: int | None,
    now: dt.datetime,
    run_id: str | None,
    image: Image = Image.STATIC,
) -> dict:
    """The row's own URL is confirmed and kept, for as long as the card's data stays as now."""
    return _row(
        card,
        image,
        status=LedgerStatus.KEPT,
        input_hash=None,
        data_hash=card.data_hash,
        template_version=None,
        object_key=None,
        png_sha256=None,
        png_md5=None,
        png_bytes=size,
        url=card.url(image),
        seen_url=card.url(image),
        error=None,
        flag=None,
        first_pending_at=None,
        written_at=now,
        run_id=run_id,
    )


def waiting(card: Card, now: dt.datetime) -> dict:
    """A sweep saw the card waiting (a NULL URL, which the sensor finds by its index): from now."""
    return _row(card, Image.STATIC, status=LedgerStatus.TAKEN, first_pending_at=now,
                found_by=FoundBy.NO_URL)  # fmt: skip


def flagged(
    card: Card,
    reason: Reason,
    now: dt.datetime,
    found_by: FoundBy,
    image: Image = Image.STATIC,
) -> dict:
    """Work found outside a run (tracked changes, the sweep, a write-back): the sensor's backlog
    sees it."""
    return _row(card, image, status=LedgerStatus.TAKEN, flag=reason.name.lower(),
                first_pending_at=now, found_by=found_by)  # fmt: skip


# What work found outside a run is noted for: what a run would do. Cards rolled out to a new
# design are paced by the rollout, and failed ones wait for their data to change.
NOTED = {Next.RENDER, Next.ADOPT, Next.WRITE_URL}


def noticed(
    card: Card,
    entry: Entry | None,
    verdict: Verdict,
    now: dt.datetime,
    found_by: FoundBy,
    image: Image = Image.STATIC,
) -> dict | None:
    """The row a sweep or a drain of tracked changes writes for an image it assessed, if any: a
    flag the sensor's backlog sees, or for a NULL `image_url` (which the backlog finds by its
    index) only since when it waits. A failed card with a NULL URL is left out of the backlog
    until its data changes: then it is flagged."""
    if card.cardset_id is None or verdict.next not in NOTED:
        return None
    indexed = image is Image.STATIC and card.image_url is None
    if indexed and (entry is None or entry.status != LedgerStatus.RENDER_FAILED):
        if entry is None or entry.first_pending_at is None:
            return waiting(card, now)
        return None
    if entry is None or entry.flag is None:
        return flagged(card, verdict.reason, now, found_by, image)
    return None


def written(now: dt.datetime, run_id: str | None) -> dict:
    """The rows now carry their confirmed object's URL: those cards are done."""
    return {"seen_url": card_render.c.url, "flag": None, "found_by": None,
            "first_pending_at": None, "written_at": now, "run_id": run_id,
            "release": __version__}  # fmt: skip


# A card found done (settled, adopted, or failed and unchanged) waits for nothing.
UNFLAGGED = {"flag": None, "found_by": None}
