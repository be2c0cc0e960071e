"""A database the old renderer filled: its images are adopted, not made again. The first run
renders only the rows without a URL (and the one whose object is gone) and writes no other URL;
after a ratings change on one adopted card, only that card is rendered and its URL replaced."""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.render.png import encode_png
from pd_pipeline_tests.helpers import (
    image_urls,
    materializations,
    move_chances,
    open_store,
    run_partition,
    sensor_tick,
)

pytestmark = pytest.mark.slow


def _old_renderer_png(shade: int) -> bytes:
    """What the old renderer made: a valid 1200x600 PNG, in a design of its own."""
    pixels = np.full((600, 1200, 3), (shade, 90, 160), dtype=np.uint8)
    return encode_png(pixels, 1200, 600)


@pytest.fixture
def old_site(tmp_path):
    """The old renderer's images served over HTTP on loopback, as a CDN outside the store."""
    root = tmp_path / "old-site"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _set_url(engine: sa.Engine, card_id: int, url: str) -> None:
    table = schema.battingcard
    with engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == card_id).values(image_url=url))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_existing_database_keeps_its_images_until_a_card_changes(
    seeded, s3_env, s3_server, old_site, monkeypatch
):
    monkeypatch.setenv("PD_ADOPT_OUTSIDE", "http")
    engine, instance = seeded.engine, seeded.instance
    ids = sorted(image_urls(engine))
    in_store, over_http, gone = ids[:4], ids[4:7], ids[7]
    base = open_store().public_base_url
    s3, bucket = s3_server.client(), s3_env["bucket"]
    for n, card_id in enumerate(in_store):
        key = f"legacy/battingcard-{card_id}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=_old_renderer_png(n * 40),
                      ContentType="image/png")  # fmt: skip
        _set_url(engine, card_id, f"{base}/{key}")
    root, site = old_site
    # The old renderer's CDN is not the store's host: it is named as one to fetch from.
    monkeypatch.setenv("PD_ADOPT_HTTP_HOSTS", site.removeprefix("http://"))
    for n, card_id in enumerate(over_http):
        (root / f"{card_id}.png").write_bytes(_old_renderer_png(200 + n))
        _set_url(engine, card_id, f"{site}/{card_id}.png?v=3")
    _set_url(engine, gone, f"{base}/legacy/battingcard-{gone}.png")  # its object is gone
    before = image_urls(engine)
    nulls = [i for i, url in before.items() if url is None]

    first = run_partition(instance)
    assert first.success, [
        (c.check_name, c.metadata) for c in first.get_asset_check_evaluations() if not c.passed
    ]
    made = materializations(first, "battingcard_pngs")
    assert made["adopted"] == len(in_store) + len(over_http)
    assert made["rendered"] == len(nulls) + 1  # the NULL rows, and the one whose object is gone
    after = image_urls(engine)
    for card_id in in_store + over_http:
        assert after[card_id] == before[card_id], "an adopted URL was rewritten"
    for card_id in [*nulls, gone]:
        assert "/cards/cardset-001/" in after[card_id]
    entry = schema.card_render
    with engine.connect() as conn:
        adopted = set(conn.scalars(sa.select(entry.c.card_id).where(entry.c.status == "adopted")))
    assert adopted == set(in_store + over_http)

    # One adopted card's ratings change: that card alone is rendered, in our design.
    changed = in_store[1]
    move_chances(engine, changed)
    sensor_tick(instance)  # its sweep finds the change
    second = run_partition(instance)
    assert second.success
    assert materializations(second, "battingcard_pngs")["rendered"] == 1
    latest = image_urls(engine)
    assert "/cards/cardset-001/" in latest[changed]
    assert {i: u for i, u in latest.items() if i != changed} == {
        i: u for i, u in after.items() if i != changed
    }
