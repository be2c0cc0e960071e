"""Making the PNGs of one cardset: plan, adopt what others made, reuse what is stored, render the
rest, verify, upload and confirm each object, and record it in the ledger. URLs are written
elsewhere (`images.writeback`), only from what this step confirmed.

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

from pd_pipeline.images import adopt, stored
from pd_pipeline.images.objects import verified_problem
from pd_pipeline.images.plan import Work, plan_cardset
from pd_pipeline.images.progress import Progress
from pd_pipeline.images.recorder import Recorder
from pd_pipeline.images.state import Context
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.pages import CardPages, DesignError
from pd_pipeline.render.png import InvalidPng, verify_png
from pd_pipeline.render.validate import CardDataError
from pd_pipeline.storage.keys import partition_key
from pd_pipeline.storage.stores import PNG, ObjectStore

log = logging.getLogger(__name__)
# Where a PNG step's own CPU goes: planning (reading and assessing the cardset), looking the
# store up for reuse and adoption, card markup (view, chart layout, templates), cutting and
# re-encoding captures, verifying, hashing, uploading and confirming objects, ledger writes.
CPU_PHASES = ("plan", "lookup", "markup", "encode", "store", "ledger")
IO_THREADS = 8
MAX_UPLOADS_IN_FLIGHT = 4 * IO_THREADS
SAMPLE_PNGS = 12
STORE_FAILURES_TO_GIVE_UP = 5  # uploads failing in a row (each after the client's retries)


@dataclass
class PngReport:
    """What one cardset's PNG step did, for metadata, logs and the run's verdict."""

    card_type: str
    cardset_id: int
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
    # CPU seconds the pipeline spent per phase, beside Chromium's own (see `CPU_PHASES`)
    cpu_s: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)  # the rule each card was found under
    failures: list[tuple[str, str]] = field(default_factory=list)  # (card label, error)
    orphans: list[str] = field(default_factory=list)  # keys no card uses (verify_objects only)
    samples: list[bytes] = field(default_factory=list)  # a few rendered PNGs, for previews

    @property
    def partition(self) -> str:
        return partition_key(self.cardset_id)


def make_pngs(
    engine: sa.Engine,
    store: ObjectStore,
    browser: Callable[[], BrowserPool],
    pages: CardPages,
    ctx: Context,
    card_type: str,
    cardset_id: int,
    *,
    rerender_all: bool = False,
    roll_out: int = 0,
    verify_objects: bool = False,
    logger: logging.Logger | Any = log,
    run_id: str | None = None,
) -> PngReport:
    """Bring every card of one type in a cardset to a confirmed, current PNG in the store (or a
    confirmed adopted one).

    `browser` is called only when something must be rendered, so a run with nothing to do never
    starts Chromium. With `rerender_all`, every card is rendered again (identical bytes are still
    not uploaded again, so URLs only change where pixels did). With `verify_objects` (the nightly
    reconcile), the objects of cards that need nothing are checked too, a lost or altered one
    made again, and objects in the cardset's folder that no card uses are reported as orphans.
    `logger` may be `context.log`.
    """
    started = time.thread_time()
    plan = plan_cardset(engine, ctx, card_type, cardset_id, rerender_all=rerender_all,
                        roll_out=roll_out, run_id=run_id)  # fmt: skip
    step = _Step(engine, store, pages, ctx, logger, run_id)
    report = step.report = PngReport(card_type, cardset_id, cards=plan.cards,
                                     old_design=plan.old_design, reasons=plan.reasons)  # fmt: skip
    report.cpu_s["plan"] = time.thread_time() - started
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="store") as io:
        try:
            started = time.thread_time()
            lost = []
            if verify_objects:
                lost = step.lost(plan.done, io)
                used = {w.key for w in plan.render + plan.adopt + plan.done}
                report.orphans = stored.orphans(store, card_type, cardset_id, used)
            report.current = (plan.cards - len(plan.render) - len(lost) - len(plan.adopt)
                              - plan.old_design)  # fmt: skip
            todo = plan.render + step.adopt(plan.adopt, io)
            todo = (todo if rerender_all else step.reuse(todo, io)) + lost
            report.cpu_s["lookup"] += time.thread_time() - started
            step.render_and_store(todo, browser, io)
        finally:
            step.recorder.flush()  # whatever was confirmed is recorded, even if the step fails
            report.cpu_s["ledger"] += step.recorder.cpu_s
    return report


class _Step:
    report: PngReport

    def __init__(self, engine, store, pages, ctx, logger, run_id):
        self.store, self.pages, self.logger, self.ctx = store, pages, logger, ctx
        self.recorder = Recorder(engine, ctx, run_id)
        self.store_failures_in_a_row = 0

    def lost(self, done: list[Work], io: ThreadPoolExecutor) -> list[Work]:
        """Cards needing nothing whose object is gone, holds other bytes than the ledger
        recorded, or lost our metadata: they are made again, and uploaded whatever the store's
        metadata claims."""
        listing = stored.listed(self.store, done[0].card.cardset_id) if done else {}
        problems = stored.each(
            self.store, io, lambda w: verified_problem(self.store, w.card, w.entry, listing), done
        )
        lost = []
        for work, problem in zip(done, problems, strict=True):
            if problem:
                self.logger.warning(f"{work.card.label}: {problem}; making it again")
                work.not_in_store = True
                lost.append(work)
        return lost

    def adopt(self, work: list[Work], io: ThreadPoolExecutor) -> list[Work]:
        """Keep the URLs others made whose objects are confirmed; the rest are to be rendered."""
        outcomes = stored.each(
            self.store, io, lambda w: adopt.confirm(self.store, w, self.ctx.adopt_outside), work
        )
        to_render = []
        for item, outcome in zip(work, outcomes, strict=True):
            if outcome.ours is not None:
                head = outcome.ours  # our own object, current: a ledger that was lost
                self.recorder.stored(item, head.sha256, head.md5, head.size)
                self.report.reused += 1
            elif outcome.problem is None:
                self.recorder.adopted(item, outcome.size)
                self.report.adopted += 1
            else:
                self.logger.warning(f"{item.card.label}: not adopted ({outcome.problem})")
                to_render.append(item)
        return to_render

    def reuse(self, todo: list[Work], io: ThreadPoolExecutor) -> list[Work]:
        """Cards whose current image is already in the store: confirm it and skip rendering."""
        found, missing = stored.find_current(self.store, todo, self.report.cards, io)
        for work, head in found:
            self.recorder.stored(work, head.sha256, head.md5, head.size)
            self.report.reused += 1
        return missing

    def render_and_store(
        self, todo: list[Work], browser: Callable[[], BrowserPool], io: ThreadPoolExecutor
    ) -> None:
        # Markup is made as the pool asks for it (overlapping Chromium), and the browser starts
        # only once a card has some.
        jobs = self._markup(todo)
        first = next(jobs, None)
        if first is None:
            return
        started = time.monotonic()
        progress = Progress(f"{todo[0].card.card_type} {self.report.partition}", len(todo),
                            self.logger)  # fmt: skip
        uploads: list[Future] = []
        for result in browser().render_many(itertools.chain([first], jobs)):
            work = todo[result.job_id]
            self.report.cpu_s["encode"] += result.encode_cpu_s
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

    def _markup(self, todo: list[Work]) -> Iterator[tuple[int, str]]:
        for index, work in enumerate(todo):
            started = time.thread_time()
            try:
                markup = self.pages.body(work.card)
            except CardDataError as e:
                self.fail(work, str(e))
                continue
            except DesignError as e:  # a template that fails on this card's data only
                self.fail(work, f"{work.card.label}: {e}")
                continue
            finally:
                self.report.cpu_s["markup"] += time.thread_time() - started
            yield index, markup

    def _collect(self, uploads: list[Future], *, wait: bool) -> list[Future]:
        """Record finished uploads; the ones still running, at most MAX_UPLOADS_IN_FLIGHT
        (rendering waits for the store rather than holding ever more PNGs in memory)."""
        pending = []
        for index, future in enumerate(uploads):
            must_wait = wait or len(uploads) - index > MAX_UPLOADS_IN_FLIGHT
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
            sha, md5, size, uploaded, cpu = outcome
            self.report.cpu_s["store"] += cpu
            self.recorder.stored(work, sha, md5, size)
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
            raise stored.StoreUnavailable(
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
    """`(work, (sha, md5, size, uploaded, cpu seconds))`, or `(work, error)` for a card whose
    PNG was not stored."""
    started = time.thread_time()
    try:
        return work, (*_verify_upload_confirm(store, work, png), time.thread_time() - started)
    except Exception as e:
        return work, e


def _verify_upload_confirm(store: ObjectStore, work: Work, png: bytes) -> tuple:
    """Verify, upload unless identical bytes are already there, and confirm the object."""
    verify_png(png)
    sha = hashlib.sha256(png).hexdigest()
    head = None if work.not_in_store else store.head(work.key)
    uploaded = not (head and head.sha256 == sha and head.input_hash == work.digest)
    if uploaded:
        head = store.put(work.key, png, sha256=sha, input_hash=work.digest)
    if head is None or head.sha256 != sha or head.size != len(png) or head.content_type != PNG:
        raise RuntimeError(f"upload of {work.key} not confirmed by the store (got {head})")
    return sha, head.md5, len(png), uploaded
