"""Making one image (the static PNGs, or the animated APNGs) of one cardset's cards: plan, adopt
what others made, reuse what is stored, render the rest, verify, upload and confirm each object,
and record it in the ledger. URLs are written elsewhere (`images.writeback`), only from what this
step confirmed.

Rendering streams: markup goes to the browser pool as it asks for it, finished PNGs go to a
thread pool that verifies and uploads them while the browser renders the next cards, and ledger
rows are written in batches.
"""

import hashlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pd_pipeline.db import statistics
from pd_pipeline.db.cards import CardCache
from pd_pipeline.images import foreign, inventory
from pd_pipeline.images.exclusive import LOCK_WAIT_SECONDS, rendering
from pd_pipeline.images.objects import VERIFY, verified_problem
from pd_pipeline.images.plan import Plan, Work, plan_cardset
from pd_pipeline.images.progress import Progress
from pd_pipeline.images.recorder import Recorder
from pd_pipeline.images.state import Policy
from pd_pipeline.model import Image
from pd_pipeline.profiling import phase
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.pages import CardPages, DesignError
from pd_pipeline.render.png import InvalidPng
from pd_pipeline.render.validate import CardDataError
from pd_pipeline.storage.keys import partition_key
from pd_pipeline.storage.stores import ObjectStore, content_type

log = logging.getLogger(__name__)
IO_THREADS = 8
UPLOADS_IN_FLIGHT = 4 * IO_THREADS  # rendered PNGs waiting for the store, at most
SAMPLE_PNGS = 12
STORE_FAILURES_TO_GIVE_UP = 5  # uploads failing in a row (each after the client's retries)
REFUSALS_LOGGED = 20  # URLs not adopted logged one by one; the rest are counted by rule


@dataclass
class ImageReport:
    """What one cardset's image step did, for metadata, logs and the run's verdict."""

    card_type: str
    cardset_id: int
    image: Image = Image.STATIC
    cards: int = 0
    current: int = 0  # image already current (or adopted) and its URL written: nothing to do
    adopted: int = 0  # URLs others made, confirmed and kept
    reused: int = 0  # a confirmed object already shows the current data: not rendered again
    rendered: int = 0
    uploaded: int = 0  # rendered bytes that differed from the stored object
    failed: int = 0
    old_design: int = 0  # cards left in an older design, for later rollout runs
    png_bytes: int = 0
    render_seconds: float = 0.0
    reasons: Counter = field(default_factory=Counter)  # the rule each card was found under
    failures: list[tuple[str, str]] = field(default_factory=list)  # (card label, error)
    orphans: list[str] = field(default_factory=list)  # keys no card uses (verify_objects only)
    samples: list[bytes] = field(default_factory=list)  # a few rendered PNGs, for previews

    @property
    def partition(self) -> str:
        return partition_key(self.cardset_id)


def make_images(
    engine: sa.Engine,
    store: ObjectStore,
    browser: Callable[[], BrowserPool],
    design: CardPages,
    policy: Policy,
    card_type: str,
    cardset_id: int,
    *,
    rerender_all: bool = False,
    roll_out: int = 0,
    verify_objects: bool = False,
    logger: logging.Logger | Any = log,
    run_id: str | None = None,
    cache: CardCache | None = None,
    uploads_in_flight: int = UPLOADS_IN_FLIGHT,
    lock_wait: float = LOCK_WAIT_SECONDS,
    image: Image = Image.STATIC,
) -> ImageReport:
    """Bring one image (`Image.STATIC`, or `ANIMATED` for the tiers the design animates) of
    every card of one type in a cardset to a confirmed, current object in the store (or a
    confirmed adopted one).

    `browser` is called only when something must be rendered, so a run with nothing to do never
    starts Chromium. With `rerender_all`, every card is rendered again (identical bytes are still
    not uploaded again, so URLs only change where pixels did). With `verify_objects` (the nightly
    reconcile), the objects of cards that need nothing are checked too, a lost or altered one
    made again, and objects in the cardset's folder that no card uses are reported as orphans.
    `logger` may be `context.log`; `cache` is the run's `CardCache`. At most
    `uploads_in_flight` rendered PNGs wait for the store: a slow store holds rendering back
    rather than filling memory.

    No other run makes this cardset's PNGs meanwhile: the step holds its lock from the plan to
    the last ledger row, waiting up to `lock_wait` seconds for it (`images.exclusive`).
    """
    with rendering(engine, card_type, cardset_id, image=image, run_id=run_id, logger=logger,
                   wait=lock_wait):  # fmt: skip
        with phase("plan"):
            statistics.keep_current(engine, logger=logger)
            plan = plan_cardset(engine, policy, card_type, cardset_id, rerender_all=rerender_all,
                                roll_out=roll_out, whole=verify_objects, run_id=run_id,
                                cache=cache, image=image)  # fmt: skip
        step = _Step(engine, store, design, policy, logger, run_id, uploads_in_flight)
        step.report = ImageReport(card_type, cardset_id, image, cards=plan.cards,
                                  old_design=plan.old_design, reasons=plan.reasons)  # fmt: skip
        step.make(plan, browser, rerender_all=rerender_all, verify_objects=verify_objects)
    return step.report


class _Step:
    report: ImageReport

    def __init__(self, engine, store, design, policy, logger, run_id, uploads_in_flight):
        self.store, self.design, self.logger, self.policy = store, design, logger, policy
        self.uploads_in_flight = uploads_in_flight
        self.recorder = Recorder(engine, policy, run_id)
        self.store_failures_in_a_row = 0

    def make(
        self, plan: Plan, browser: Callable[[], BrowserPool], *, rerender_all: bool,
        verify_objects: bool,
    ) -> None:  # fmt: skip
        report = self.report
        with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="store") as io:
            try:
                with phase("lookup"):
                    lost = []
                    if verify_objects:
                        lost = self.lost(plan.done, io)
                        used = {w.key for w in plan.render + plan.foreign + plan.done}
                        report.orphans = inventory.orphans(self.store, report.card_type,
                                                           report.cardset_id, used,
                                                           report.image)  # fmt: skip
                    report.current = (plan.cards - len(plan.render) - len(lost)
                                      - len(plan.foreign) - len(plan.retire)
                                      - plan.old_design)  # fmt: skip
                    todo = plan.render + self.confirm_foreign(plan.foreign, io)
                    todo = (todo if rerender_all else self.reuse(todo, io)) + lost
                self.render_and_store(todo, browser, io)
            finally:
                self.recorder.flush()  # whatever was confirmed is recorded, even if it fails

    def lost(self, done: list[Work], io: ThreadPoolExecutor) -> list[Work]:
        """Cards needing nothing whose object is gone, holds other bytes than the ledger
        recorded, or lost our metadata: they are made again, and uploaded whatever the store's
        metadata claims."""
        listing = inventory.listed(self.store, done[0].card.cardset_id) if done else {}
        problems = inventory.each(
            self.store,
            io,
            lambda w: verified_problem(self.store, w.card, w.entry, listing, w.image),
            done,
        )
        lost = []
        for work, problem in zip(done, problems, strict=True):
            if problem:
                self.logger.warning(f"{work.card.label}: {problem}; making it again")
                work.not_in_store = True
                lost.append(work)
        return lost

    def confirm_foreign(self, work: list[Work], io: ThreadPoolExecutor) -> list[Work]:
        """Keep the URLs others made whose objects are confirmed; the rest are to be rendered.
        The checks run on the store's threads (fetches outside the store, `fetch.AT_ONCE` at a
        time), with a progress line every few seconds: a first pass may check a million."""
        if not work:
            return []
        progress = Progress(f"{work[0].card.card_type} {self.report.partition} adoption",
                            len(work), self.logger, done="URLs checked",
                            outcomes=("adopted", "refused"))  # fmt: skip
        refused: Counter = Counter()  # by rule
        to_render = []
        checks = inventory.stream(
            self.store, io, lambda w: foreign.confirm(self.store, w, self.policy), work
        )
        for item, check in zip(work, checks, strict=True):
            if check.ours is not None:
                head = check.ours  # our own object, current: a ledger that was lost
                self.recorder.confirmed(item, head.sha256, head.md5, head.size)
                self.report.reused += 1
                progress.tick("reused")
            elif check.problem is None:
                self.recorder.kept(item, check.size)
                self.report.adopted += 1
                progress.tick("adopted")
            else:
                refused[check.rule] += 1
                if sum(refused.values()) <= REFUSALS_LOGGED:
                    self.logger.warning(f"{item.card.label}: not adopted ({check.problem})")
                to_render.append(item)
                progress.tick("refused")
        progress.finish()
        if sum(refused.values()) > REFUSALS_LOGGED:  # the rest, counted by the rule refusing
            rules = ", ".join(f"{n} {rule}" for rule, n in refused.most_common())
            self.logger.warning(f"{len(to_render)} URLs not adopted, by rule: {rules} "
                                f"(the first {REFUSALS_LOGGED} are logged above)")  # fmt: skip
        return to_render

    def reuse(self, todo: list[Work], io: ThreadPoolExecutor) -> list[Work]:
        """Cards whose current image is already in the store: confirm it and skip rendering."""
        found, missing = inventory.find_current(self.store, todo, self.report.cards, io)
        for work, head in found:
            self.recorder.confirmed(work, head.sha256, head.md5, head.size)
            self.report.reused += 1
        return missing

    def render_and_store(
        self, todo: list[Work], browser: Callable[[], BrowserPool], io: ThreadPoolExecutor
    ) -> None:
        # Markup is made as the pool asks for it (overlapping Chromium), and the browser starts
        # only once a card has some.
        markups = self._markup(todo)
        first = next(markups, None)
        if first is None:
            return
        started = time.monotonic()
        progress = Progress(f"{todo[0].card.card_type} {self.report.partition}", len(todo),
                            self.logger)  # fmt: skip
        uploads: list[Future] = []
        pool = browser()
        render = pool.render_animated if self.report.image is Image.ANIMATED else pool.render_many
        for result in render(itertools.chain([first], markups)):
            work = todo[result.key]
            if result.png is None:
                self.fail(work, f"{work.card.label}: {result.error}")
            else:
                self.report.rendered += 1
                if len(self.report.samples) < SAMPLE_PNGS:
                    self.report.samples.append(result.png)
                uploads.append(io.submit(_store_one, self.store, work, result.png))
            uploads = self._collect(uploads, wait=False)
            progress.tick()
        self._collect(uploads, wait=True)
        self.report.render_seconds = time.monotonic() - started
        progress.finish()

    def _markup(self, todo: list[Work]) -> Iterator[tuple]:
        """`(index, markup)` for each card to render (and its `Animation`, for the animated
        image)."""
        for index, work in enumerate(todo):
            try:
                with phase("markup"):
                    markup = self.design.body(work.card)
            except CardDataError as e:
                self.fail(work, str(e))
                continue
            except DesignError as e:  # a template that fails on this card's data only
                self.fail(work, f"{work.card.label}: {e}")
                continue
            if work.image is Image.ANIMATED:
                yield index, markup, self.design.animation(work.card)
            else:
                yield index, markup

    def _collect(self, uploads: list[Future], *, wait: bool) -> list[Future]:
        """Record finished uploads; the ones still running, at most `uploads_in_flight`
        (rendering waits for the store rather than holding ever more PNGs in memory)."""
        pending = []
        for index, future in enumerate(uploads):
            must_wait = wait or len(uploads) - index > self.uploads_in_flight
            if not must_wait and not future.done():
                pending.append(future)
                continue
            work, outcome = future.result()
            if isinstance(outcome, Exception):
                # A PNG that fails verification is the card's fault; a store that refused it is
                # not, so the card stays waiting for the next run instead of failing for good.
                own = isinstance(outcome, InvalidPng)
                self.fail(work, f"{work.card.label}: {outcome}", for_its_data=own)
                self._give_up_on_a_dead_store(outcome)
                continue
            self.store_failures_in_a_row = 0
            sha, md5, size, uploaded = outcome
            self.recorder.confirmed(work, sha, md5, size)
            self.report.uploaded += uploaded
            self.report.png_bytes += size
        return pending

    def _give_up_on_a_dead_store(self, error: Exception) -> None:
        """Uploads fail one card at a time, but a store that fails them all is down: stop the
        step with one clear error instead of failing every remaining card (its retries already
        spent). What was confirmed so far stays recorded; the rerun does the rest."""
        if isinstance(error, InvalidPng):
            return  # the card's fault, not the store's
        self.store_failures_in_a_row += 1
        if self.store_failures_in_a_row >= STORE_FAILURES_TO_GIVE_UP:
            raise inventory.StoreUnavailable(
                f"object store {self.store.describe()} is unavailable: "
                f"{self.store_failures_in_a_row} uploads in a row failed (last: {error})"
            ) from error

    def fail(self, work: Work, error: str, *, for_its_data: bool = True) -> None:
        """Report the card failed; the ledger records it (not retried until its data changes)
        only when the card itself is at fault."""
        self.logger.warning(f"card failed: {error}")
        self.report.failed += 1
        self.report.failures.append((work.card.label, error))
        if for_its_data:
            self.recorder.failed(work, error)


def _store_one(store: ObjectStore, work: Work, png: bytes) -> tuple[Work, Any]:
    """`(work, (sha, md5, size, uploaded))`, or `(work, error)` for a card whose PNG was not
    stored."""
    try:
        with phase("store"):
            return work, _verify_upload_confirm(store, work, png)
    except Exception as e:
        return work, e


def _verify_upload_confirm(store: ObjectStore, work: Work, png: bytes) -> tuple:
    """Verify, upload unless identical bytes are already there, and confirm the object."""
    VERIFY[work.image](png)
    sha = hashlib.sha256(png).hexdigest()
    head = None if work.not_in_store else store.head(work.key)
    uploaded = not (head and head.sha256 == sha and head.input_hash == work.digest)
    if uploaded:
        head = store.put(work.key, png, sha256=sha, input_hash=work.digest)
    confirmed = head is not None and head.content_type == content_type(work.key)
    if not confirmed or head.sha256 != sha or head.size != len(png):
        raise RuntimeError(f"upload of {work.key} not confirmed by the store (got {head})")
    return sha, head.md5, len(png), uploaded
