"""The fast render path gives what the simple path gives, and loses nothing when busy.

The simple path: a fresh page, the whole card document, Playwright's screenshot (Chromium's
default PNG). The fast path: a warm pool, markup swapped into ready pages, Chromium's fast PNG
re-encoded by us. Same pixels, bytes no bigger, the same bytes every time.
"""

import dataclasses
import itertools
import random
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster_aws.s3 import S3Resource
from playwright.async_api import Error as PlaywrightError

from pd_pipeline.db import schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.ledger import LedgerStatus
from pd_pipeline.defs.resources import CardStore
from pd_pipeline.images.produce import make_images
from pd_pipeline.images.state import Policy
from pd_pipeline.images.writeback import write_back
from pd_pipeline.model import tier_of
from pd_pipeline.render.browser import CHROMIUM, BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import CardPages
from pd_pipeline.render.png import decode_png, verify_png
from pd_pipeline.storage.stores import LocalStore
from pd_pipeline_tests.helpers import seed_small_demo, wait_for
from pd_pipeline_tests.hostile import open_browser, open_page

pytestmark = pytest.mark.slow


# Names that stress a frame: the longest, scripts of fallback fonts, right to left.
HARD_NAMES = (
    "Wolfgang Amadeus Theophilus Bartholomew Montgomery-Featherstonehaugh III " * 3,
    "\u5927\u8c37 \u7fd4\u5e73 \U0001f525\u26be\ufe0f",
    "\u05d3\u05d5\u05d3 \u05d1\u05df-\u05d2\u05d5\u05e8\u05d9\u05d5\u05df",
)


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    """A batting and a pitching card of every tier, and a few with names that are hard to
    draw."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fast') / 'cards.db'}"
    engine = seed_small_demo(url, players=6)
    with engine.connect() as conn:
        base = [load_cards(conn, t)[0] for t in ("battingcard", "pitchingcard")]
    picked = []
    for card in base:
        for tier in range(5):
            variant = next(v for v in range(10**8, 10**9) if tier_of(v) == tier) if tier else 0
            picked.append(_with(card, variant=variant))
    for name, card in zip(HARD_NAMES, picked[1:], strict=False):
        picked.append(_with(card, name=name))
    return picked


def _with(card, *, variant=None, name=None):
    inputs = dict(card.inputs)
    if variant is not None:
        inputs["variant"] = variant
    if name is not None:
        inputs["player"] = {**inputs["player"], "name": name}
    return dataclasses.replace(card, variant=inputs["variant"], inputs=inputs)


@pytest.fixture(scope="module")
def templates():
    return CardPages()


def simple_path(templates: CardPages, documents: list[str]) -> list[bytes]:
    """Each card the plain way: a new page, the whole document, a Playwright screenshot."""
    with open_browser() as browser:
        shots = []
        for document in documents:
            page = open_page(browser, templates, document)
            # Fonts arrive while the page is first drawn: once they all have, draw it afresh.
            page.evaluate("document.fonts.ready.then(() => true)")
            page.evaluate("document.body.innerHTML = document.body.innerHTML")
            page.evaluate("document.fonts.ready.then(() => true)")
            shots.append(page.screenshot())
            page.close()
    return shots


def test_fast_path_has_the_simple_paths_pixels_in_no_more_bytes(cards, templates):
    assert len(cards) >= 4
    simple = simple_path(templates, [templates.document(card) for card in cards])
    markup = [templates.body(card) for card in cards]
    with BrowserPool(find_chromium(), templates, pages=3) as pool:
        fast = {r.key: r.png for r in pool.render_many(enumerate(markup))}
    with BrowserPool(find_chromium(), templates, pages=2, encoding=CHROMIUM) as pool:
        chromium = {r.key: r.png for r in pool.render_many(enumerate(markup))}
    for index, card in enumerate(cards):
        verify_png(fast[index])
        assert (decode_png(fast[index]) == decode_png(simple[index])).all(), card.label
        assert (decode_png(chromium[index]) == decode_png(simple[index])).all(), card.label
        assert len(fast[index]) <= len(simple[index]), f"{card.label}: bigger than Chromium's"


def test_a_card_gives_the_same_bytes_on_any_page_of_any_pool(cards, templates):
    markup = templates.body(cards[-1])
    seen = set()
    for pages in (1, 3):
        with BrowserPool(find_chromium(), templates, pages=pages) as pool:
            seen |= {r.png for r in pool.render_many((i, markup) for i in range(2 * pages))}
    assert len(seen) == 1


def test_pages_open_as_cards_wait_for_them(cards, templates):
    """One edited card renders on one page: three more opening beside it made it several times
    slower. A stream of cards opens every page the pool may have."""
    markup = templates.body(cards[0])
    with BrowserPool(find_chromium(), templates, pages=3, tile=1) as pool:
        assert pool.pages_open == 1
        pool.render(markup)
        assert pool.pages_open == 1
        results = list(pool.render_many((i, markup) for i in range(12)))
        assert pool.pages_open == 3
    assert all(r.png == results[0].png for r in results), [r.error for r in results]


def test_a_pool_launched_early_renders_when_asked_and_fails_only_then(cards, templates, tmp_path):
    """`launch_soon` launches in the background (a run launches Chromium while it plans); a
    launch that cannot succeed fails when a card asks for the pool, and a pool launched for
    nothing leaves no Chromium behind."""
    markup = templates.body(cards[0])
    pool = BrowserPool(find_chromium(), templates).launch_soon()
    try:
        wait_for(lambda: pool.launches == 1, "Chromium launched in the background", 60, 0.1)
        assert pool.render(markup) == _alone(templates, markup)
    finally:
        pool.close()
    unused = BrowserPool(find_chromium(), templates).launch_soon()
    wait_for(lambda: unused.launches == 1, "Chromium launched in the background", 60, 0.1)
    pid = unused._browser_pid
    unused.close()
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), "Chromium gone once closed", 10, 0.1)
    broken = BrowserPool(str(tmp_path / "no-chromium"), templates).launch_soon()
    try:
        with pytest.raises(PlaywrightError, match="no-chromium"):
            broken.render(markup)
    finally:
        broken.close()


def _alone(templates: CardPages, markup: str) -> bytes:
    with BrowserPool(find_chromium(), templates, pages=1) as pool:
        return pool.render(markup)


def test_nothing_is_lost_when_the_pool_is_busy_and_relaunches(cards, templates):
    markup = [templates.body(card) for card in cards]
    jobs = list(zip(range(40), itertools.cycle(range(len(markup))), strict=False))
    with BrowserPool(find_chromium(), templates, pages=2, recycle_after=7) as pool:
        results = list(pool.render_many((job, markup[card]) for job, card in jobs))
        assert pool.launches >= 40 // 7
    assert sorted(r.key for r in results) == list(range(40))
    by_card: dict[int, set] = {}
    for result in results:
        assert result.png is not None, result.error
        by_card.setdefault(dict(jobs)[result.key], set()).add(result.png)
    assert all(len(pngs) == 1 for pngs in by_card.values()), "relaunches changed the bytes"


def test_a_card_in_a_tile_is_the_card_captured_alone(cards, templates):
    """Wherever a card sits in a tile, its bytes are those of the card alone."""
    markup = [templates.body(card) for card in cards]
    with BrowserPool(find_chromium(), templates, pages=2, tile=1) as pool:
        alone = {r.key: r.png for r in pool.render_many(enumerate(markup))}
        assert pool.captures == len(markup)
    with BrowserPool(find_chromium(), templates, pages=4, tile=4) as pool:
        for turn in range(3):  # three orders: each card in several places of a tile
            order = list(enumerate(markup))
            random.Random(turn).shuffle(order)
            tiled = {r.key: r.png for r in pool.render_many(order)}
            assert tiled == alone, [cards[i].label for i in alone if tiled[i] != alone[i]]
        assert pool.captures == 3 * -(-len(markup) // 4)


# Markup that would spill into its neighbours if a frame let it: a tall element, a huge glow,
# an element far off to the side and one fixed to the viewport.
SPILLING = [
    '<div style="height:5000px;background:#c00"></div>',
    '<div style="margin:200px;width:800px;height:200px;box-shadow:0 0 400px 400px #0c0"></div>',
    '<div style="position:absolute;left:-3000px;top:300px;width:9000px;height:2000px;'
    'background:#00c"></div>',
    '<div style="position:fixed;inset:0;background:#cc0"></div>',
]


def test_nothing_bleeds_from_one_frame_into_another(cards, templates):
    card = templates.body(cards[0])
    with BrowserPool(find_chromium(), templates, pages=1, tile=1) as pool:
        alone = pool.render(card)
    with BrowserPool(find_chromium(), templates, pages=1, tile=4) as pool:
        for spill in SPILLING:
            jobs = [("before", card), ("spill", spill), ("after", card), ("last", card)]
            results = {r.key: r for r in pool.render_many(jobs)}
            assert {
                j: results[j].png == alone for j in ("before", "after", "last")
            } == dict.fromkeys(("before", "after", "last"), True), spill


def test_a_bad_card_in_a_tile_fails_alone_and_the_others_are_rendered_again(cards, templates):
    markup = [templates.body(card) for card in cards[:4]]
    broken = markup[1].replace("</article>", '<img src="images/no-such-file.png"></article>')
    with BrowserPool(find_chromium(), templates, pages=1, tile=1) as pool:
        alone = [pool.render(m) for m in markup]
    with BrowserPool(find_chromium(), templates, pages=1, tile=4) as pool:
        results = {r.key: r for r in pool.render_many(enumerate([markup[0], broken, *markup[2:]]))}
    assert results[1].png is None
    assert "asks for images/no-such-file.png, which the design folder does not have" in (
        results[1].error
    )
    assert [results[i].png for i in (0, 2, 3)] == [alone[i] for i in (0, 2, 3)]


def test_a_browser_that_dies_mid_run_loses_no_card(cards, templates):
    markup = templates.body(cards[0])
    with BrowserPool(find_chromium(), templates, pages=2) as pool:
        results = []
        for result in pool.render_many((i, markup) for i in range(40)):
            results.append(result)
            if len(results) == 3:
                pool._call(pool._browser.close())  # as if Chromium crashed, cards in flight
        assert pool.launches == 2
    assert sorted(r.key for r in results) == list(range(40))
    assert all(r.png == results[0].png for r in results), [r.error for r in results]


class SlowStore(LocalStore):
    """A store that answers a put only once `backlog` rendered cards wait for it (or every card
    is rendered), then takes its time, counting how many ever waited: a step that did not hold
    rendering back would pile up more meanwhile."""

    def __init__(self, root, pool: BrowserPool, cards: int, backlog: int):
        super().__init__(root, cache_control="no-cache")
        self.pool, self.cards, self.backlog = pool, cards, backlog
        self.rendered = self.stored = self.most_waiting = 0
        self.changed = threading.Condition()

    def render_many(self, markups):  # the pool the step renders with, counting its cards
        for result in self.pool.render_many(markups):
            with self.changed:
                self.rendered += 1
                self.most_waiting = max(self.most_waiting, self.rendered - self.stored)
                self.changed.notify_all()
            yield result

    def put(self, key, data, **kwargs):
        with self.changed:
            self.changed.wait_for(
                lambda: self.rendered - self.stored >= self.backlog or self.rendered >= self.cards,
                timeout=30,
            )
        time.sleep(0.2)
        made = super().put(key, data, **kwargs)
        with self.changed:
            self.stored += 1
            self.changed.notify_all()
        return made


def test_new_cards_cost_one_listing_and_a_put_each_and_a_rerun_nothing(
    tmp_path, templates, s3_env, s3_server
):
    """S3 requests are the pipeline's own cost per card (beyond Chromium's): a listing of the
    cardset's folder finds no object to reuse, and each upload's response confirms its object."""
    engine = seed_small_demo(f"sqlite:///{tmp_path / 'cards.db'}", players=6)
    store = CardStore(
        location=f"s3://{s3_env['bucket']}/", s3=S3Resource(endpoint_url=s3_server.endpoint_url)
    ).open()
    calls = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    with BrowserPool(find_chromium(), templates, pages=2) as pool:
        policy = Policy(templates.version, store.public_base_url)
        first = make_images(engine, store, lambda: pool, templates, policy, "battingcard", 1)
        assert first.rendered == first.uploaded == first.cards > 0
        assert sorted(calls) == ["ListObjectsV2"] + ["PutObject"] * first.cards
        write_back(engine, policy, "battingcard", 1)
        calls.clear()
        again = make_images(engine, store, lambda: pool, templates, policy, "battingcard", 1)
    assert again.current == again.cards and calls == []


def test_a_slow_store_holds_rendering_back_and_loses_nothing(tmp_path, templates):
    engine = seed_small_demo(f"sqlite:///{tmp_path / 'cards.db'}", players=20)
    with engine.connect() as conn:
        cards = len(load_cards(conn, "battingcard", cardset_id=1))
    with BrowserPool(find_chromium(), templates, pages=4) as pool:
        store = SlowStore(tmp_path / "store", pool, cards, backlog=4)
        policy = Policy(templates.version, store.public_base_url)
        report = make_images(engine, store, lambda: store, templates, policy, "battingcard", 1,
                           uploads_in_flight=3)  # fmt: skip
    assert report.failed == 0 and report.rendered == report.uploaded == report.cards == cards
    # At most the 3 uploads in flight and the card just handed over wait for the store.
    assert cards > 8 and store.most_waiting == 4
    with engine.connect() as conn:
        entry = schema.card_render
        statuses = conn.execute(
            sa.select(entry.c.status, sa.func.count()).group_by(entry.c.status)
        ).all()
    assert statuses == [(LedgerStatus.MADE, report.cards)]
