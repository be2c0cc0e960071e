"""Security: card pages run no JavaScript and reach no network, the local store stays inside its
root, SQL is parameterised, and credentials never reach logs, events, metadata or the ledger."""

import contextlib
import io
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import Browser, Page

from pd_pipeline.db import schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.defs.resources import card_resources
from pd_pipeline.render.browser import SWAP, BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import CardPages
from pd_pipeline.settings import load
from pd_pipeline.storage.stores import LocalStore
from pd_pipeline_tests.helpers import image_urls, seed_small_demo
from pd_pipeline_tests.hostile import (
    DELETE,
    add_card,
    add_player,
    injections,
    open_browser,
    open_page,
    request_recorder,
)
from pd_pipeline_tests.services import postgres_database

DAGSTER = str(Path(sys.executable).with_name("dagster"))
# Would turn the card area red, if any script ran: an event handler, and a script in a frame.
RED = "rgb(255, 0, 0)"
SCRIPTS = (
    "<img src='data:,' onerror=\"document.getElementById('pd-frame-0').style.background="
    f"'{RED}'\"><iframe srcdoc=\"<script>parent.document.getElementById('pd-frame-0')"
    f".style.background='{RED}'</script>\"></iframe>"
)
# Transparent: its capture shows the frame's own background.
PROBE = '<div style="width:1200px;height:600px"></div>'


@pytest.fixture(scope="module")
def templates() -> CardPages:
    return CardPages()


@pytest.fixture
def server():
    with request_recorder() as recorder:
        yield recorder


# ---- card pages: no JavaScript, no network ----
# Raw, unescaped markup (as if escaping failed), rendered by the pool in a shell without its
# content security policy: the renderer's own protections alone. Then the policy alone.

CSP = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n?')


class BareDesign(CardPages):
    """The shipped design, its shell without the content security policy."""

    def shell(self, frames: int = 1) -> str:
        shell = super().shell(frames)
        assert CSP.search(shell)
        return CSP.sub("", shell)


@pytest.fixture(scope="module")
def bare_design() -> BareDesign:
    return BareDesign()


@pytest.fixture(scope="module")
def pool(bare_design) -> Iterator[BrowserPool]:
    """A card renderer (one page of one frame, so each card follows the last one on it)."""
    with BrowserPool(find_chromium(), bare_design, pages=1, tile=1) as renderer:
        yield renderer


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with open_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def open_bare_page(browser, bare_design) -> Page:
    return open_page(browser, bare_design)


def _pixel(png: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").getpixel(xy)


def _scripts_run(page: Page) -> bool:
    page.evaluate(SWAP, [SCRIPTS])
    page.wait_for_timeout(300)
    page.evaluate(SWAP, [PROBE])
    frame = "document.getElementById('pd-frame-0')"
    return page.evaluate(f"getComputedStyle({frame}).backgroundColor") == RED


def _loads(server) -> str:
    """The injections that load something. The others, a refresh (navigates) and a preconnect
    (opens a socket), no content policy governs: the renderer stops them, see below."""
    loads = injections(server.url)
    return "".join(v for k, v in loads.items() if k not in ("refresh", "preconnect"))


def _fetched(page: Page, markup: str, server) -> set[str]:
    page.evaluate(SWAP, [markup])
    page.wait_for_timeout(1000)
    return set(server.paths)


@pytest.mark.slow
def test_card_pages_run_no_javascript(pool, open_bare_page):
    pool.render(SCRIPTS)
    time.sleep(0.3)  # the handlers would have run by now
    assert _pixel(pool.render(PROBE), (600, 300)) == (255, 255, 255)
    assert _scripts_run(open_bare_page)  # with JavaScript on, the same markup does run


@pytest.mark.slow
def test_card_pages_reach_no_network(pool, open_bare_page, server):
    # Whatever becomes of the card (a refresh navigates its page away), nothing is fetched.
    list(pool.render_many([(0, "".join(injections(server.url).values()))]))
    time.sleep(0.5)  # any request would have arrived by now
    assert (server.paths, server.connections) == ([], 0)
    # With the network on, the same markup fetches.
    fetched = _fetched(open_bare_page, _loads(server), server)
    assert {"/img.png", "/link.css", "/css-url.png", "/iframe.html"} <= fetched


@pytest.mark.slow
def test_the_shell_policy_alone_stops_scripts_and_fetches(browser, templates, server):
    page = open_page(browser, templates)  # JavaScript and network on
    assert not _scripts_run(page)
    assert _fetched(page, _loads(server), server) == set()


# ---- the local store stays inside its root ----


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the store's root that nothing may ever be written to."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def _store_with(tmp_path: Path, outside: Path, link: str | None) -> LocalStore:
    """A store whose root has `link` (a path in it) symlinked to `outside`."""
    root = tmp_path / "root"
    root.mkdir()
    if link:
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        target = outside / "target.png" if link.endswith(".png") else outside
        (root / link).symlink_to(target)
    return LocalStore(root, cache_control="no-cache")


@pytest.mark.parametrize(
    ("link", "key"),
    [
        (None, "../escape.png"),
        (None, "cards/../../escape.png"),
        (None, "/{outside}/absolute.png"),
        ("linked", "linked/escape.png"),  # a folder in the root that points outside
        (".meta", "cards/x.png"),  # the metadata tree points outside
        ("cards/x.png", "cards/x.png"),  # the object itself is a link to a file outside
    ],
)
def test_local_store_refuses_keys_that_leave_its_root(tmp_path, outside, link, key):
    store = _store_with(tmp_path, outside, link)
    key = key.format(outside=outside)
    with pytest.raises(ValueError, match="outside the store root"):
        store.put(key, b"png", sha256="0" * 64, input_hash="0" * 64)
    assert list(outside.iterdir()) == []
    (outside / "target.png").write_bytes(b"secret")  # reads must not reach it either
    with pytest.raises((ValueError, FileNotFoundError)):
        store.get(key)
    with contextlib.suppress(ValueError):  # refused, or nothing there: never the outside file
        assert store.head(key) is None


# ---- credentials: from the environment only, never copied into config ----


def test_resources_hold_no_credentials_only_where_to_find_them(monkeypatch):
    secret = f"planted-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", secret)
    monkeypatch.setenv("PD_DATABASE_URL", f"postgresql://cards:{secret}@db.example/cards")
    resources = card_resources(load())
    s3 = resources["card_store"].s3
    assert (s3.aws_access_key_id, s3.aws_secret_access_key, s3.aws_session_token) == (None,) * 3
    # What Dagster shows in its UI and stores with runs: variable names, not values.
    config = repr({name: resource.model_dump() for name, resource in resources.items()})
    assert secret not in config and "PD_DATABASE_URL" in config


# ---- a real CI run (the CLI, PostgreSQL, S3): SQL stays data, credentials stay secret ----

DROP_PLAYER = "Robert'); DROP TABLE player;--"
DROP_POSITIONS = "x'; DROP TABLE cardposition; --"


@dataclass
class CliRuns:
    """Two `render_pending_job` runs with planted credentials: one where a card fails, one
    whose bucket does not exist (every S3 upload fails)."""

    engine: sa.Engine
    secrets: tuple[str, ...]
    home: Path
    outputs: list[str]
    returncodes: list[int]
    renders: int  # the card named DROP_PLAYER, which renders
    fails: int  # the card named DROP_POSITIONS, whose ratings are broken
    counts: dict[str, int]  # rows per card table before the runs


def _execute(env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [DAGSTER, "job", "execute", "-m", "pd_pipeline", "-j", "render_pending_job"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.scalar(sa.select(sa.func.count()).select_from(table))
            for table in schema.metadata.sorted_tables
        }


@pytest.fixture(scope="module")
def cli_runs(s3_server, tmp_path_factory) -> Iterator[CliRuns]:
    secret, token, password = (f"planted-{kind}-{uuid.uuid4().hex}" for kind in "stp")
    with postgres_database() as url:
        url = sa.make_url(url).set(password=password).render_as_string(hide_password=False)
        engine = seed_small_demo(url, players=2)  # the server trusts: any password works
        renders = add_card(engine, "battingcard", add_player(engine, p_name=DROP_PLAYER))
        broken = add_player(engine, p_name=DROP_POSITIONS)
        fails = add_card(engine, "battingcard", broken, ratings={"R": DELETE})
        counts = _counts(engine)
        home = tmp_path_factory.mktemp("dagster_home")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PD_", "AWS_"))},
            "DAGSTER_HOME": str(home), "PD_DATABASE_URL": url, "PD_RENDER_PAGES": "2",
            "PD_STORE": f"s3://{s3_server.new_bucket()}/",
            "PD_S3_ENDPOINT_URL": s3_server.endpoint_url, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "pd-test", "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": token,
        }  # fmt: skip
        first = _execute(env)
        add_card(engine, "battingcard", add_player(engine, p_name="Pending Upload"))
        second = _execute({**env, "PD_STORE": f"s3://missing-{uuid.uuid4().hex[:12]}/"})
        yield CliRuns(
            engine, (secret, token, password), home,
            [r.stdout + r.stderr for r in (first, second)],
            [r.returncode for r in (first, second)], renders, fails, counts,
        )  # fmt: skip
        engine.dispose()


@pytest.mark.slow
@pytest.mark.heavy
def test_sql_in_names_is_data_not_code(cli_runs):
    engine = cli_runs.engine
    assert _counts(engine)["cardposition"] == cli_runs.counts["cardposition"]
    assert _counts(engine)["player"] == cli_runs.counts["player"] + 1  # the second run's card
    with engine.connect() as conn:
        (card,) = load_cards(conn, "battingcard", card_ids=[cli_runs.renders])
    assert card.inputs["player"]["name"] == DROP_PLAYER
    assert image_urls(engine)[cli_runs.renders]
    error = _ledger_errors(engine)[cli_runs.fails]
    assert repr(DROP_POSITIONS) in error and "ratings.R is missing" in error


def _ledger_errors(engine: sa.Engine) -> dict[int, str]:
    ledger = schema.card_render
    query = sa.select(ledger.c.card_id, ledger.c.error).where(ledger.c.error.is_not(None))
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def _event_log(home: Path) -> str:
    """Every event of every run, as the instance stores them."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return "\n".join(
            dg.serialize_value(event)
            for run in instance.get_runs()
            for event in instance.all_logs(run.run_id)
        )


def _files(home: Path) -> bytes:
    """Every byte under DAGSTER_HOME: run and event storage, compute logs, anything else."""
    return b"\n".join(path.read_bytes() for path in sorted(home.rglob("*")) if path.is_file())


@pytest.mark.slow
def test_planted_credentials_reach_no_output_event_or_ledger(cli_runs):
    assert cli_runs.returncodes[0] != 0 and cli_runs.returncodes[1] != 0
    first, second = cli_runs.outputs
    errors = _ledger_errors(cli_runs.engine)
    sinks = {
        "CLI output": "\n".join(cli_runs.outputs),
        "event log": _event_log(cli_runs.home),
        "DAGSTER_HOME files": _files(cli_runs.home).decode(errors="replace"),
        "ledger errors": "\n".join(errors.values()),
    }
    # Each sink holds the runs' failures: the search reads what the runs wrote.
    label = f"battingcard #{cli_runs.fails}"
    assert label in first and "NoSuchBucket" in second
    for name in ("event log", "DAGSTER_HOME files"):
        assert label in sinks[name] and "NoSuchBucket" in sinks[name], name
    # (The missing bucket stops the second run at its first listing, before any card: its
    # error is the run's, not a card's. The ledger holds the first run's card failure.)
    assert label in sinks["ledger errors"]
    for name, text in sinks.items():
        for secret in cli_runs.secrets:
            assert secret not in text, f"a planted credential is in the {name}"
