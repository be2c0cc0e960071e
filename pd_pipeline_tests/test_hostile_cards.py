"""Hostile and broken card data through the real job, on SQLite and PostgreSQL.

Every card either renders (its text escaped, legible in the shipped fonts, its URL written) or
fails alone with a CardDataError naming the card and the field; no card page reaches the network.
"""

import contextlib
import copy
import dataclasses
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from markupsafe import escape
from playwright.sync_api import Page

from pd_pipeline.db.cards import load_cards
from pd_pipeline.model import CARD_TYPES, Card
from pd_pipeline.render.pages import CardPages
from pd_pipeline.render.validate import CardDataError, validate
from pd_pipeline.render.view import TEXT_MAX
from pd_pipeline.storage.keys import object_key
from pd_pipeline_tests.helpers import (
    assert_url_opens_its_png,
    image_urls,
    ledger_failures,
    memory_instance,
    open_store,
    run_partition,
    seed_small_demo,
)
from pd_pipeline_tests.hostile import (
    DELETE,
    RecordingServer,
    add_card,
    add_cardset,
    add_fielding,
    add_player,
    add_rarity,
    base_side,
    card_dom,
    injections,
    open_browser,
    open_page,
    platform_fonts,
    request_recorder,
)
from pd_pipeline_tests.services import postgres_database

pytestmark = pytest.mark.slow
BIG_CARDSET = 1000  # past three digits: partition key cardset-1000
MAX_VARIANT = 2**63 - 1
LATIN_END = 0x250  # Bebas Neue and Inter cover Latin up to here (and more: Greek, Cyrillic)
# The only inline styles a card has: its rarity colours and its name's size.
SAFE_STYLE = re.compile(r"--rarity: #[0-9a-f]{3,6}; --rarity-ink: #[0-9a-f]{6}|font-size: \d+px")


@dataclass(frozen=True)
class Case:
    """A hostile card: the player's and card's columns, and what must come of it."""

    what: str
    player: dict[str, Any] = field(default_factory=dict)
    card_type: str = "battingcard"
    variant: int = 0
    fields: dict[str, Any] = field(default_factory=dict)
    ratings: dict[str, Any] = field(default_factory=dict)
    fielding: dict[str, Any] | None = None
    fails: tuple[str, str] | None = None  # (field, problem) the CardDataError must name
    script: bool = False  # text no Latin font has: it must come out in the shipped fonts


def hostile_cases(engine: sa.Engine, server: str) -> list[Case]:
    inject = injections(server)
    strikeouts = {t: base_side(engine, t, "L")["strikeout"] for t in CARD_TYPES}
    rarity = add_rarity(engine, "<b>MVP</b>", "red;}*{color:red")  # 16: the column's width
    return [
        Case("script tag", {"p_name": "<script>document.title='pwned'</script>Script Kid"}),
        Case("img at the local server", {"p_name": inject["img"], "mlbclub": inject["srcset"]}),
        Case("stylesheet links", {"p_name": inject["link"], "mlbclub": inject["import"]}),
        Case("CSS url() and fonts", {"p_name": inject["font"], "mlbclub": inject["css_url"]}),
        Case("frames and objects", {"p_name": inject["iframe"], "mlbclub": inject["object"]}),
        Case("svg, video, prefetch", {"p_name": inject["svg_image"], "mlbclub": inject["video"]}),
        Case("closing tags", {"p_name": '"></h1></main><p class="name">Fake', "pos_1": "<svg>"}),
        Case("SQL in the name", {"p_name": "Robert'); DROP TABLE player;--"}),
        Case(
            "Arabic, right to left", {"p_name": "محمد عبد الرحمن", "mlbclub": "الهلال"}, script=True
        ),
        Case("Hebrew, right to left", {"p_name": "יוסי בן דוד", "mlbclub": "מכבי"}, script=True),
        Case("CJK", {"p_name": "大谷翔平 イチロー", "mlbclub": "読売ジャイアンツ"}, script=True),
        Case("Hangul", {"p_name": "류현진", "mlbclub": "한화 이글스"}, script=True),
        Case("emoji", {"p_name": "⚾🔥🐐⭐", "mlbclub": "🏆🧢"}, script=True),
        Case("bidi override", {"p_name": "\u202eRight To Left", "mlbclub": "\u202eTeam"}),
        Case("200-character name", {"p_name": ("Bartholomew Maximilian " * 10)[:200]}),
        Case("combining marks", {"p_name": "Z\u0337\u0322a\u0335\u0321l\u0336g\u0337o Jones"}),
        Case("CSS in the rarity colour", {"rarity_id": rarity}),
        Case("no rarity", {"rarity_id": None, "mlbclub": None, "pos_1": None}),
        Case("NULL card fields", fields=dict.fromkeys(("steal_low", "running", "hand", "bunting"))),
        Case("ratings vs LHP missing", ratings={"L": DELETE}, fails=("ratings.L", "is missing")),
        Case(
            "NULL chance",
            ratings={"R": {"homerun": None}},
            fails=("ratings.R.homerun", "is missing"),
        ),
        Case(
            "chances sum to 109",
            ratings={"L": {"strikeout": strikeouts["battingcard"] + 1}},
            fails=("ratings.L", "sums to 109, must be 108"),
        ),
        Case(
            "negative chance",
            ratings={"R": {"walk": -3}},
            fails=("ratings.R.walk", "is -3, must be >= 0"),
        ),
        Case(
            "huge chance",
            ratings={"L": {"triple": 1e300}},
            fails=("ratings.L.triple", "is 1e+300, must be <= 108"),
        ),
        Case(
            "infinite chance",
            ratings={"L": {"triple": math.inf}},
            fails=("ratings.L.triple", "finite"),
        ),
        Case(
            "average of 7.5", ratings={"R": {"avg": 7.5}}, fails=("ratings.R.avg", "must be <= 1")
        ),
        Case(
            "huge running", fields={"running": 2**31 - 1}, fails=("card.running", "must be <= 20")
        ),
        Case("negative steal", fields={"steal_low": -5}, fails=("card.steal_low", "must be >= 0")),
        Case("unknown hand", fields={"hand": "X"}, fails=("card.hand", "is 'X'")),
        Case(
            "fielding range 99", fielding={"range": 99}, fails=("fielding[0].range", "must be <= 9")
        ),
        Case("blank name", {"p_name": "   "}, fails=("player.name", "is missing")),
        Case("negative variant", variant=-1, fails=("variant", "is -1, must be >= 0")),
        Case(
            "pitching chances sum to 107",
            card_type="pitchingcard",
            ratings={"L": {"strikeout": strikeouts["pitchingcard"] - 1}},
            fails=("ratings.L", "sums to 107, must be 108"),
        ),
        Case(
            "hold of -999",
            card_type="pitchingcard",
            fields={"hold": -999},
            fails=("card.hold", ">= -20"),
        ),
        Case(
            "pitcher with CJK", {"p_name": "王建民", "mlbclub": "台灣"}, "pitchingcard", script=True
        ),
    ]


def insert(engine: sa.Engine, case: Case) -> tuple[str, int]:
    player = add_player(engine, cardset_id=BIG_CARDSET, **case.player)
    if case.fielding is not None:
        add_fielding(engine, player, **case.fielding)
    card_id = add_card(
        engine, case.card_type, player, variant=case.variant, fields=case.fields,
        ratings=case.ratings,
    )  # fmt: skip
    return case.card_type, card_id


@dataclass
class HostileRun:
    """A seeded database whose cardset 1000 holds the hostile cards, after one run of it."""

    engine: sa.Engine
    env: dict[str, str]
    cases: dict[tuple[str, int], Case]
    big_cards: dict[tuple[str, int], int]  # (card type, variant) -> id
    orphan: int  # a batting card whose player has no cardset
    result: dg.ExecuteInProcessResult
    server: RecordingServer

    @property
    def partition(self) -> set[tuple[str, int]]:
        return set(self.cases) | {(t, i) for (t, _), i in self.big_cards.items()}


@contextlib.contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'cards.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hostile(request, s3_server, tmp_path_factory) -> Iterator[HostileRun]:
    """Seeded once per database for the whole module: the runs are the slow part."""
    with (
        _database(request.param, tmp_path_factory.mktemp(request.param)) as url,
        request_recorder() as server,
        pytest.MonkeyPatch.context() as env,
    ):
        settings = {
            "PD_DATABASE_URL": url, **s3_server.settings(),
            "PD_RENDER_PAGES": "2",  # a small run: fewer pages start faster
        }  # fmt: skip
        for key, value in settings.items():
            env.setenv(key, value)
        engine = seed_small_demo(url, players=3)  # cards to copy, in cardset 1
        add_cardset(engine, BIG_CARDSET, "<i>Set</i> \u5343")
        cases = {insert(engine, case): case for case in hostile_cases(engine, server.url)}
        big = add_player(engine, p_name="Max Variant", cardset_id=BIG_CARDSET)
        big_cards = {
            (card_type, variant): add_card(engine, card_type, big, variant=variant)
            for card_type, variant in [
                ("battingcard", 0), ("battingcard", MAX_VARIANT), ("pitchingcard", MAX_VARIANT)
            ]
        }  # fmt: skip
        nobody = add_player(engine, p_name="Nobody", cardset_id=None)
        orphan = add_card(engine, "battingcard", nobody)
        with memory_instance() as instance:
            result = run_partition(instance, "cardset-1000")
        yield HostileRun(engine, settings, cases, big_cards, orphan, result, server)
        engine.dispose()


@pytest.fixture
def run(hostile, monkeypatch) -> HostileRun:
    """The module's run, with its settings in the environment again (tests start without)."""
    for key, value in hostile.env.items():
        monkeypatch.setenv(key, value)
    return hostile


def test_no_card_page_made_a_request(run):
    assert (run.server.paths, run.server.connections) == ([], 0)


def test_broken_cards_fail_alone_naming_card_and_field(run):
    expected = {key for key, case in run.cases.items() if case.fails}
    failed = {
        (card_type, card_id): error
        for card_type in CARD_TYPES
        for card_id, error in ledger_failures(run.engine, card_type).items()
    }
    assert set(failed) == expected  # nothing else of the partition failed
    for (card_type, card_id), error in failed.items():
        field_name, problem = run.cases[card_type, card_id].fails
        assert error.startswith(f"{card_type} #{card_id} (player "), error
        assert f": {field_name} " in error and problem in error, error
    # The check fails the run and names every broken card.
    named = " ".join(
        str(e.metadata["cards"].value)
        for e in run.result.get_asset_check_evaluations()
        if e.check_name == "all_cards_rendered" and not e.passed
    )
    assert all(f"#{card_id}" in named for _, card_id in expected)


def test_every_other_card_gets_a_url_that_opens_its_png(run):
    failing = {key for key, case in run.cases.items() if case.fails}
    urls = {t: image_urls(run.engine, t) for t in CARD_TYPES}
    for card_type, card_id in run.partition - failing:
        assert urls[card_type][card_id], f"{card_type} #{card_id} has no URL"
        assert_url_opens_its_png(urls[card_type][card_id])
    assert all(urls[card_type][card_id] is None for card_type, card_id in failing)
    assert urls["battingcard"][run.orphan] is None


def test_rendered_hostile_text_is_inert_text_in_the_shipped_fonts(run, tmp_path):
    """Each rendered hostile card's page, opened with JavaScript and network on: escaping alone
    keeps the text text (the page has exactly the elements of a plain card, and asks nothing
    of the network), and scripts Latin fonts lack come out in the shipped fonts, not boxes."""
    templates, store = CardPages(), open_store()
    with run.engine.connect() as conn, open_browser() as browser:
        page = open_page(browser, templates)
        for (card_type, card_id), case in run.cases.items():
            if case.fails:
                continue
            (card,) = load_cards(conn, card_type, card_ids=[card_id])
            assert_inert(page, templates, card, case)
            # Beside the test's files, to look at.
            key = object_key(card_type, BIG_CARDSET, card.player_id, card.variant)
            (tmp_path / f"{card_type}-{card_id}.png").write_bytes(store.get(key))
    assert run.server.paths == []


def assert_inert(page: Page, templates: CardPages, card: Card, case: Case) -> None:
    name = card.inputs["player"]["name"].strip()[:TEXT_MAX]
    body = templates.body(card)
    assert str(escape(name)) in body, case.what
    dom = card_dom(page, body)
    assert dom["title"] == "Paper Dynasty card" and dom["name"] == name, case.what
    assert all(SAFE_STYLE.fullmatch(style) for style in dom["styles"]), dom["styles"]
    if case.script:
        assert_in_shipped_fonts(page, ".name", name)
        assert_in_shipped_fonts(page, ".team", card.inputs["player"]["mlbclub"])
    plain_dom = card_dom(page, templates.body(plain(card)))
    assert dom["outline"] == plain_dom["outline"], f"{case.what}: elements of its own"


def assert_in_shipped_fonts(page: Page, selector: str, text: str) -> None:
    """Chromium drew the element's text in our fonts only, and no glyph of another script in
    the Latin ones: a box for a missing glyph is drawn by (and counted for) the primary font."""
    fonts = platform_fonts(page, selector)
    assert all(font["isCustomFont"] for font in fonts), fonts
    latin = sum(1 for char in text if ord(char) < LATIN_END)
    in_primary = sum(f["glyphCount"] for f in fonts if not f["familyName"].startswith("Noto"))
    assert in_primary <= latin, f"{text!r}: boxes for missing glyphs? {fonts}"


def plain(card: Card) -> Card:
    """The same card with plain words for every text the database gave it."""
    inputs = copy.deepcopy(card.inputs)
    player = inputs["player"]
    player.update(name="Plain", mlbclub="Team", positions=["P"] * len(player["positions"]))
    inputs["cardset"]["name"] = "Set"
    inputs["rarity"]["name"] = "Rare"
    return dataclasses.replace(card, inputs=inputs)


def test_big_cardset_ids_and_variants_work_end_to_end(run):
    for (card_type, variant), card_id in run.big_cards.items():
        url = image_urls(run.engine, card_type)[card_id]
        assert "/cards/cardset-1000/player-" in url, url
        assert f"/v{variant}/{card_type}.png?d=" in url, url
        assert_url_opens_its_png(url)


def test_a_card_without_cardset_is_found_and_named_not_ignored(run):
    with run.engine.connect() as conn:
        (card,) = load_cards(conn, "battingcard", no_cardset=True)
    assert card.card_id == run.orphan
    with pytest.raises(
        CardDataError, match=r"\(player \d+ 'Nobody', variant 0\): player\.cardset_id"
    ):
        validate(card)
