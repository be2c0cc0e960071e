"""The animated phases of the render bench (run by bench.phase, in a process of their own).

On the first `animated_cards` cards of the bench's database, each given a variant of one tier (T3
or T4, so the same cards at either tier):
- `anim-t3`, `anim-t4`: the pipeline's animated capture, `BrowserPool.render_animated`: frame 0
  whole, then the animated region of every later frame, stacked across a tile of cards;
- `still-t3`, `still-t4`: the same cards' static PNGs, `BrowserPool.render_many`: what a card
  costs when it does not move;
- `pd-t3`, `pd-t4`: Paper Dynasty's way: a screenshot of the whole 1200x600 card per frame
  (Playwright's `page.screenshot`), the frames stored whole (`apng.encode_apng_whole`), on warm
  pages (a window each, as the pool has) with the markup swapped in, decoding and encoding in a
  thread per core while the pages capture;
- `pdfast-t3`, `pdfast-t4`: the same with the pool's own capture (CDP, Chromium's fast PNG
  encoder): PD's way at its best, a lower bound of what it costs.
Timings start before Playwright starts; card markup is made before the clock starts.
"""

import asyncio
import base64
import hashlib
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SAVED = 4  # APNGs of the first cards written to the work folder, to compare their frames


def tier_cards(config: dict, tier: int) -> tuple[list[str], list[str], list, object]:
    """(labels, markup, animations, the design) of the first `animated_cards` cards of the
    database, each made a variant of `tier`."""
    import dataclasses

    from pd_pipeline.db.cards import load_cards
    from pd_pipeline.db.engine import make_engine
    from pd_pipeline.model import CARD_TYPES, tier_of
    from pd_pipeline.render.pages import CardPages

    design = CardPages()
    variants = (v for v in itertools.count(10**8) if tier_of(v) == tier)
    labels, markup, animations = [], [], []
    with make_engine(config["database_url"]).connect() as conn:
        cards = [card for t in CARD_TYPES for card in load_cards(conn, t)]
    for card in cards[: config["animated_cards"]]:
        variant = next(variants)
        inputs = {**card.inputs, "variant": variant}
        card = dataclasses.replace(card, variant=variant, inputs=inputs)
        labels.append(f"{card.card_type}:{card.card_id}")
        markup.append(design.body(card))
        animations.append(design.animation(card))
    return labels, markup, animations, design


def _result(began: float, pngs: dict, latencies: list) -> dict:
    ended = time.time()
    return {"clock": [began, ended], "wall_s": ended - began, "cards": len(pngs),
            "latencies_s": latencies, "png": pngs}  # fmt: skip


def run_pool(config: dict, tier: int, animated: bool) -> dict:
    """The pipeline's pool: APNGs (render_animated) or static PNGs (render_many)."""
    from pd_pipeline.render.browser import BrowserPool

    labels, markup, animations, design = tier_cards(config, tier)
    work, phase = Path(config["work_dir"]), config["phase"]
    pngs, latencies = {}, []
    with BrowserPool(
        config["chromium"], design, pages=config["pages"], tile=config["tile"]
    ) as pool:
        began = time.time()
        if animated:
            results = pool.render_animated(zip(range(len(markup)), markup, animations, strict=True))
        else:
            results = pool.render_many(enumerate(markup))
        for result in results:
            if result.png is None:
                raise RuntimeError(f"{labels[result.key]}: {result.error}")
            pngs[labels[result.key]] = [hashlib.sha256(result.png).hexdigest(), len(result.png)]
            latencies.append(result.seconds)
            if result.key < SAVED:
                (work / f"{phase}-{result.key}.png").write_bytes(result.png)
        return _result(began, pngs, latencies)


async def run_pd(config: dict, tier: int, fast: bool) -> dict:
    """Paper Dynasty's way: every frame a whole screenshot, stored whole: Playwright's
    `page.screenshot` (Chromium's default PNG encoder), or, `fast`, a CDP capture with its fast
    encoder."""
    from playwright.async_api import async_playwright

    from bench.phase import serve_design
    from pd_pipeline.render import animate
    from pd_pipeline.render.apng import encode_apng_whole
    from pd_pipeline.render.browser import CHROMIUM_ARGS, HEIGHT, SWAP, WIDTH
    from pd_pipeline.render.png import decode_png

    labels, markup, animations, design = tier_cards(config, tier)
    work, phase = Path(config["work_dir"]), config["phase"]
    loop = asyncio.get_running_loop()
    encoder = ThreadPoolExecutor(os.cpu_count() or 1)
    pngs, latencies = {}, []
    indexes = iter(range(len(markup)))
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1}
    # PD's seek: on the card's frame (its every element restyled, as PD's service does).
    seek_js = "s => { document.getElementById('pd-frame-0').style.setProperty('--pd-seek', s); }"
    options = {"format": "png", "optimizeForSpeed": True, "clip": clip}

    def finish(index: int, raws: list[bytes], began: float) -> None:
        frames = [decode_png(raw).reshape(HEIGHT, WIDTH, 3) for raw in raws]
        apng = encode_apng_whole(frames, animations[index].delay_ms)
        pngs[labels[index]] = [hashlib.sha256(apng).hexdigest(), len(apng)]
        if index < SAVED:
            (work / f"{phase}-{index}.png").write_bytes(apng)
        latencies.append(time.monotonic() - began)

    async def worker(page, cdp) -> list:
        encoding = []
        for index in indexes:
            began = time.monotonic()
            await page.evaluate(SWAP, [markup[index]])
            raws = []
            for seek in animations[index].seeks_ms:
                await page.evaluate(seek_js, animate.seek_value(seek))
                if fast:
                    shot = await cdp.send("Page.captureScreenshot", options)
                    raws.append(base64.b64decode(shot["data"]))
                else:
                    raws.append(await page.screenshot(clip=clip))
            encoding = [f for f in encoding if not f.done()]
            encoding.append(loop.run_in_executor(encoder, finish, index, raws, began))
        return encoding

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=config["chromium"], args=CHROMIUM_ARGS
        )
        context = await browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT}, java_script_enabled=False
        )
        await serve_design(context, design)
        first = await context.new_page()
        info = await (await context.new_cdp_session(first)).send("Target.getTargetInfo")
        target = {"url": "about:blank", "newWindow": True,
                  "browserContextId": info["targetInfo"]["browserContextId"]}  # fmt: skip
        browser_cdp = await browser.new_browser_cdp_session()
        windows = [first]
        for _ in range(config["pages"] - 1):
            async with context.expect_page() as opened:
                await browser_cdp.send("Target.createTarget", target)
            windows.append(await opened.value)

        async def ready(page):
            await page.set_content(design.shell(1))
            return page, await context.new_cdp_session(page)

        pages = await asyncio.gather(*[ready(page) for page in windows])
        began = time.time()
        leftovers = await asyncio.gather(*[worker(page, cdp) for page, cdp in pages])
        await asyncio.gather(*[f for fs in leftovers for f in fs])
        result = _result(began, pngs, latencies)
        await browser.close()
    encoder.shutdown()
    return result


def checks(work: Path) -> dict:
    """Ours against PD's way on the saved cards: the same frames, and bytes."""
    from pd_pipeline.render.apng import decode_apng

    found: dict = {}
    for tier in (3, 4):
        same = compared = 0
        for index in range(SAVED):
            ours = work / f"anim-t{tier}-{index}.png"
            baselines = [work / f"{kind}-t{tier}-{index}.png" for kind in ("pd", "pdfast")]
            theirs = next((path for path in baselines if path.exists()), None)
            if ours.exists() and theirs:
                compared += 1
                a, b = decode_apng(ours.read_bytes()), decode_apng(theirs.read_bytes())
                same += len(a) == len(b) and all((x == y).all() for x, y in zip(a, b, strict=True))
        if compared:
            found[f"t{tier}_frames_identical_to_pd"] = f"{same}/{compared}"
    return found
