"""One warm Chromium and a pool of pages that turn card markup into PNG bytes.

Playwright's async API runs on an event loop in a thread of its own, so callers (Dagster steps,
inside an asyncio loop or not) just iterate `render_many`. Each page has loaded the renderer's
shell (CSS, fonts, a column of `tile` 1200x600 frames) once; cards are rendered `tile` at a
time by swapping their markup into the frames and capturing the column once over CDP, which
skips Playwright's load waits and pays a capture's fixed cost (frames, compositing, the round
trip) once per tile instead of once per card. Each frame is a layer of its own, so a card's
pixels do not depend on where it sits: they are those of the card captured alone. If anything
goes wrong with a tile, its cards are rendered again one by one, so one bad card fails alone.

Card pages run no JavaScript and reach no network: the context disables scripts, and every
request is answered by the pool itself: the design's files and the shipped fonts, from memory
or disk, and an abort for anything else (a card that asks for more fails, naming what it
asked for). Chromium encodes each capture with its fast PNG settings; a small thread pool cuts
it into cards and re-encodes them losslessly and smaller (`png.split_png`) while the page takes
the next tile. Every `recycle_after` cards the browser is relaunched, so memory stays flat.

`render_animated` makes animated cards (APNGs) the same way, with the same failure handling: a
tile of cards sharing an animation is captured whole for frame 0, then as stacked strips of the
animated region once per later frame (animate.py).
"""

import asyncio
import base64
import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from pd_pipeline.profiling import phase
from pd_pipeline.render import animate
from pd_pipeline.render.animation import Animation
from pd_pipeline.render.fonts import ORIGIN
from pd_pipeline.render.pages import CardPages
from pd_pipeline.render.png import CARD_SIZE, InvalidPng, split_png

log = logging.getLogger(__name__)

# PNG encodings `BrowserPool` can return (the pixels are the same):
COMPACT = "compact"  # Chromium's fast encoding, re-encoded by us: smaller, and cheaper in all
CHROMIUM = "chromium"  # Chromium's default encoder, untouched (one card a capture: the simple
# path, for comparison)

WIDTH, HEIGHT = CARD_SIZE
# Cards per capture: much of a capture's cost is fixed, so several cards share it; past a few,
# more only cost memory and latency (docs/performance.md).
DEFAULT_TILE = 4
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
    "--disable-partial-raster",
    # No network at all, below what request routing sees (prefetches bypass it): every request
    # goes to a proxy that does not exist, loopback included. data: URIs need no network.
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]
# Swap the cards into the frames (emptying the rest) and wait until their fonts and images are
# ready: the capture must show final pixels. Layout is forced at once, so the faces the cards
# need start loading now; if any does, the cards are swapped in again once it has: a face
# arriving mid-paint would leave the frames drawn partly before and partly after it.
# A frame an animated capture left as a strip (animate.STRIPS) is made a whole frame again.
SWAP = """cards => {
  const fill = () => document.querySelectorAll('.pd-frame').forEach((frame, i) => {
    frame.style.removeProperty('transform');
    frame.parentElement.removeAttribute('style');
    frame.innerHTML = cards[i] || '';
  });
  const images = () => Promise.all(
    [...document.images].map(image => image.decode().catch(() => null)));
  fill();
  document.body.offsetHeight;
  if (document.fonts.status !== 'loading') return images().then(() => true);
  return document.fonts.ready.then(() => { fill(); return images(); }).then(() => true);
}"""


@dataclass(frozen=True)
class RenderResult:
    key: Any  # the caller's, given with the card's markup
    png: bytes | None  # render_animated: the APNG
    error: str | None
    attempts: int
    seconds: float = 0.0  # from taking a page to the PNG being ready (encoding included)


def default_pages() -> int:
    """Pages rendering at once: two per core keeps every core busy while captures wait for
    frames; more only add latency and memory (docs/performance.md)."""
    return max(2, 2 * (os.cpu_count() or 1))


@dataclass
class _Slot:
    page: Any
    cdp: Any
    generation: int
    blocked: list[str]  # what its cards asked for beyond the design, since the last swap


class _Blocked(Exception):
    """A card asked the network for something: outside the design, so never served."""


@dataclass(frozen=True)
class _Way:
    """How a tile is made: captured on a page (raw captures), then encoded (a file per card)."""

    capture: Callable[[_Slot, list[str]], Awaitable[Any]]
    encode: Callable[[Any, int], Awaitable[list[bytes]]]
    timeout_s: float


class BrowserPool:
    """A warm Chromium with up to `pages` pages of `tile` frames (opened as cards wait for one),
    rendering `design`'s cards; thread-safe to drive from one caller at a time.

    `encoding` is COMPACT (the default) or CHROMIUM (Chromium's own encoder, the simple path:
    one card a capture, its PNG untouched).
    """

    def __init__(
        self,
        executable: str,
        design: CardPages,
        *,
        pages: int | None = None,
        tile: int = DEFAULT_TILE,
        timeout_s: float = 20.0,
        attempts: int = 3,
        recycle_after: int = 2000,
        encoding: str = COMPACT,
    ):
        if encoding not in (COMPACT, CHROMIUM):
            raise ValueError(f"encoding must be {COMPACT!r} or {CHROMIUM!r}, not {encoding!r}")
        if tile < 1:
            raise ValueError(f"tile must be at least 1 card a capture, not {tile}")
        self.executable = executable
        self.design = design
        self.pages = pages or default_pages()
        self.tile = 1 if encoding == CHROMIUM else tile
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.recycle_after = recycle_after
        self.encoding = encoding
        self.launches = 0
        self.captures = 0
        self._since_launch = 0
        self._shell = design.shell(self.tile)
        self._files: dict[str, tuple[bytes, str] | None] = {}  # what the pages asked for
        # Re-encoding releases the GIL (numpy, libdeflate): one thread per core.
        self._encoder = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="png")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="chromium")
        self._thread.start()
        self._playwright = None
        self._browser = None
        self._browser_pid: int | None = None
        self._browser_cdp = None
        self._context = None
        self._context_id: str | None = None
        self._by_page: dict[Any, _Slot] = {}
        self._slots: asyncio.Queue | None = None
        self._relaunching: asyncio.Lock | None = None
        self._opening: asyncio.Lock | None = None
        self._launching: Future | None = None  # a launch `launch_soon` began, not waited for
        self._opened = 0  # pages of this launch, open or opening (at most `pages`)
        self._page_openings: set[asyncio.Task] = set()

    @property
    def pages_open(self) -> int:
        """Pages of the running browser, open or opening."""
        return len(self._by_page)

    # -- caller side ------------------------------------------------------------------------

    def _call(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def launch_soon(self) -> "BrowserPool":
        """Begin launching Chromium without waiting for it (it takes a second or two): `start`,
        or the first render, waits for the launch and raises what it raised."""
        if self._browser is None and self._launching is None:
            self._launching = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        return self

    def start(self) -> "BrowserPool":
        """Chromium launched, with a page ready (the others open as cards wait for them)."""
        self.launch_soon()
        if self._launching is not None:
            launching, self._launching = self._launching, None
            launching.result()  # a failed launch is tried afresh by the next call
        return self

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._launching is not None:  # launched early, never used: let it finish, then stop
            with contextlib.suppress(Exception):
                self._launching.result()
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

    def render_many(self, markups: Iterable[tuple[Any, str]]) -> Iterator[RenderResult]:
        """Render `(key, card markup)` pairs; results come back as they finish, in any order.

        Jobs are taken `tile` at a time, and at most two tiles per page are in flight (a page's
        next tile waits while its last one is encoded), so memory stays flat whatever the
        input size; `markups` is consumed lazily.
        """
        markups = iter(markups)
        way = self._static()
        tiles = iter(lambda: list(itertools.islice(markups, self.tile)), [])
        yield from self._drive((group, way) for group in tiles)

    def render_animated(
        self, items: Iterable[tuple[Any, str, Animation]]
    ) -> Iterator[RenderResult]:
        """Render `(key, card markup, animation)` triples into looping APNGs (`png` holds the
        APNG, which `apng.default_image` turns into the card's static PNG, byte for byte, as
        `render_many` makes it); results come back as they finish, in any order.

        Cards sharing an animation are captured `tile` at a time (a card waits for others with
        its animation, up to a tile, or the end of `items`); a tile that fails is rendered again
        card by card, and a card that fails fails alone, as in `render_many`. An animated card is
        given the timeout once per 4 of its frames."""
        waiting: dict[Animation, list[tuple[Any, str]]] = {}

        def tiles() -> Iterator[tuple[list[tuple[Any, str]], _Way]]:
            for key, markup, animation in items:
                group = waiting.setdefault(animation, [])
                group.append((key, markup))
                if len(group) == self.tile:
                    yield waiting.pop(animation), self._animated(animation)
            for animation, group in waiting.items():
                yield group, self._animated(animation)

        yield from self._drive(tiles())

    def _drive(self, tiles: Iterable[tuple[list[tuple[Any, str]], _Way]]) -> Iterator[RenderResult]:
        """Render tiles, each its own way: at most two tiles per page in flight (a page's next
        tile waits while its last one is encoded), so memory stays flat whatever the input size;
        `tiles` is consumed lazily."""
        self.start()
        in_flight: set[Future] = set()
        for group, way in tiles:
            while len(in_flight) >= 2 * self.pages:
                yield from self._harvest(in_flight)
            if self._since_launch >= self.recycle_after:
                while in_flight:  # drain, then start afresh: long runs keep memory flat
                    yield from self._harvest(in_flight)
                self._call(self._relaunch(self._generation))
            self._since_launch += len(group)
            tile = self._render_tile(group, way)
            in_flight.add(asyncio.run_coroutine_threadsafe(tile, self._loop))
        while in_flight:
            yield from self._harvest(in_flight)

    def _static(self) -> _Way:
        return _Way(self._capture, self._encode, self.timeout_s)

    def _animated(self, animation: Animation) -> _Way:
        return _Way(
            partial(self._capture_animated, animation=animation),
            partial(self._assemble, animation=animation),
            self.timeout_s * max(1.0, animation.frames / 4),
        )

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
            yield from future.result()

    # -- event-loop side --------------------------------------------------------------------

    @property
    def _generation(self) -> int:
        return self.launches

    async def _start(self) -> None:
        self._playwright = await async_playwright().start()
        self._relaunching = asyncio.Lock()
        self._opening = asyncio.Lock()
        # One queue for the pool's life: cards waiting on it must survive a relaunch.
        self._slots = asyncio.Queue()
        await self._launch()

    async def _stop(self) -> None:
        await self._close_browser()
        await self._playwright.stop()
        self._browser = self._playwright = None

    async def _close_browser(self) -> None:
        """Close the browser; one that does not answer in time (frozen, or half dead) is killed."""
        for opening in self._page_openings:  # pages still opening belong to this browser
            opening.cancel()
        await asyncio.gather(*self._page_openings, return_exceptions=True)
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
        self._opened = self.pages  # no page opens on the browser going away
        await self._close_browser()
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.executable, args=CHROMIUM_ARGS
        )
        # Its pid, to kill it should it ever stop answering.
        self._browser_cdp = await self._browser.new_browser_cdp_session()
        processes = (await self._browser_cdp.send("SystemInfo.getProcessInfo"))["processInfo"]
        self._browser_pid = next(p["id"] for p in processes if p["type"] == "browser")
        # One context for all pages: each context costs Chromium a renderer process of its own,
        # and card pages share nothing a context would isolate (no script, no network).
        self._context = await self._browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT * self.tile},
            device_scale_factor=1,
            java_script_enabled=False,
        )
        await self._context.route("**/*", self._serve)
        self.launches += 1
        self._since_launch = 0
        self._by_page.clear()
        first = await self._context.new_page()
        info = await (await self._context.new_cdp_session(first)).send("Target.getTargetInfo")
        self._context_id = info["targetInfo"]["browserContextId"]
        self._slots.put_nowait(await self._new_slot(first))
        self._opened = 1
        log.debug("Chromium launched (launch %s)", self.launches)

    def _open_another_page(self) -> None:
        """Open one more page into the pool, in the background. Pages open as cards wait for
        one: a run of one edited card renders it on one page, in a third of the time it took
        while three more pages opened beside it."""
        self._opened += 1

        async def opening() -> None:
            try:
                self._slots.put_nowait(await asyncio.wait_for(self._new_slot(), self.timeout_s))
            except (TimeoutError, PlaywrightError) as e:  # the pool renders on the pages it has
                log.warning("a page of Chromium did not open (%s); rendering on fewer", e)

        task = asyncio.create_task(opening())
        self._page_openings.add(task)
        task.add_done_callback(self._page_openings.discard)

    async def _serve(self, route) -> None:
        """Every request of every page: the design's files and the fonts, else an abort."""
        url = route.request.url
        found = None
        if url.startswith(ORIGIN + "/"):
            path = url[len(ORIGIN) :].split("?")[0]
            if path not in self._files:
                self._files[path] = self.design.resource(path)
            found = self._files[path]
        if found is None:
            slot = self._by_page.get(route.request.frame.page)
            if slot is not None:
                slot.blocked.append(url)
            await route.abort()
            return
        body, content_type = found
        await route.fulfill(body=body, content_type=content_type)

    async def _relaunch(self, seen_generation: int) -> None:
        # Several cards may notice a dead browser at once: only the first relaunches it.
        async with self._relaunching:
            if self._generation == seen_generation:
                await self._launch()

    async def _new_slot(self, page: Any = None) -> _Slot:
        if page is None:
            page = await self._new_window()
        slot = _Slot(page, None, self._generation, [])
        self._by_page[page] = slot
        await page.set_content(self._shell)
        slot.cdp = await self._context.new_cdp_session(page)
        return slot

    async def _new_window(self) -> Any:
        """A page in a window of its own: a page that shares a window with others is a
        background tab, whose first capture Chromium holds back for ~2 s."""
        # One at a time: the page the context opens next must be the one asked for here.
        async with self._opening:
            async with self._context.expect_page() as opened:
                await self._browser_cdp.send(
                    "Target.createTarget",
                    {"url": "about:blank", "browserContextId": self._context_id, "newWindow": True},
                )
            return await opened.value

    async def _capture(self, slot: _Slot, markups: list[str]) -> bytes:
        slot.blocked.clear()
        await slot.page.evaluate(SWAP, markups)
        if slot.blocked:
            raise _Blocked(slot.blocked[0])
        # The filled frames: the top of the column.
        return await self._shot(slot, WIDTH, HEIGHT * len(markups))

    async def _shot(self, slot: _Slot, width: int, height: int) -> bytes:
        """The top left `width` x `height` pixels of the page, as a PNG."""
        options = {
            "format": "png",
            "optimizeForSpeed": self.encoding == COMPACT,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        }
        shot = await slot.cdp.send("Page.captureScreenshot", options)
        self.captures += 1
        return base64.b64decode(shot["data"])

    async def _capture_animated(
        self, slot: _Slot, markups: list[str], animation: Animation
    ) -> list[bytes]:
        """The tile whole (every card's frame 0), then its strips once per later frame."""
        captures = [await self._capture(slot, markups)]
        _, _, width, height = animation.region
        count = len(markups)
        await slot.page.evaluate(animate.STRIPS, [*animation.region, count])
        for seek in animation.seeks_ms[1:]:
            await slot.page.evaluate(animate.SEEK, animate.seek_value(seek))
            captures.append(await self._shot(slot, width, height * count))
        return captures

    async def _render_tile(self, cards: list[tuple[Any, str]], way: _Way) -> list[RenderResult]:
        """The tile's cards, captured at once; if that fails, each card again on its own."""
        if len(cards) == 1:
            return [await self._render_alone(*cards[0], way)]
        slot = await self._take()
        started = time.monotonic()
        try:
            raw = await asyncio.wait_for(way.capture(slot, [m for _, m in cards]), way.timeout_s)
        except (TimeoutError, PlaywrightError, _Blocked) as e:
            log.info("a tile of %s cards failed (%s); rendering them one by one", len(cards), e)
            if isinstance(e, _Blocked):
                self._slots.put_nowait(slot)  # the page is fine; a card is not
            else:
                await self._replace(slot)
            return await self._each_alone(cards, way)
        self._slots.put_nowait(slot)  # the page takes the next tile while this one encodes
        try:
            pngs = await way.encode(raw, len(cards))
        except InvalidPng as e:
            log.warning("Chromium's PNG of a tile is invalid (%s); rendering one by one", e)
            return await self._each_alone(cards, way)
        seconds = time.monotonic() - started
        return [
            RenderResult(key, png, None, 1, seconds)
            for (key, _), png in zip(cards, pngs, strict=True)
        ]

    async def _each_alone(self, cards: list[tuple[Any, str]], way: _Way) -> list[RenderResult]:
        return list(await asyncio.gather(*[self._render_alone(*card, way) for card in cards]))

    async def _render_alone(self, key: Any, markup: str, way: _Way) -> RenderResult:
        error = ""
        for attempt in range(1, self.attempts + 1):
            slot = await self._take()
            started = time.monotonic()
            try:
                raw = await asyncio.wait_for(way.capture(slot, [markup]), way.timeout_s)
            except _Blocked as e:  # the same markup asks again: no point in trying again
                self._slots.put_nowait(slot)
                return RenderResult(key, None, _asked_for(str(e)), attempt)
            except (TimeoutError, PlaywrightError) as e:
                error = (
                    f"timed out after {way.timeout_s:g}s"
                    if isinstance(e, TimeoutError)
                    else str(e).splitlines()[0]
                )
                log.warning("render attempt %s of card %s failed: %s", attempt, key, error)
                await self._replace(slot)
                continue
            self._slots.put_nowait(slot)  # the page takes the next card while this one encodes
            try:
                (png,) = await way.encode(raw, 1)
            except InvalidPng as e:
                error = f"Chromium's PNG is invalid: {e}"
                log.warning("render attempt %s of card %s failed: %s", attempt, key, error)
                continue
            return RenderResult(key, png, None, attempt, time.monotonic() - started)
        return RenderResult(key, None, f"render failed {self.attempts} times: {error}", attempt)

    async def _encode(self, raw: bytes, cards: int) -> list[bytes]:
        """The capture's cards, cut and re-encoded (or as Chromium made it)."""
        if self.encoding == CHROMIUM:
            return [raw]
        return await self._loop.run_in_executor(self._encoder, _split, raw, cards)

    async def _assemble(
        self, captures: list[bytes], cards: int, animation: Animation
    ) -> list[bytes]:
        """The tile's APNGs, off the event loop as `_encode` does."""
        job = partial(animate.assemble, captures, cards, animation)
        return await self._loop.run_in_executor(self._encoder, job)

    async def _take(self) -> _Slot:
        while True:
            if self._slots.empty() and self._opened < self.pages:
                self._open_another_page()
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
            self._by_page.pop(slot.page, None)
            await asyncio.wait_for(slot.page.close(), self.timeout_s)
            self._slots.put_nowait(await asyncio.wait_for(self._new_slot(), self.timeout_s))
        except (TimeoutError, PlaywrightError):
            await self._relaunch(slot.generation)


def _asked_for(url: str) -> str:
    """Why a card that asked for `url` fails."""
    design = f"{ORIGIN}/design/"
    if url.startswith(design):
        return f"the card asks for {url[len(design) :]}, which the design folder does not have"
    return f"the card asks for {url}: card pages reach no network"


def _split(raw: bytes, cards: int) -> list[bytes]:
    with phase("encode"):
        return split_png(raw, cards)
