"""Hostile and broken card data for the tests, and a loopback HTTP server that counts requests.

Cards are added to a seeded database the way another tool would: plain INSERTs of the columns
the schema names, copying a valid seeded card so that only the change under test is wrong.
"""

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import Browser, Page, sync_playwright

from pd_pipeline.db import schema
from pd_pipeline.model import RESULTS
from pd_pipeline.render.browser import SWAP
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.fonts import ORIGIN
from pd_pipeline.render.pages import CardPages

DELETE = object()  # a ratings side given as DELETE has no row at all


def add_cardset(engine: sa.Engine, cardset_id: int, name: str) -> int:
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.cardset).values(id=cardset_id, name=name))
    return cardset_id


def add_rarity(engine: sa.Engine, name: str, color: str) -> int:
    with engine.begin() as conn:
        query = sa.insert(schema.rarity).values(value=9, name=name, color=color)
        return conn.execute(query.returning(schema.rarity.c.id)).scalar_one()


def add_player(engine: sa.Engine, **values: Any) -> int:
    """A copy of the first seeded player with `values` (p_name, mlbclub, cardset_id, ...)."""
    p = schema.player
    with engine.begin() as conn:
        base = conn.execute(sa.select(p).order_by(p.c.player_id).limit(1)).mappings().one()
        row = {k: v for k, v in base.items() if k != "player_id"} | values
        return conn.execute(sa.insert(p).values(row).returning(p.c.player_id)).scalar_one()


def add_card(
    engine: sa.Engine,
    card_type: str,
    player_id: int,
    *,
    variant: int = 0,
    fields: dict[str, Any] | None = None,
    ratings: dict[str, Any] | None = None,
) -> int:
    """A copy of the first seeded card of `card_type` (row and both ratings sides) for
    `player_id`. `fields` overrides card columns; `ratings` maps a side ("L"/"R") to column
    overrides, or to DELETE to leave that side out."""
    card, ratings_table = schema.CARD_TABLES[card_type], schema.RATINGS_TABLES[card_type]
    fk = ratings_table.c[f"{card_type}_id"]
    ratings = ratings or {}
    with engine.begin() as conn:
        base = conn.execute(sa.select(card).order_by(card.c.id).limit(1)).mappings().one()
        row = {k: v for k, v in base.items() if k not in ("id", "image_url")}
        row |= {"player_id": player_id, "variant": variant} | (fields or {})
        card_id = conn.execute(sa.insert(card).values(row).returning(card.c.id)).scalar_one()
        sides = conn.execute(sa.select(ratings_table).where(fk == base["id"])).mappings().all()
        for side in sides:
            change = ratings.get(side["vs_hand"], {})
            if change is DELETE:
                continue
            values = {k: v for k, v in side.items() if k != "id"} | {fk.name: card_id} | change
            conn.execute(sa.insert(ratings_table).values(values))
    return card_id


def add_fielding(engine: sa.Engine, player_id: int, **values: Any) -> None:
    row = {"player_id": player_id, "variant": 0, "position": "SS", "range": 2, "error": 10}
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.cardposition).values(row | values))


def base_side(engine: sa.Engine, card_type: str, side: str) -> dict[str, float]:
    """The first seeded card's chances on one side: for edits that must keep the sum at 108."""
    card, ratings = schema.CARD_TABLES[card_type], schema.RATINGS_TABLES[card_type]
    first = sa.select(card.c.id).order_by(card.c.id).limit(1).scalar_subquery()
    query = sa.select(ratings).where(
        ratings.c[f"{card_type}_id"] == first, ratings.c.vs_hand == side
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().one()
    return {k: row[k] for k in RESULTS[card_type]}


class _Recorder(http.server.BaseHTTPRequestHandler):
    def _record(self) -> None:
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()

    do_GET = do_POST = do_HEAD = _record

    def log_message(self, *args: Any) -> None:  # quiet: the test reads `paths`
        pass


class RecordingServer(http.server.ThreadingHTTPServer):
    """Counts connections too: a preconnect opens one and sends no request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.paths: list[str] = []
        self.connections = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True


@contextlib.contextmanager
def request_recorder() -> Iterator[RecordingServer]:
    """An HTTP server on 127.0.0.1: `paths` lists the requests it got, `connections` counts
    every connection, `url` is its base."""
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def injections(base_url: str) -> dict[str, str]:
    """Markup that would reach `base_url` (or run script) if a page ever parsed it as HTML, by
    name; each asks for a path of its own."""
    return {
        "img": f"<img src={base_url}/img.png onerror=document.title='pwned'>",
        "link": f"<link rel=stylesheet href={base_url}/link.css>",
        "import": f"<style>@import url({base_url}/import.css);</style>",
        "css_url": f'<div style="background:url({base_url}/css-url.png)">bg</div>',
        "font": f"<style>@font-face{{font-family:x;src:url({base_url}/font.woff2)}}"
        "b{font-family:x}</style><b>f</b>",
        "iframe": f"<iframe src={base_url}/iframe.html></iframe>",
        "svg_image": f"<svg><image href={base_url}/svg.png width=9 height=9 /></svg>",
        "srcset": f"<img srcset='{base_url}/srcset.png 1x'>",
        "object": f"<object data={base_url}/object.bin></object>",
        "embed": f"<embed src={base_url}/embed.bin>",
        "video": f"<video poster={base_url}/poster.png></video>",
        "input": f"<input type=image src={base_url}/input.png>",
        "table": f"<table background={base_url}/table.png><td>t</td></table>",
        "cursor": f"<p style='cursor:url({base_url}/cursor.png),auto'>c</p>",
        "prefetch": f"<link rel=prefetch href={base_url}/prefetch.js>",
        "preload": f"<link rel=preload as=image href={base_url}/preload.png>",
        "preconnect": f"<link rel=preconnect href={base_url}>",
        "refresh": f"<meta http-equiv=refresh content='0;url={base_url}/refresh'>",
    }


@contextlib.contextmanager
def open_browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium())
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, design: CardPages, shell: str | None = None) -> Page:
    """A card shell (the design's, by default) in a page with JavaScript and network ON: what
    card markup does when nothing but its own escaping protects it. The design's files and
    fonts are served as the renderer serves them."""
    page = browser.new_page(viewport={"width": 1200, "height": 600})

    def serve(route) -> None:
        found = design.resource(route.request.url[len(ORIGIN) :].split("?")[0])
        if found is None:
            route.abort()
        else:
            route.fulfill(body=found[0], content_type=found[1])

    page.route(f"{ORIGIN}/**", serve)
    page.set_content(shell or design.shell())
    return page


# Every element of the card's frame as tag[attribute names], every style attribute there, the
# page's title and the name's text.
_DOM = """() => ({
  title: document.title,
  name: document.querySelector('#pd-frame-0 .name').textContent,
  outline: [...document.querySelectorAll('#pd-frame-0 *')].map(
    e => `${e.localName}[${[...e.attributes].map(a => a.name).sort()}]`),
  styles: [...document.querySelectorAll('#pd-frame-0 [style]')].map(e => e.getAttribute('style')),
})"""


def card_dom(page: Page, body: str) -> dict[str, Any]:
    """Swap a card's markup into the page, as the renderer does (fonts loaded), and describe
    the page."""
    page.evaluate(SWAP, [body])
    return page.evaluate(_DOM)


def platform_fonts(page: Page, selector: str) -> list[dict[str, Any]]:
    """The fonts Chromium drew an element's text with, and how many glyphs each (over CDP)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})
        return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    finally:
        cdp.detach()
