"""Making the PNGs of one cardset: find the cards whose image is missing or stale, render them,
verify, upload and confirm each object, and record it in the ledger. URLs are written elsewhere
(`db.writeback`), only from what this step confirmed.

Rendering streams: markup goes to the browser pool, finished PNGs go to a thread pool that
verifies and uploads them while the browser renders the next cards, and ledger rows are written
in batches.
"""

import contextlib
import hashlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pd_pipeline.db import ledger
from pd_pipeline.db.cards import CARD_TYPES, Card, load_cards
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chart import CardDataError, validate
from pd_pipeline.render.html import CardTemplates
from pd_pipeline.render.png import InvalidPng, verify_png
from pd_pipeline.storage.keys import object_key, partition_key, public_url
from pd_pipeline.storage.stores import PNG, ObjectStore

log = logging.getLogger(__name__)
LEDGER_BATCH = 200
IO_THREADS = 8
MAX_UPLOADS_IN_FLIGHT = 4 * IO_THREADS
PROGRESS_EVERY_S = 5.0
SAMPLE_PNGS = 12
STORE_FAILURES_TO_GIVE_UP = 5  # uploads failing in a row (each after the client's retries)


class StoreUnavailable(RuntimeError):
    pass


@dataclass
class PngReport:
    """What one cardset's PNG step did, for metadata, logs and the run's verdict."""

    card_type: str
    cardset_id: int
    cards: int = 0
    current: int = 0  # image already current and its URL written: nothing to do
    reused: int = 0  # a confirmed object already shows the current data: not rendered again
    rendered: int = 0
    uploaded: int = 0  # rendered bytes that differed from the stored object
    failed: int = 0
    png_bytes: int = 0
    render_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (card label, error)
    orphans: list[str] = field(default_factory=list)  # keys no card uses (verify_objects only)
    samples: list[bytes] = field(default_factory=list)  # a few rendered PNGs, for previews

    @property
    def partition(self) -> str:
        return partition_key(self.cardset_id)


@dataclass
class _Todo:
    card: Card
    input_hash: str
    key: str
    # The store was asked and holds no object of these inputs: upload without asking again.
    not_in_store: bool = False


def make_pngs(
    engine: sa.Engine,
    store: ObjectStore,
    browser: Callable[[], BrowserPool],
    templates: CardTemplates,
    card_type: str,
    cardset_id: int,
    *,
    rerender_all: bool = False,
    verify_objects: bool = False,
    logger: logging.Logger | Any = log,
) -> PngReport:
    """Bring every card of one type in a cardset to a confirmed, current PNG in the store.

    `browser` is called only when something must be rendered, so a run with nothing to do never
    starts Chromium. With `rerender_all`, every card is rendered again (identical bytes are still
    not uploaded again, so URLs only change where pixels did). With `verify_objects`, the objects
    of settled cards are checked too (a lost or altered one is made again) and objects in the
    cardset's folder that no card uses are reported as orphans. `logger` may be `context.log`.
    """
    step = _CardsetPngs(engine, store, templates, card_type, cardset_id, logger)
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="store") as io:
        todo = step.plan(rerender_all, verify_objects, io)
        try:
            if todo:
                to_render = todo if rerender_all else step.reuse_stored(todo, io)
                if to_render:
                    step.render_and_store(to_render, browser, io)
        finally:
            step.recorder.flush()  # whatever was confirmed is recorded, even if the step fails
    return step.report


class _CardsetPngs:
    def __init__(self, engine, store, templates, card_type, cardset_id, logger):
        self.engine, self.store, self.templates, self.logger = engine, store, templates, logger
        self.card_type, self.cardset_id = card_type, cardset_id
        self.report = PngReport(card_type, cardset_id)
        self.recorder = _LedgerRecorder(engine, card_type, store)
        self.store_failures_in_a_row = 0

    def plan(self, rerender_all: bool, verify_objects: bool, io: ThreadPoolExecutor) -> list[_Todo]:
        """The cards needing work, each marked pending in the ledger (with the URL seen on it)."""
        with self.engine.connect() as conn:
            cards = load_cards(conn, self.card_type, cardset_id=self.cardset_id)
            made = ledger.entries(conn, self.card_type, [c.card_id for c in cards])
        self.report.cards = len(cards)
        todo, settled = [], []
        for card in cards:
            digest = card.input_hash(self.templates.version)
            entry = made.get(card.card_id)
            key = object_key(self.card_type, self.cardset_id, card.player_id, card.variant)
            is_settled = (
                entry is not None
                and entry.status == ledger.STORED
                and entry.input_hash == digest
                and card.image_url == entry.url
            )
            (settled if is_settled and not rerender_all else todo).append(_Todo(card, digest, key))
        if verify_objects:
            todo += self._lost_objects(settled, made, io)
            self.report.orphans = self._orphans([t.key for t in todo + settled])
        self.report.current = self.report.cards - len(todo)
        self._mark_pending(todo, made)
        return todo

    def _lost_objects(self, settled: list[_Todo], made: dict, io) -> list[_Todo]:
        """Settled cards whose object is gone or no longer holds the bytes their URL names."""
        heads = self._head_all(settled, io)
        lost = []
        for item, head in zip(settled, heads, strict=True):
            if head is None or head.sha256 != made[item.card.card_id].png_sha256:
                self.logger.warning(f"{item.card.label}: object {item.key} lost or altered")
                lost.append(item)
        return lost

    def _orphans(self, used_keys: list[str]) -> list[str]:
        """Objects of this card type in the cardset's folder that no card row uses."""
        used = set(used_keys)
        return sorted(
            key
            for key in self._listed(self._folder())
            if key.endswith(f"/{self.card_type}.png") and key not in used
        )

    def _folder(self) -> str:
        return f"cards/{partition_key(self.cardset_id)}/"

    def _mark_pending(self, todo: list[_Todo], made: dict) -> None:
        now = ledger.utcnow()
        rows = [
            {
                "card_type": self.card_type,
                "card_id": t.card.card_id,
                "cardset_id": self.cardset_id,
                "player_id": t.card.player_id,
                "variant": t.card.variant,
                "seen_url": t.card.image_url,
                "first_pending_at": now,
                "status": made[t.card.card_id].status if t.card.card_id in made else ledger.PENDING,
            }
            for t in todo
        ]
        with self.engine.begin() as conn:
            ledger.upsert(conn, rows, keep=("first_pending_at",))

    def reuse_stored(self, todo: list[_Todo], io: ThreadPoolExecutor) -> list[_Todo]:
        """Cards whose current image is already in the store: confirm it and skip rendering."""
        # A listing of the cardset's folder (1,000 keys a request; both card types share it)
        # rules out the cards with no object at all, when that is cheaper than asking for each.
        if len(todo) > self.report.cards // 500:
            stored = set(self._listed(self._folder()))
            looked_up = [t for t in todo if t.key in stored]
        else:
            looked_up = todo
        heads = dict(zip((t.key for t in looked_up), self._head_all(looked_up, io), strict=True))
        to_render = []
        for item in todo:
            head = heads.get(item.key)
            current = head and head.content_type == PNG and head.input_hash == item.input_hash
            if current and head.sha256:
                self.recorder.stored(item, head.sha256, head.size)
                self.report.reused += 1
            else:
                item.not_in_store = True
                to_render.append(item)
        return to_render

    def render_and_store(
        self, todo: list[_Todo], browser: Callable[[], BrowserPool], io: ThreadPoolExecutor
    ) -> None:
        # Markup is made as the pool asks for it (overlapping Chromium), and the browser starts
        # only once a card has some.
        jobs = self._markup(todo)
        first = next(jobs, None)
        if first is None:
            return
        started = time.monotonic()
        progress = _Progress(self.report, len(todo), self.logger)
        uploads: list[Future] = []
        for result in browser().render_many(itertools.chain([first], jobs)):
            item = todo[result.job_id]
            if result.png is None:
                self.fail(item, f"{item.card.label}: {result.error}")
            else:
                self.report.rendered += 1
                if len(self.report.samples) < SAMPLE_PNGS:
                    self.report.samples.append(result.png)
                uploads.append(io.submit(_store_one, self.store, item, result.png))
            uploads = self._collect(uploads, wait=False)
            progress.tick()
        self._collect(uploads, wait=True)
        self.report.render_seconds = time.monotonic() - started
        progress.done()

    def _markup(self, todo: list[_Todo]) -> Iterator[tuple[int, str]]:
        for index, item in enumerate(todo):
            try:
                yield index, self.templates.body(item.card)
            except CardDataError as e:
                self.fail(item, str(e))

    def _collect(self, uploads: list[Future], *, wait: bool) -> list[Future]:
        """Record finished uploads; the ones still running, at most MAX_UPLOADS_IN_FLIGHT
        (rendering waits for the store rather than holding ever more PNGs in memory)."""
        pending = []
        for index, future in enumerate(uploads):
            must_wait = wait or len(uploads) - index > MAX_UPLOADS_IN_FLIGHT
            if not must_wait and not future.done():
                pending.append(future)
                continue
            item, outcome = future.result()
            if isinstance(outcome, Exception):
                self.fail(item, f"{item.card.label}: {outcome}")
                self._give_up_on_a_dead_store(outcome)
                continue
            self.store_failures_in_a_row = 0
            sha, size, uploaded = outcome
            self.recorder.stored(item, sha, size)
            self.report.uploaded += uploaded
            self.report.png_bytes += size
        return pending

    def _head_all(self, items: list[_Todo], io: ThreadPoolExecutor) -> list:
        with self._store_unavailable():
            return list(io.map(lambda t: self.store.head(t.key), items))

    def _listed(self, folder: str) -> list[str]:
        with self._store_unavailable():
            return list(self.store.list(folder))

    @contextlib.contextmanager
    def _store_unavailable(self) -> Iterator[None]:
        try:
            yield
        except Exception as e:
            raise StoreUnavailable(
                f"object store {self.store.describe()} is unavailable: {e}"
            ) from e

    def _give_up_on_a_dead_store(self, error: Exception) -> None:
        """Uploads fail one card at a time, but a store that fails them all is down: stop the
        step with one clear error instead of failing every remaining card (its retries already
        spent). What was confirmed so far stays recorded; the rerun does the rest."""
        if isinstance(error, InvalidPng):
            return  # the card's fault, not the store's
        self.store_failures_in_a_row += 1
        if self.store_failures_in_a_row >= STORE_FAILURES_TO_GIVE_UP:
            raise StoreUnavailable(
                f"object store {self.store.describe()} is unavailable: "
                f"{self.store_failures_in_a_row} uploads in a row failed (last: {error})"
            ) from error

    def fail(self, item: _Todo, error: str) -> None:
        self.logger.warning(f"card failed: {error}")
        self.report.failed += 1
        self.report.failures.append((item.card.label, error))
        self.recorder.failed(item, error)


def cards_without_cardset(engine: sa.Engine) -> list[tuple[str, str]]:
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


def _store_one(store: ObjectStore, item: _Todo, png: bytes) -> tuple[_Todo, Any]:
    """`(item, (sha, size, uploaded))`, or `(item, error)` for a card whose PNG was not stored."""
    try:
        return item, _verify_upload_confirm(store, item, png)
    except Exception as e:
        return item, e


def _verify_upload_confirm(store: ObjectStore, item: _Todo, png: bytes) -> tuple[str, int, bool]:
    """Verify, upload unless identical bytes are already there, and confirm the object."""
    verify_png(png)
    sha = hashlib.sha256(png).hexdigest()
    head = None if item.not_in_store else store.head(item.key)
    uploaded = not (head and head.sha256 == sha and head.input_hash == item.input_hash)
    if uploaded:
        head = store.put(item.key, png, sha256=sha, input_hash=item.input_hash)
    if head is None or head.sha256 != sha or head.size != len(png) or head.content_type != PNG:
        raise RuntimeError(f"upload of {item.key} not confirmed by the store (got {head})")
    return sha, len(png), uploaded


class _LedgerRecorder:
    """Buffers ledger updates and writes them in batches (one transaction per batch)."""

    def __init__(self, engine: sa.Engine, card_type: str, store: ObjectStore):
        self.engine, self.card_type, self.store = engine, card_type, store
        self.rows: list[dict[str, Any]] = []

    def _row(self, item: _Todo, **values) -> dict[str, Any]:
        return {"card_type": self.card_type, "card_id": item.card.card_id, **values}

    def stored(self, item: _Todo, sha: str, size: int) -> None:
        url = public_url(self.store.public_base_url, item.key, sha)
        now = ledger.utcnow()
        self._add(
            self._row(
                item,
                status=ledger.STORED,
                input_hash=item.input_hash,
                object_key=item.key,
                png_sha256=sha,
                png_bytes=size,
                url=url,
                error=None,
                rendered_at=now,
            )  # fmt: skip
        )

    def failed(self, item: _Todo, error: str) -> None:
        # The failed inputs are kept, so a sweep retries the card only once its data changes.
        row = self._row(item, status=ledger.FAILED, error=error[:2000], input_hash=item.input_hash)
        self._add(row)

    def _add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= LEDGER_BATCH:
            self.flush()

    def flush(self) -> None:
        # Rows of one shape per statement: stored and failed rows set different columns.
        by_shape: dict[tuple, list] = {}
        for row in self.rows:
            by_shape.setdefault(tuple(row), []).append(row)
        with self.engine.begin() as conn:
            for rows in by_shape.values():
                ledger.upsert(conn, rows)
        self.rows.clear()


class _Progress:
    """Logs done/total, cards/s and ETA every few seconds."""

    def __init__(self, report: PngReport, total: int, logger):
        self.report, self.total, self.logger = report, total, logger
        self.started = self.last = time.monotonic()

    def _line(self) -> str:
        done = self.report.rendered + self.report.failed
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate else float("inf")
        return (
            f"{self.report.card_type} {self.report.partition}: {done}/{self.total} rendered, "
            f"{rate:.1f} cards/s, ETA {eta:.0f}s"
        )

    def tick(self) -> None:
        if time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.last = time.monotonic()
            self.logger.info(self._line())

    def done(self) -> None:
        self.logger.info(self._line().replace(", ETA 0s", ""))
