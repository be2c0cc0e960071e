"""Adoption over http (PD_ADOPT_OUTSIDE=http), against real HTTP servers on loopback: a PNG of the
card's size from an allowed host is adopted; any other scheme, a host not allowed, a redirect off
the allowed hosts, credentials, an oversized body and anything but a card PNG are refused, with
the rule that refused, and a refused server is never asked. One real run shows it end to end:
nothing of a local file reaches the logs, the ledger or `pd-pipeline why`."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import sqlalchemy as sa

from pd_pipeline import cli, settings
from pd_pipeline.db import schema
from pd_pipeline.images import fetch, foreign, produce
from pd_pipeline.images.plan import Work
from pd_pipeline.model import Card
from pd_pipeline.render.png import encode_png
from pd_pipeline_tests.helpers import image_urls, materializations, run_partition


def png(width: int = 1200, height: int = 600) -> bytes:
    """A valid PNG, of the card's size unless told."""
    return encode_png(np.full((height, width, 3), (30, 90, 160), dtype=np.uint8), width, height)


class Site:
    """An HTTP/1.0 server on loopback answering each GET from `routes` (path, query left out ->
    status, headers, body); it records every path it was asked for."""

    def __init__(self, delay: float = 0.0) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.asked: list[str] = []
        self.in_flight = self.most_in_flight = 0
        lock, site = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                with lock:
                    site.asked.append(self.path)
                    site.in_flight += 1
                    site.most_in_flight = max(site.most_in_flight, site.in_flight)
                time.sleep(delay)
                with lock:  # before answering: the client may ask again once it has the answer
                    site.in_flight -= 1
                status, headers, body = site.routes.get(self.path.partition("?")[0],
                                                        (404, {}, b""))  # fmt: skip
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None  # a client hanging up on a refused body
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        serve = lambda: self.server.serve_forever(poll_interval=0.05)  # noqa: E731 (quick stop)
        threading.Thread(target=serve, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def serve(self, path: str, body: bytes, kind: str = "image/png", length: bool = True) -> str:
        headers = {"Content-Type": kind, **({"Content-Length": str(len(body))} if length else {})}
        self.routes[path] = (200, headers, body)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        self.routes[path] = (status, {"Location": to, "Content-Length": "0"}, b"")
        return self.url(path)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites():
    """Two servers: `allowed` is in PD_ADOPT_HTTP_HOSTS, `other` is not."""
    allowed, other = Site(), Site()
    yield allowed, other
    allowed.stop()
    other.stop()


def _opened(tmp_path, **env: str):
    """The store and policy these settings give, as `pd-pipeline` opens them."""
    loaded = settings.load({"PD_STORE": str(tmp_path / "store"), "PD_ADOPT_OUTSIDE": "http",
                            **{f"PD_{k.upper()}": v for k, v in env.items()}})  # fmt: skip
    store = loaded.open_store()
    return store, loaded.card_policy(store)


def _confirm(opened, url: str) -> foreign.ForeignCheck:
    store, policy = opened
    card = Card("battingcard", 1, 6557, 0, 1, url, {})
    return foreign.confirm(store, Work(card, None, None, "cards/x.png", "0" * 64), policy)


@pytest.fixture
def opened(tmp_path, sites):
    return _opened(tmp_path, adopt_http_hosts=sites[0].host)


def test_a_card_png_on_an_allowed_host_is_adopted_and_redirects_among_them_followed(
    tmp_path, sites
):
    allowed, other = sites
    both = _opened(tmp_path, adopt_http_hosts=f"{allowed.host}, {other.host}")
    card = png()
    assert _confirm(both, allowed.serve("/cards/1.png", card) + "?v=3").size == len(card)
    # Relative, and to another allowed host; a 301 chain of both kinds.
    allowed.redirect("/old/1.png", "/cards/1.png")
    assert _confirm(both, allowed.url("/old/1.png")).size == len(card)
    other.serve("/moved/1.png", card)
    allowed.redirect("/r/1.png", other.url("/moved/1.png"), status=301)
    assert _confirm(both, allowed.redirect("/r/r/1.png", "/r/1.png", 308)).size == len(card)
    assert other.asked == ["/moved/1.png"]


def test_other_schemes_are_refused_and_no_file_is_read(opened, tmp_path):
    check = _confirm(opened, "file:///etc/hostname")
    assert check.problem == "file:///etc/hostname: scheme file is not fetched (only http and https)"
    assert check.rule == "scheme" and check.size is None
    # A local PNG of the card's size, which urlopen served as image/png: never adopted.
    (tmp_path / "card.png").write_bytes(png())
    assert _confirm(opened, (tmp_path / "card.png").as_uri()).rule == "scheme"
    for url in ("ftp://127.0.0.1/card.png", "data:image/png;base64,AAAA", "/card.png"):
        check = _confirm(opened, url)
        assert check.rule == "scheme" and "is not fetched (only http and https)" in check.problem


def test_a_host_not_allowed_is_refused_and_never_asked(opened, sites, tmp_path):
    allowed, other = sites
    check = _confirm(opened, other.serve("/cards/1.png", png()))
    assert check.problem == (
        f"host {other.host} is not in PD_ADOPT_HTTP_HOSTS (allowed: {allowed.host})"
    )
    assert check.rule == "host" and other.asked == []
    # The same server by another name; a name alone means ports 80 and 443 only.
    port = allowed.host.partition(":")[2]
    assert _confirm(opened, f"http://localhost:{port}/cards/1.png").rule == "host"
    bare = _opened(tmp_path, adopt_http_hosts="127.0.0.1")
    assert _confirm(bare, allowed.serve("/cards/1.png", png())).problem == (
        f"host {allowed.host} is not in PD_ADOPT_HTTP_HOSTS (allowed: 127.0.0.1)"
    )
    assert allowed.asked == []
    assert _confirm(opened, "http:///cards/1.png").problem.startswith("host (none) is not in")
    check = _confirm(opened, "http://[127.0.0.1/cards/1.png")
    assert check.rule == "url" and "not a URL" in check.problem


def test_a_redirect_off_the_allowed_hosts_is_refused(opened, sites):
    allowed, other = sites
    target = other.serve("/cards/1.png", png())
    start = allowed.redirect("/cards/1.png", target)
    check = _confirm(opened, start)
    assert check.problem == (
        f"redirect from {start} to {target} leaves the allowed hosts: {other.host} is not in "
        f"PD_ADOPT_HTTP_HOSTS (allowed: {allowed.host})"
    )
    assert check.rule == "redirect" and other.asked == []
    check = _confirm(opened, allowed.redirect("/to-file.png", "file:///etc/hostname"))
    assert check.problem == (
        f"redirect from {allowed.url('/to-file.png')} to file:///etc/hostname: scheme file is "
        "not fetched (only http and https)"
    )
    check = _confirm(opened, allowed.redirect("/loop.png", "/loop.png"))
    assert check.rule == "redirect" and "more than 5 redirects" in check.problem
    assert allowed.asked.count("/loop.png") == fetch.MAX_REDIRECTS + 1


def test_credentials_are_never_sent_nor_shown(opened, sites):
    allowed, _ = sites
    url = allowed.serve("/cards/1.png", png()).replace("://", "://old:s3cret@")
    check = _confirm(opened, url)
    assert check.rule == "credentials" and "s3cret" not in check.problem
    assert check.problem.startswith(f"http://***@{allowed.host}/cards/1.png")
    assert allowed.asked == []


def test_an_oversized_body_is_refused_with_or_without_its_length(opened, sites):
    allowed, _ = sites
    huge = png() + b"\0" * fetch.MAX_BYTES
    for length in (True, False):
        check = _confirm(opened, allowed.serve(f"/huge-{length}.png", huge, length=length))
        assert check.rule == "size", check
        assert "is more than 8,000,000 bytes, the most a card PNG may be" in check.problem


def test_anything_but_a_card_png_is_refused(opened, sites):
    allowed, _ = sites
    check = _confirm(opened, allowed.serve("/page.png", b"<html>hi</html>", kind="text/html"))
    assert check.rule == "content type"
    assert check.problem.endswith("answers Content-Type 'text/html', not 'image/png'")
    check = _confirm(opened, allowed.serve("/lies.png", b"<html>hi</html>"))
    assert check.rule == "not a card PNG" and "not a PNG" in check.problem
    check = _confirm(opened, allowed.serve("/small.png", png(600, 300)))
    assert check.rule == "not a card PNG" and "PNG is 600x300, expected 1200x600" in check.problem
    allowed.routes["/untyped.png"] = (200, {}, png())
    assert _confirm(opened, allowed.url("/untyped.png")).problem.endswith(
        "answers no Content-Type, not 'image/png'"
    )
    check = _confirm(opened, allowed.url("/gone.png"))
    assert check.problem == f"{allowed.url('/gone.png')} answers HTTP 404 Not Found"


def test_a_host_that_does_not_answer_is_refused_as_unreachable(tmp_path):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    check = _confirm(_opened(tmp_path, adopt_http_hosts=host), f"http://{host}/cards/1.png")
    assert check.rule == "unreachable"
    assert check.problem.startswith(f"http://{host}/cards/1.png could not be fetched: Connection")


def test_by_default_only_the_stores_public_host_is_allowed(tmp_path, sites):
    allowed, other = sites
    cdn = _opened(tmp_path, public_base_url=allowed.url("/new"))
    # Outside the store's base (the old renderer's folder on the same CDN): fetched there.
    assert _confirm(cdn, allowed.serve("/old/1.png", png())).size is not None
    check = _confirm(cdn, other.serve("/old/1.png", png()))
    assert check.problem == (
        f"host {other.host} is not in PD_ADOPT_HTTP_HOSTS (unset, so only the store's public "
        f"base host: {allowed.host})"
    )
    local = _opened(tmp_path)  # a folder's file:// base names no host
    assert _confirm(local, allowed.url("/old/1.png")).problem.endswith(
        "(unset, and the store's public base URL is no http(s) URL: no host is allowed)"
    )


def test_fetches_run_a_bounded_number_at_once(tmp_path):
    slow = Site(delay=0.1)
    try:
        opened = _opened(tmp_path, adopt_http_hosts=slow.host)
        url = slow.serve("/cards/1.png", png())
        many = 3 * fetch.AT_ONCE
        with ThreadPoolExecutor(many) as pool:
            checks = list(pool.map(lambda _: _confirm(opened, url), range(many)))
        assert all(c.problem is None for c in checks)
        assert 1 < slow.most_in_flight <= fetch.AT_ONCE  # 24 without the bound
    finally:
        slow.stop()


# ---- one real run: adopted, refused, and nothing of a local file anywhere ----


def _set_url(engine: sa.Engine, card_id: int, url: str) -> None:
    table = schema.battingcard
    with engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == card_id).values(image_url=url))


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_run_adopts_only_what_the_rules_allow(
    seeded, sites, tmp_path, monkeypatch, capsys
):  # fmt: skip
    allowed, other = sites
    monkeypatch.setenv("PD_ADOPT_OUTSIDE", "http")
    monkeypatch.setenv("PD_ADOPT_HTTP_HOSTS", allowed.host)
    monkeypatch.setattr(produce, "REFUSALS_LOGGED", 4)  # the fifth is only counted
    secret = tmp_path / "secret.txt"
    secret.write_text("pd-secret-8f2c1e\n")
    (tmp_path / "card.png").write_bytes(png())
    ids = sorted(image_urls(seeded.engine))
    urls = {
        ids[0]: allowed.serve("/1.png", png()),
        ids[1]: allowed.redirect("/2.png", "/1.png"),
        ids[2]: "file:///etc/hostname",
        ids[3]: secret.as_uri(),
        ids[4]: (tmp_path / "card.png").as_uri(),
        ids[5]: other.serve("/6.png", png()),
        ids[6]: allowed.redirect("/7.png", other.url("/6.png")),
    }
    for card_id, url in urls.items():
        _set_url(seeded.engine, card_id, url)

    result = run_partition(seeded.instance)
    assert result.success
    made = materializations(result, "battingcard_pngs")
    assert made["adopted"] == 2 and made["rendered"] == len(ids) - 2
    after = image_urls(seeded.engine)
    assert [after[i] == urls[i] for i in ids[:7]] == [True, True] + [False] * 5
    assert other.asked == []

    logs = [e.user_message for e in seeded.instance.all_logs(result.run_id)]
    said = "\n".join(logs)
    for told in (
        "file:///etc/hostname: scheme file is not fetched (only http and https)",
        f"{secret.as_uri()}: scheme file is not fetched",
        f"host {other.host} is not in PD_ADOPT_HTTP_HOSTS (allowed: {allowed.host})",
        "battingcard cardset-001 adoption: 7/7 URLs checked, 2 adopted, 5 refused",
        "5 URLs not adopted, by rule: 3 scheme, 1 host, 1 redirect (the first 4 are logged above)",
    ):
        assert told in said
    assert f"redirect from {urls[ids[6]]}" not in said
    entry = schema.card_render
    with seeded.engine.connect() as conn:
        errors = [e for e in conn.scalars(sa.select(entry.c.error)) if e]
    whys = []
    for card_id in ids[2:5]:
        assert cli.main(["why", "battingcard", str(card_id), "--json"]) == 0
        whys.append(json.loads(capsys.readouterr().out))
    for text in (said, "\n".join(errors), json.dumps(whys)):
        assert "pd-secret" not in text and "text/plain" not in text
