"""One bench run, in a process of its own (the parent watches this process tree's memory).

    python -m bench.phase PHASE CONFIG.json RESULT.json

Phases, all on the cards of the database in CONFIG:
- `e2e`: the pipeline end to end, as CI runs it: Dagster's `render_pending_job` (render, verify,
  upload to the S3 server, ledger, write-back), in process; `e2e-before`: the same, run from
  another checkout (a before/after);
- `bare-tiled`, `bare`, `bare-chromium`, `bare-fast`: the bare Chromium loop (one browser, one
  context, a page per slot, markup swapped in, CDP capture, the design's files served from
  memory), producing the pipeline's PNGs (`bare-tiled`: a tile of cards a capture, cut and
  re-encoded by `split_png` in a thread, the fastest loop we can write: the limit; `bare`: the
  same, one card a capture), Chromium's default PNGs, or Chromium's fast PNGs as they are;
- `naive`: a browser launched per card, the whole page set, a Playwright screenshot (how
  on-request renderers and html2image work);
- `anim-t3`, `anim-t4`, `still-t3`, `still-t4`, `pd-t3`, `pd-t4`, `pdfast-t3`, `pdfast-t4`:
  animated cards (bench.animated).
Timings start after imports and before Playwright starts; card HTML is made before the clock
starts for the baselines, and by the pipeline itself (inside the clock) for `e2e`.
"""

import asyncio
import base64
import hashlib
import itertools
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SAVED_PNGS = 24  # PNGs of the first cards written to the work folder, for pixel comparisons
# The bare loops: (PNG encoding, cards a capture; None: the pipeline's tile).
BARE = {
    "bare": ("compact", 1),
    "bare-tiled": ("compact", None),
    "bare-chromium": ("chromium", 1),
    "bare-fast": ("fast", 1),
}


def card_pages(config: dict):
    """(card labels, card markup, standalone documents, the design) of every card, in id
    order."""
    from pd_pipeline.db.cards import load_cards
    from pd_pipeline.db.engine import make_engine
    from pd_pipeline.model import CARD_TYPES
    from pd_pipeline.render.pages import CardPages

    templates = CardPages()
    labels, bodies, documents = [], [], []
    with make_engine(config["database_url"]).connect() as conn:
        for card_type in CARD_TYPES:
            for card in load_cards(conn, card_type):
                labels.append(f"{card_type}:{card.card_id}")
                body = templates.body(card)
                bodies.append(body)
                documents.append(templates.document(card) if config.get("documents") else "")
    return labels, bodies, documents, templates


def run_e2e(config: dict) -> dict:
    import dagster as dg
    import sqlalchemy as sa

    from pd_pipeline.db import schema
    from pd_pipeline.db.engine import make_engine
    from pd_pipeline.defs import build_defs
    from pd_pipeline.render.browser import BrowserPool
    from pd_pipeline.storage.stores import S3Store

    # Per-card latency: from the page taking the card to its object confirmed in the store. The
    # bench wraps two public methods to see it (the pool's results and the store's uploads);
    # the pipeline itself is unchanged.
    started: dict[int, float] = {}
    latencies: list[float] = []
    render_many, put = BrowserPool.render_many, S3Store.put

    def timed_render_many(self, markups):
        for result in render_many(self, markups):
            if result.png is not None:
                # (an older pool, run with --code, does not time its cards)
                started[id(result.png)] = time.monotonic() - getattr(result, "seconds", 0.0)
            yield result

    def timed_put(self, key, data, **kwargs):
        confirmed = put(self, key, data, **kwargs)
        if id(data) in started:
            latencies.append(time.monotonic() - started.pop(id(data)))
        return confirmed

    BrowserPool.render_many, S3Store.put = timed_render_many, timed_put
    job = build_defs().resolve_job_def("render_pending_job")
    with dg.DagsterInstance.ephemeral() as instance:
        began = time.time()
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        ended = time.time()
    entry = schema.card_render
    with make_engine(config["database_url"]).connect() as conn:
        rows = conn.execute(
            sa.select(
                entry.c.card_type, entry.c.card_id, entry.c.png_sha256, entry.c.png_bytes
            ).where(entry.c.status == "stored", entry.c.image == "png")  # the stills: a card each
        ).all()
        written = sum(
            conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.image_url.is_not(None))
            ).scalar_one()
            for t in schema.CARD_TABLES.values()
        )
    try:  # the pipeline's own CPU by phase (PD_PROFILE_FILE turned it on)
        from pd_pipeline.profiling import totals_ms

        cpu_ms = totals_ms()
    except ImportError:  # older code, run with --code, has no profiling hook
        cpu_ms = {}
    return {
        "success": result.success,
        "pipeline_cpu_ms": cpu_ms,
        "clock": [began, ended],
        "wall_s": ended - began,
        "cards": len(rows),
        "urls_written": written,
        "latencies_s": latencies,
        "png": {f"{t}:{i}": [sha, size] for t, i, sha, size in rows},
    }


async def serve_design(context, design) -> None:
    """Answer every request as the pipeline's renderer does: the design's files and fonts."""
    from pd_pipeline.render.fonts import ORIGIN

    async def serve(route):
        found = design.resource(route.request.url[len(ORIGIN) :].split("?")[0])
        if found is None:
            await route.abort()
        else:
            await route.fulfill(body=found[0], content_type=found[1])

    await context.route("**/*", serve)


async def _bare(config: dict, encoding: str, tile: int) -> dict:
    from playwright.async_api import async_playwright

    from pd_pipeline.render.browser import CHROMIUM_ARGS, HEIGHT, SWAP, WIDTH
    from pd_pipeline.render.png import split_png

    labels, bodies, _, design = card_pages(config)
    shell = design.shell(tile)
    work = Path(config["work_dir"])
    loop = asyncio.get_running_loop()
    encoder = ThreadPoolExecutor(os.cpu_count() or 1)
    pngs: dict[str, list] = {}
    latencies: list[float] = []
    indexes = iter(range(len(bodies)))

    def finish(first: int, raw: bytes, cards: int, began: float) -> None:
        for index, png in enumerate(split_png(raw, cards) if encoding == "compact" else [raw],
                                    first):  # fmt: skip
            pngs[labels[index]] = [hashlib.sha256(png).hexdigest(), len(png)]
            if index < SAVED_PNGS:
                (work / f"{config['phase']}-{index}.png").write_bytes(png)
            latencies.append(time.monotonic() - began)

    async def worker(page, cdp) -> list:
        encoding_now = []
        while group := list(itertools.islice(indexes, tile)):
            began = time.monotonic()
            await page.evaluate(SWAP, [bodies[i] for i in group])
            clip = {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT * len(group), "scale": 1}
            options = {"format": "png", "optimizeForSpeed": encoding != "chromium", "clip": clip}
            raw = base64.b64decode((await cdp.send("Page.captureScreenshot", options))["data"])
            # The page takes its next cards while these are encoded (in a thread).
            encoding_now = [f for f in encoding_now if not f.done()]
            encoding_now.append(
                loop.run_in_executor(encoder, finish, group[0], raw, len(group), began)
            )
        return encoding_now

    began = time.time()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=config["chromium"], args=CHROMIUM_ARGS
        )
        context = await browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT * tile}, java_script_enabled=False
        )
        await serve_design(context, design)
        # A window per page, as the pool makes them (a background tab's first capture waits).
        first = await context.new_page()
        info = await (await context.new_cdp_session(first)).send("Target.getTargetInfo")
        target = {"url": "about:blank", "newWindow": True,
                  "browserContextId": info["targetInfo"]["browserContextId"]}  # fmt: skip
        browser_cdp = await browser.new_browser_cdp_session()
        windows = [first]
        for _ in range(config["pages"] - 1):  # one at a time: each opened page is the one asked
            async with context.expect_page() as opened:
                await browser_cdp.send("Target.createTarget", target)
            windows.append(await opened.value)

        async def ready_page(page):
            await page.set_content(shell)
            return page, await context.new_cdp_session(page)

        pages = await asyncio.gather(*[ready_page(page) for page in windows])
        leftovers = await asyncio.gather(*[worker(page, cdp) for page, cdp in pages])
        await asyncio.gather(*[f for fs in leftovers for f in fs])
        ended = time.time()
        await browser.close()
    encoder.shutdown()
    return {"clock": [began, ended], "wall_s": ended - began, "cards": len(pngs),
            "latencies_s": latencies, "png": pngs}  # fmt: skip


async def _naive(config: dict) -> dict:
    from playwright.async_api import async_playwright

    from pd_pipeline.render.browser import CHROMIUM_ARGS, HEIGHT, WIDTH

    labels, _, documents, design = card_pages({**config, "documents": True})
    count = min(config["naive_cards"], len(documents))
    work = Path(config["work_dir"])
    pngs: dict[str, list] = {}
    latencies: list[float] = []
    began = time.time()
    async with async_playwright() as playwright:
        for index in range(count):
            card_began = time.monotonic()
            browser = await playwright.chromium.launch(
                executable_path=config["chromium"], args=CHROMIUM_ARGS
            )
            context = await browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
            await serve_design(context, design)
            page = await context.new_page()
            await page.set_content(documents[index])
            await page.evaluate("document.fonts.ready.then(() => true)")
            png = await page.screenshot()
            await browser.close()
            latencies.append(time.monotonic() - card_began)
            pngs[labels[index]] = [hashlib.sha256(png).hexdigest(), len(png)]
            if index < SAVED_PNGS:
                (work / f"naive-{index}.png").write_bytes(png)
    ended = time.time()
    return {"clock": [began, ended], "wall_s": ended - began, "cards": count,
            "latencies_s": latencies, "png": pngs}  # fmt: skip


def main() -> None:
    phase, config_path, result_path = sys.argv[1:4]
    config = {**json.loads(Path(config_path).read_text()), "phase": phase}
    if phase in ("e2e", "e2e-before"):
        result = run_e2e(config)
    elif phase.startswith(("anim-", "still-", "pd-", "pdfast-")):
        from bench import animated

        kind, tier = phase.split("-t")
        if kind.startswith("pd"):
            result = asyncio.run(animated.run_pd(config, int(tier), fast=kind == "pdfast"))
        else:
            result = animated.run_pool(config, int(tier), animated=kind == "anim")
    elif phase == "naive":
        result = asyncio.run(_naive(config))
    else:
        encoding, tile = BARE[phase]
        result = asyncio.run(_bare(config, encoding, config["tile"] if tile is None else tile))
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
