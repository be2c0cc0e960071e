"""One warm Chromium and a pool of ready pages that turn card markup into PNG bytes.

Playwright's async API runs on an event loop in a thread of its own, so callers (Dagster steps,
inside an asyncio loop or not) just iterate `render_many`. Each page has loaded the
card shell (fonts and CSS) once; a card is rendered by swapping its markup into that page and
capturing over CDP, which skips re-parsing fonts and Playwright's load waits. Card pages run no
JavaScript and reach no network: the context disables scripts and aborts every request.

A capture waits for Chromium to draw two frames, so several pages render at once. Chromium
encodes the capture with its fast PNG settings; a small thread pool re-encodes it losslessly
and smaller (`png.optimise_png`) while the page takes the next card. The result is
pixel-identical to Chromium's default PNG, smaller, and costs less CPU (see README,
"Performance"). Every `recycle_after` cards the browser is relaunched, so memory stays flat.
"""

import asyncio
import base64
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from pd_pipeline.render.png import InvalidPng, optimise_png

log = logging.getLogger(__name__)

# PNG encodings `BrowserPool` can return (the pixels are the same):
COMPACT = "compact"  # Chromium's fast encoding, re-encoded by us: smaller, and cheaper in all
CHROMIUM = "chromium"  # Chromium's default encoder, untouched (the simple path, for comparison)

WIDTH, HEIGHT = 1200, 600
# A healthy Chromium closes in well under a second; one that takes longer is stuck and is killed
# (Playwright itself would wait ~30 s for a frozen one).
CLOSE_TIMEOUT_S = 5.0
CHROMIUM_ARGS = [
    # Quiet on a closed network, and no GPU on servers.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-gpu",
    "--no-first-run",
    "--font-render-hinting=none",
    # No network at all, below what request routing sees (prefetches bypass it): every request
    # goes to a proxy that does not exist, loopback included. data: URIs need no network.
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]
# Swap the card in, then wait until its fonts are ready: the capture must show final pixels.
SWAP = """html => {
  document.getElementById('card').innerHTML = html;
  return document.fonts.ready.then(() => true);
}"""


@dataclass(frozen=True)
class RenderResult:
    job_id: Any
    png: bytes | None
    error: str | None
    attempts: int
    seconds: float = 0.0  # from taking a page to the PNG being ready (encoding included)


def default_pages() -> int:
    """Pages rendering at once: two per core keeps every core busy while captures wait for
    frames; more only adds latency and memory (measured on 2 cores: 4 beats 2, 8 does not
    beat 4)."""
    return max(2, 2 * (os.cpu_count() or 1))


@dataclass
class _Slot:
    page: Any
    cdp: Any
    generation: int


class BrowserPool:
    """A warm Chromium with `pages` ready pages; thread-safe to drive from one caller at a time.

    `encoding` is COMPACT (the default) or CHROMIUM (Chromium's own encoder, the simple path).
    """

    def __init__(
        self,
        executable: str,
        shell_html: str,
        *,
        pages: int | None = None,
        timeout_s: float = 20.0,
        attempts: int = 3,
        recycle_after: int = 2000,
        encoding: str = COMPACT,
    ):
        if encoding not in (COMPACT, CHROMIUM):
            raise ValueError(f"encoding must be {COMPACT!r} or {CHROMIUM!r}, not {encoding!r}")
        self.executable = executable
        self.shell_html = shell_html
        self.pages = pages or default_pages()
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.recycle_after = recycle_after
        self.encoding = encoding
        self.launches = 0
        self._since_launch = 0
        # Re-encoding releases the GIL (numpy, libdeflate): one thread per core.
        self._encoder = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="png")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="chromium")
        self._thread.start()
        self._playwright = None
        self._browser = None
        self._browser_pid: int | None = None
        self._context = None
        self._slots: asyncio.Queue | None = None
        self._relaunching: asyncio.Lock | None = None

    # -- caller side ------------------------------------------------------------------------

    def _call(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def start(self) -> "BrowserPool":
        if self._browser is None:
            self._call(self._start())
        return self

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._playwright is not None:
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._encoder.shutdown(wait=True)

    def __enter__(self) -> "BrowserPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def render_many(self, jobs: Iterable[tuple[Any, str]]) -> Iterator[RenderResult]:
        """Render `(job_id, card_markup)` pairs; results come back as they finish, in any order.

        At most twice the pool size is in flight (a page's next card waits while its last one
        is encoded), so memory stays flat whatever the input size; `jobs` is consumed lazily.
        """
        self.start()
        in_flight: set[Future] = set()
        for job_id, markup in jobs:
            while len(in_flight) >= 2 * self.pages:
                yield from self._harvest(in_flight)
            if self._since_launch >= self.recycle_after:
                while in_flight:  # drain, then start afresh: long runs keep memory flat
                    yield from self._harvest(in_flight)
                self._call(self._relaunch(self._generation))
            self._since_launch += 1
            in_flight.add(
                asyncio.run_coroutine_threadsafe(self._render(job_id, markup), self._loop)
            )
        while in_flight:
            yield from self._harvest(in_flight)

    def render(self, markup: str) -> bytes:
        """One card's PNG (raises on failure): for previews and tests."""
        (result,) = self.render_many([(0, markup)])
        if result.png is None:
            raise RuntimeError(result.error)
        return result.png

    @staticmethod
    def _harvest(in_flight: set[Future]) -> Iterator[RenderResult]:
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            in_flight.discard(future)
            yield future.result()

    # -- event-loop side --------------------------------------------------------------------

    @property
    def _generation(self) -> int:
        return self.launches

    async def _start(self) -> None:
        self._playwright = await async_playwright().start()
        self._relaunching = asyncio.Lock()
        # One queue for the pool's life: cards waiting on it must survive a relaunch.
        self._slots = asyncio.Queue()
        await self._launch()

    async def _stop(self) -> None:
        await self._close_browser()
        await self._playwright.stop()
        self._browser = self._playwright = None

    async def _close_browser(self) -> None:
        """Close the browser; one that does not answer in time (frozen, or half dead) is killed."""
        if self._browser is None:
            return
        try:
            await asyncio.wait_for(self._browser.close(), CLOSE_TIMEOUT_S)
        except PlaywrightError:
            pass  # it had died: often why we relaunch (its pid may be anyone's by now)
        except TimeoutError:  # alive, so the pid is still its own
            log.warning("Chromium (pid %s) did not close; killing it", self._browser_pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._browser_pid, getattr(signal, "SIGKILL", signal.SIGTERM))

    async def _launch(self) -> None:
        await self._close_browser()
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.executable, args=CHROMIUM_ARGS
        )
        # Its pid, to kill it should it ever stop answering.
        cdp = await self._browser.new_browser_cdp_session()
        processes = (await cdp.send("SystemInfo.getProcessInfo"))["processInfo"]
        self._browser_pid = next(p["id"] for p in processes if p["type"] == "browser")
        await cdp.detach()
        # One context for all pages: each context costs Chromium a renderer of its own (~45 MB),
        # and card pages share nothing a context would isolate (no script, no network).
        self._context = await self._browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT},
            device_scale_factor=1,
            java_script_enabled=False,
        )
        await self._context.route("**/*", lambda route: route.abort())
        self.launches += 1
        self._since_launch = 0
        for slot in await asyncio.gather(*[self._new_slot() for _ in range(self.pages)]):
            self._slots.put_nowait(slot)
        log.debug("Chromium launched (%s pages, launch %s)", self.pages, self.launches)

    async def _relaunch(self, seen_generation: int) -> None:
        # Several cards may notice a dead browser at once: only the first relaunches it.
        async with self._relaunching:
            if self._generation == seen_generation:
                await self._launch()

    async def _new_slot(self) -> _Slot:
        page = await self._context.new_page()
        await page.set_content(self.shell_html)
        cdp = await self._context.new_cdp_session(page)
        return _Slot(page, cdp, self._generation)

    async def _capture(self, slot: _Slot, markup: str) -> bytes:
        await slot.page.evaluate(SWAP, markup)
        options = {"format": "png", "optimizeForSpeed": self.encoding == COMPACT}
        shot = await slot.cdp.send("Page.captureScreenshot", options)
        return base64.b64decode(shot["data"])

    async def _render(self, job_id: Any, markup: str) -> RenderResult:
        error = ""
        for attempt in range(1, self.attempts + 1):
            slot = await self._take()
            started = time.monotonic()
            try:
                png = await asyncio.wait_for(self._capture(slot, markup), self.timeout_s)
            except (TimeoutError, PlaywrightError) as e:
                error = (
                    f"timed out after {self.timeout_s:g}s"
                    if isinstance(e, TimeoutError)
                    else str(e).splitlines()[0]
                )
                log.warning("render attempt %s of job %s failed: %s", attempt, job_id, error)
                await self._replace(slot)
                continue
            self._slots.put_nowait(slot)  # the page takes the next card while this one encodes
            if self.encoding == COMPACT:
                try:
                    png = await self._loop.run_in_executor(self._encoder, optimise_png, png)
                except InvalidPng as e:
                    error = f"Chromium's PNG is invalid: {e}"
                    log.warning("render attempt %s of job %s failed: %s", attempt, job_id, error)
                    continue
            return RenderResult(job_id, png, None, attempt, time.monotonic() - started)
        return RenderResult(job_id, None, f"render failed {self.attempts} times: {error}", attempt)

    async def _take(self) -> _Slot:
        while True:
            slot = await self._slots.get()
            if slot.generation == self._generation:
                return slot
            # else: a page of a browser we have since replaced; the relaunch made fresh ones

    async def _replace(self, slot: _Slot) -> None:
        """A page that failed is thrown away; a dead or stuck browser is relaunched."""
        if slot.generation != self._generation:
            return  # its browser is gone and the relaunch refilled the pool
        if not self._browser.is_connected():
            await self._relaunch(slot.generation)
            return
        try:
            await asyncio.wait_for(slot.page.close(), self.timeout_s)
            self._slots.put_nowait(await asyncio.wait_for(self._new_slot(), self.timeout_s))
        except (TimeoutError, PlaywrightError):
            await self._relaunch(slot.generation)
