"""Card state: where each card's image stands, and every change to the ledger. The one owner.

`assess(card, entry, ctx)` is a pure function of a card row, its `card_render` entry and the
run's context (design version, public base URL, adoption policy). It names the rule that applies
(a `Reason`), which gives the card's `State` and what happens `Next`. Plan, sweep, write-back,
checks, `pd-pipeline status` and `pd-pipeline why` all ask it, and nothing else decides.

The functions at the end are the ledger's transitions: each returns the columns one event sets.
The database layer only persists them.
"""

import datetime as dt
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from pd_pipeline.db.ledger import Entry
from pd_pipeline.db.schema import card_render
from pd_pipeline.model import Card
from pd_pipeline.storage.keys import key_of_url, object_key, public_url

# Ledger statuses: what the pipeline last made for a card.
PENDING, STORED, FAILED, ADOPTED = "pending", "stored", "failed", "adopted"
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


class Reason(Enum):
    """Every rule, as (state, next, what to tell a person)."""

    NEW = (State.UNSEEN, Next.RENDER, "no image yet: no run has read this row")
    UNSEEN_URL = (State.UNSEEN, Next.ADOPT, "its URL was not made by the pipeline")
    OTHER_WRITER = (State.PENDING, Next.ADOPT, "its URL was set by someone else")
    WAITING = (State.PENDING, Next.RENDER, "waiting for a run to make its image")
    FAILED = (State.FAILED, Next.WAIT, "its last render failed")
    CHANGED_SINCE_FAILURE = (State.PENDING, Next.RENDER, "its data changed since its render failed")
    ADOPTED = (State.ADOPTED, Next.NOTHING, "keeps the image it had before the pipeline")
    ADOPTED_CLEARED = (State.PENDING, Next.RENDER, "its adopted URL was cleared")
    ADOPTED_CHANGED = (State.STALE, Next.RENDER, "its data changed since its image was adopted")
    REPLACE_ADOPTED = (
        State.STALE_BY_DESIGN,
        Next.ROLL_OUT,
        "its adopted image is to be replaced (PD_ADOPT=replace)",
    )
    DATA_CHANGED = (State.STALE, Next.RENDER, "its data changed since its image was made")
    DESIGN_CHANGED = (
        State.STALE_BY_DESIGN,
        Next.ROLL_OUT,
        "the card design changed since its image was made",
    )
    URL_NOT_WRITTEN = (State.STORED, Next.WRITE_URL, "its image is stored; its URL is not written")
    URL_CLEARED = (
        State.PENDING,
        Next.RENDER,
        "its URL was cleared: its stored image is to be confirmed again",
    )
    URL_NOT_CANONICAL = (
        State.STORED,
        Next.RENDER,
        "its URL is not the canonical URL of its image (was PD_PUBLIC_BASE_URL changed?)",
    )
    SETTLED = (State.SETTLED, Next.NOTHING, "its URL shows its current image")

    @property
    def state(self) -> State:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[2]


# What PD_ADOPT may say of URLs the pipeline did not make.
KEEP, REPLACE = "keep", "replace"


@dataclass(frozen=True)
class Context:
    """What a card's state depends on besides its row and entry."""

    template_version: str
    public_base_url: str
    adopt: str = KEEP
    adopt_outside: str = "render"  # URLs outside the store: render, check over http, or trust

    def canonical_url(self, card: Card, png_sha256: str) -> str:
        key = object_key(card.card_type, card.cardset_id, card.player_id, card.variant)
        return public_url(self.public_base_url, key, png_sha256)


@dataclass(frozen=True)
class Verdict:
    reason: Reason
    next: Next

    @property
    def state(self) -> State:
        return self.reason.state


def assess(card: Card, entry: Entry | None, ctx: Context) -> Verdict:
    """The rule that applies to `card` now, and what happens next."""
    return _verdict(_reason(card, entry, ctx), ctx)


def _verdict(reason: Reason, ctx: Context) -> Verdict:
    _, action, _ = reason.value
    if action is Next.ADOPT and ctx.adopt == REPLACE:
        action = Next.RENDER  # replacing what others made is asked for
    return Verdict(reason, action)


def _reason(card: Card, entry: Entry | None, ctx: Context) -> Reason:
    url = card.image_url
    if entry is None:
        return Reason.NEW if url is None else Reason.UNSEEN_URL
    if url is not None and not _ours(url, card, entry, ctx):
        return Reason.OTHER_WRITER
    digest = card.input_hash(ctx.template_version)
    if entry.status == FAILED:
        return Reason.FAILED if entry.input_hash == digest else Reason.CHANGED_SINCE_FAILURE
    if entry.status == ADOPTED:
        if url is None:
            return Reason.ADOPTED_CLEARED
        if entry.data_hash != card.data_hash:
            return Reason.ADOPTED_CHANGED
        return Reason.REPLACE_ADOPTED if ctx.adopt == REPLACE else Reason.ADOPTED
    if entry.status != STORED:
        # Only noted by the sensor's sweep (no run took it yet): as new as a row with no entry.
        return Reason.WAITING if entry.run_id or url is not None else Reason.NEW
    if entry.input_hash != digest:
        if entry.data_hash is not None and entry.data_hash == card.data_hash:
            return Reason.DESIGN_CHANGED
        return Reason.DATA_CHANGED
    canonical = ctx.canonical_url(card, entry.png_sha256)
    if url == canonical:
        return Reason.SETTLED
    if entry.url != canonical:
        return Reason.URL_NOT_CANONICAL
    if url is None:  # NULL now; was it when the pipeline last read or wrote the row?
        return Reason.URL_NOT_WRITTEN if entry.seen_url is None else Reason.URL_CLEARED
    if url == entry.seen_url:  # what the row showed before: the new URL is to be written
        return Reason.URL_NOT_WRITTEN
    return Reason.URL_NOT_CANONICAL  # its own key, with a token that is not its bytes'


def _ours(url: str, card: Card, entry: Entry, ctx: Context) -> bool:
    """Whether the row's URL is one the pipeline wrote or last read there, or names the card's
    own object (else someone else set it since)."""
    if url in (entry.url, entry.seen_url):
        return True
    key = object_key(card.card_type, card.cardset_id, card.player_id, card.variant)
    return key_of_url(ctx.public_base_url, url) == key


# ---------------------------------------------------------------------------------------------
# Transitions: the columns each event sets on a card's ledger row. The ones that only note that
# a card waits are upserted with WAITING_UPSERT: once set, the time a card first waited stays,
# and `status` (what was last made) is set only on a card that has no entry yet.

WAITING_UPSERT = {"keep": ("first_pending_at",), "insert_only": ("status",)}


def _row(card: Card, **values: Any) -> dict[str, Any]:
    return {
        "card_type": card.card_type,
        "card_id": card.card_id,
        "cardset_id": card.cardset_id,
        "player_id": card.player_id,
        "variant": card.variant,
        **values,
    }


def taken(card: Card, now: dt.datetime, run_id: str | None) -> dict:
    """A run takes the card: note the URL it read (anything else there later is someone
    else's) and since when the card waits."""
    return _row(card, status=PENDING, seen_url=card.image_url, first_pending_at=now, run_id=run_id)


def stored(
    card: Card,
    ctx: Context,
    *,
    sha256: str,
    md5: str | None,
    size: int,
    now: dt.datetime,
    run_id: str | None,
) -> dict:
    """An object of the card's current inputs is confirmed in the store."""
    key = object_key(card.card_type, card.cardset_id, card.player_id, card.variant)
    return _row(
        card,
        status=STORED,
        input_hash=card.input_hash(ctx.template_version),
        data_hash=card.data_hash,
        template_version=ctx.template_version,
        object_key=key,
        png_sha256=sha256,
        png_md5=md5,
        png_bytes=size,
        url=public_url(ctx.public_base_url, key, sha256),
        error=None,
        rendered_at=now,
        run_id=run_id,
    )


def failed(card: Card, ctx: Context, error: str, run_id: str | None) -> dict:
    """The card's render failed. Its inputs are kept: it is tried again once they change."""
    return _row(
        card,
        status=FAILED,
        input_hash=card.input_hash(ctx.template_version),
        data_hash=card.data_hash,
        error=error[:ERROR_MAX],
        flag=None,
        run_id=run_id,
    )


def adopted(card: Card, *, size: int | None, now: dt.datetime, run_id: str | None) -> dict:
    """The row's own URL is confirmed and kept, for as long as the card's data stays as now."""
    return _row(
        card,
        status=ADOPTED,
        input_hash=None,
        data_hash=card.data_hash,
        template_version=None,
        object_key=None,
        png_sha256=None,
        png_md5=None,
        png_bytes=size,
        url=card.image_url,
        seen_url=card.image_url,
        error=None,
        flag=None,
        first_pending_at=None,
        written_at=now,
        run_id=run_id,
    )


def waiting(card: Card, now: dt.datetime) -> dict:
    """A sweep saw the card waiting (a NULL URL, which the sensor finds by its index): from now."""
    return _row(card, status=PENDING, first_pending_at=now)


def flagged(card: Card, reason: Reason, now: dt.datetime) -> dict:
    """Work found outside a run (by a sweep or a write-back): the sensor's backlog sees it."""
    return _row(card, status=PENDING, flag=reason.name.lower(), first_pending_at=now)


def written(now: dt.datetime, run_id: str | None) -> dict:
    """The rows now carry their confirmed object's URL: those cards are done."""
    return {"seen_url": card_render.c.url, "flag": None, "first_pending_at": None,
            "written_at": now, "run_id": run_id}  # fmt: skip


# A card found done (settled, adopted, or failed and unchanged) waits for nothing.
UNFLAGGED = {"flag": None}
