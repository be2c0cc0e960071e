"""The fast render path gives what the simple path gives, and loses nothing when busy.

The simple path: a fresh page, the whole card document, Playwright's screenshot (Chromium's
default PNG). The fast path: a warm pool, markup swapped into ready pages, Chromium's fast PNG
re-encoded by us. Same pixels, bytes no bigger, the same bytes every time.
"""

import itertools

import pytest
import sqlalchemy as sa
from dagster_aws.s3 import S3Resource
from playwright.sync_api import sync_playwright

import pd_pipeline.images.produce as produce
from pd_pipeline.db import schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.images import state
from pd_pipeline.images.produce import make_pngs
from pd_pipeline.images.state import Context
from pd_pipeline.images.writeback import write_back
from pd_pipeline.render.browser import CHROMIUM, CHROMIUM_ARGS, HEIGHT, WIDTH, BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import CardPages, tier_of
from pd_pipeline.render.png import decode_png, verify_png
from pd_pipeline.resources import CardStore
from pd_pipeline.storage.stores import LocalStore
from pd_pipeline_tests.helpers import seed_small_demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    """A few batting and pitching cards, base cards and variants of several tiers."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fast') / 'cards.db'}"
    engine = seed_small_demo(url, players=10)
    with engine.connect() as conn:
        every = [c for t in ("battingcard", "pitchingcard") for c in load_cards(conn, t)]
    picked, tiers = [], set()
    for card in every:
        key = (card.card_type, tier_of(card.variant))
        if key not in tiers:
            tiers.add(key)
            picked.append(card)
    return picked


@pytest.fixture(scope="module")
def templates():
    return CardPages()


def simple_path(documents: list[str]) -> list[bytes]:
    """Each card the plain way: a new page, the whole document, a Playwright screenshot."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        shots = []
        for document in documents:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_content(document)
            page.evaluate("document.fonts.ready.then(() => true)")
            shots.append(page.screenshot())
            page.close()
        browser.close()
    return shots


def test_fast_path_has_the_simple_paths_pixels_in_no_more_bytes(cards, templates):
    assert len(cards) >= 4
    simple = simple_path([templates.document(card) for card in cards])
    markup = [templates.body(card) for card in cards]
    with BrowserPool(find_chromium(), templates.shell(), pages=3) as pool:
        fast = {r.job_id: r.png for r in pool.render_many(enumerate(markup))}
    with BrowserPool(find_chromium(), templates.shell(), pages=2, encoding=CHROMIUM) as pool:
        chromium = {r.job_id: r.png for r in pool.render_many(enumerate(markup))}
    for index, card in enumerate(cards):
        verify_png(fast[index])
        assert (decode_png(fast[index]) == decode_png(simple[index])).all(), card.label
        assert (decode_png(chromium[index]) == decode_png(simple[index])).all(), card.label
        assert len(fast[index]) <= len(simple[index]), f"{card.label}: bigger than Chromium's"


def test_a_card_gives_the_same_bytes_on_any_page_of_any_pool(cards, templates):
    markup = templates.body(cards[-1])
    seen = set()
    for pages in (1, 3):
        with BrowserPool(find_chromium(), templates.shell(), pages=pages) as pool:
            seen |= {r.png for r in pool.render_many((i, markup) for i in range(2 * pages))}
    assert len(seen) == 1


def test_nothing_is_lost_when_the_pool_is_busy_and_relaunches(cards, templates):
    markup = [templates.body(card) for card in cards]
    jobs = list(zip(range(40), itertools.cycle(range(len(markup))), strict=False))
    with BrowserPool(find_chromium(), templates.shell(), pages=2, recycle_after=7) as pool:
        results = list(pool.render_many((job, markup[card]) for job, card in jobs))
        assert pool.launches >= 40 // 7
    assert sorted(r.job_id for r in results) == list(range(40))
    by_card: dict[int, set] = {}
    for result in results:
        assert result.png is not None, result.error
        by_card.setdefault(dict(jobs)[result.job_id], set()).add(result.png)
    assert all(len(pngs) == 1 for pngs in by_card.values()), "relaunches changed the bytes"


def test_a_browser_that_dies_mid_run_loses_no_card(cards, templates):
    markup = templates.body(cards[0])
    with BrowserPool(find_chromium(), templates.shell(), pages=2) as pool:
        results = []
        for result in pool.render_many((i, markup) for i in range(16)):
            results.append(result)
            if len(results) == 3:
                pool._call(pool._browser.close())  # as if Chromium crashed, cards in flight
        assert pool.launches == 2
    assert sorted(r.job_id for r in results) == list(range(16))
    assert all(r.png == results[0].png for r in results), [r.error for r in results]


class SlowStore(LocalStore):
    def put(self, key, data, **kwargs):
        import time

        time.sleep(0.05)
        return super().put(key, data, **kwargs)


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
    with BrowserPool(find_chromium(), templates.shell(), pages=2) as pool:
        ctx = Context(templates.version, store.public_base_url)
        first = make_pngs(engine, store, lambda: pool, templates, ctx, "battingcard", 1)
        assert first.rendered == first.uploaded == first.cards > 0
        assert sorted(calls) == ["ListObjectsV2"] + ["PutObject"] * first.cards
        write_back(engine, ctx, "battingcard", 1)
        calls.clear()
        again = make_pngs(engine, store, lambda: pool, templates, ctx, "battingcard", 1)
    assert again.current == again.cards and calls == []


def test_a_slow_store_holds_rendering_back_and_loses_nothing(tmp_path, templates, monkeypatch):
    engine = seed_small_demo(f"sqlite:///{tmp_path / 'cards.db'}", players=12)
    monkeypatch.setattr(produce, "IO_THREADS", 2)
    monkeypatch.setattr(produce, "MAX_UPLOADS_IN_FLIGHT", 3)
    most = 0
    collect = produce._Step._collect

    def watched(self, uploads, *, wait):
        nonlocal most
        pending = collect(self, uploads, wait=wait)
        most = max(most, len(pending))
        return pending

    monkeypatch.setattr(produce._Step, "_collect", watched)
    store = SlowStore(tmp_path / "store")
    ctx = Context(templates.version, store.public_base_url)
    with BrowserPool(find_chromium(), templates.shell(), pages=4) as pool:
        report = make_pngs(engine, store, lambda: pool, templates, ctx, "battingcard", 1)
    assert report.failed == 0 and report.rendered == report.uploaded == report.cards > 0
    assert most <= 3
    with engine.connect() as conn:
        entry = schema.card_render
        statuses = conn.execute(
            sa.select(entry.c.status, sa.func.count()).group_by(entry.c.status)
        ).all()
    assert statuses == [(state.STORED, report.cards)]
