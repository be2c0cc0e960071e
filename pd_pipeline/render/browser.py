"""One warm Chromium and a pool of ready pages that turn card markup into PNG bytes.

Playwright's async API runs on an event loop in a thread of its own, so callers (Dagster steps,
inside an asyncio loop or not) just iterate `render_many`. Each page has loaded the
card shell (fonts and CSS) once; a card is rendered by swapping its markup into that page and
capturing over CDP, which skips re-parsing fonts and Playwright's load waits. Card pages run no
JavaScript and reach no network: the context disables scripts and aborts every request.
"""

import asyncio
import base64
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 1200, 600
CHROMIUM_ARGS = [
    # Quiet on a closed network, and no GPU on servers.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-gpu",
    "--no-first-run",
    "--font-render-hinting=none",
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


@dataclass
class _Slot:
    context: Any
    page: Any
    cdp: Any
    generation: int


class BrowserPool:
    """A warm Chromium with `pages` ready pages; thread-safe to drive from one caller at a time."""

    def __init__(
        self,
        executable: str,
        shell_html: str,
        *,
        pages: int = 4,
        timeout_s: float = 20.0,
        attempts: int = 3,
        recycle_after: int = 2000,
    ):
        self.executable = executable
        self.shell_html = shell_html
        self.pages = pages
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.recycle_after = recycle_after
        self.launches = 0
        self._since_launch = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="chromium")
        self._thread.start()
        self._playwright = None
        self._browser = None
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

    def __enter__(self) -> "BrowserPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def render_many(self, jobs: Iterable[tuple[Any, str]]) -> Iterator[RenderResult]:
        """Render `(job_id, card_markup)` pairs; results come back as they finish, in any order.

        At most twice the pool size is in flight, so memory stays flat whatever the input size.
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
        if self._browser is not None:
            await self._browser.close()
        await self._playwright.stop()
        self._browser = self._playwright = None

    async def _launch(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(PlaywrightError):  # it may have died: why we relaunch
                await self._browser.close()
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.executable, args=CHROMIUM_ARGS
        )
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
        context = await self._browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT},
            device_scale_factor=1,
            java_script_enabled=False,
        )
        await context.route("**/*", lambda route: route.abort())
        page = await context.new_page()
        await page.set_content(self.shell_html)
        cdp = await context.new_cdp_session(page)
        return _Slot(context, page, cdp, self._generation)

    async def _capture(self, slot: _Slot, markup: str) -> bytes:
        await slot.page.evaluate(SWAP, markup)
        shot = await slot.cdp.send("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(shot["data"])

    async def _render(self, job_id: Any, markup: str) -> RenderResult:
        error = ""
        for attempt in range(1, self.attempts + 1):
            slot = await self._take()
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
            self._slots.put_nowait(slot)
            return RenderResult(job_id, png, None, attempt)
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
            await asyncio.wait_for(slot.context.close(), self.timeout_s)
            self._slots.put_nowait(await asyncio.wait_for(self._new_slot(), self.timeout_s))
        except (TimeoutError, PlaywrightError):
            await self._relaunch(slot.generation)
