"""`pd-pipeline why`: one card's image explained, for each state a card can be in, through the
command itself, against one small cardset rendered once for the whole module."""

import hashlib
import json
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from pd_pipeline import cli
from pd_pipeline.db import schema
from pd_pipeline.storage.keys import object_key
from pd_pipeline_tests.helpers import (
    add_variant,
    image_urls,
    memory_instance,
    move_chances,
    run_partition,
    seed_small_demo,
)
from pd_pipeline_tests.test_object_headers import fetch, make_public

pytestmark = pytest.mark.slow
CACHE_CONTROL = "public, max-age=120"


@dataclass
class Rendered:
    engine: sa.Engine
    env: dict[str, str]
    run_id: str
    bucket: str
    batting: list[int]  # rendered and settled, one per test that changes one
    bad: int  # failed: its chances sum to 113


@pytest.fixture(scope="module")
def rendered(s3_server, tmp_path_factory) -> Rendered:
    url = f"sqlite:///{tmp_path_factory.mktemp('why') / 'cards.db'}"
    env = {**s3_server.settings(), "PD_DATABASE_URL": url, "PD_CACHE_CONTROL": CACHE_CONTROL}
    engine = seed_small_demo(url, players=3)
    for variant in (101, 102, 103):  # enough batting cards for a test each
        add_variant(engine, variant=variant)
    bad = add_variant(engine, variant=777, shift=5.0)
    with pytest.MonkeyPatch.context() as mp, memory_instance() as instance:
        for key, value in env.items():
            mp.setenv(key, value)
        result = run_partition(instance)
    batting = sorted(i for i, u in image_urls(engine).items() if u)
    assert len(batting) >= 4 and bad not in batting
    bucket = env["PD_STORE"].removeprefix("s3://").rstrip("/")
    make_public(s3_server, bucket)
    return Rendered(engine, env, result.run_id, bucket, batting, bad)


@pytest.fixture
def card_env(rendered, monkeypatch) -> Rendered:
    for key, value in rendered.env.items():
        monkeypatch.setenv(key, value)
    return rendered


def why(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["why", *args])
    out, err = capsys.readouterr()
    return code, out, err


def why_json(capsys, *args: str) -> dict:
    code, out, err = why(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def set_url(engine: sa.Engine, card_id: int, url: str | None) -> None:
    table = schema.battingcard
    with engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == card_id).values(image_url=url))


def test_every_object_the_run_uploaded_is_served_with_the_configured_cache_control(card_env):
    # Shares this module's render (one run, to keep test time small); test_object_headers.py
    # covers the default and the store API.
    urls = [
        u for t in ("battingcard", "pitchingcard") for u in image_urls(card_env.engine, t).values()
    ]
    assert len([u for u in urls if u]) >= 5
    for url in filter(None, urls):  # the URLs as written to the rows, opened over plain HTTP
        status, headers, body = fetch(url)
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert headers["Cache-Control"] == CACHE_CONTROL, url
        assert url.endswith(f"?d={hashlib.sha256(body).hexdigest()[:10]}")


def test_a_card_no_run_has_read(card_env, capsys):
    new = add_variant(card_env.engine, variant=4242)  # a new variant of the first card's player
    with card_env.engine.connect() as conn:
        player_id = conn.scalar(
            sa.select(schema.battingcard.c.player_id).where(schema.battingcard.c.id == new)
        )
    found = why_json(capsys, "--player", str(player_id), "--variant", "4242")
    assert (found["card_type"], found["card_id"], found["url"]) == ("battingcard", new, None)
    assert found["ledger"] is None and found["run_url"] is None
    assert (found["state"], found["reason"], found["next"]) == ("unseen", "new", "render")
    assert found["object"] == {
        "key": object_key("battingcard", 1, player_id, 4242), "named_by_url": False,
        "exists": False, "content_type": None, "size": None, "matches_token": None,
        "problem": None,
    }  # fmt: skip
    assert found["partition"] == "cardset-001"
    assert "sensor" in found["when"] and "next tick" in found["when"]


def test_a_settled_card(card_env, capsys, monkeypatch):
    monkeypatch.setenv("PD_DAGSTER_UI_URL", "https://dagster.example.com/")
    card_id = card_env.batting[0]
    code, out, _ = why(capsys, "battingcard", str(card_id))
    assert code == 0
    url = image_urls(card_env.engine)[card_id]
    assert f"battingcard #{card_id}" in out and url in out
    assert "stored, inputs current" in out
    assert "image/png" in out and "bytes match the URL's token" in out
    assert f"https://dagster.example.com/runs/{card_env.run_id}" in out
    assert "settled: its URL shows its current image" in out and "nothing" in out
    found = why_json(capsys, "battingcard", str(card_id))
    assert found["ledger"]["run_id"] == found["run_id"] == card_env.run_id
    assert found["ledger"]["rendered_at"] and found["ledger"]["written_at"]
    assert found["object"]["exists"] and found["object"]["matches_token"] is True
    assert found["object"]["problem"] is None


def test_a_failed_card_shows_its_error(card_env, capsys):
    found = why_json(capsys, "battingcard", str(card_env.bad))
    assert (found["state"], found["reason"], found["next"]) == ("failed", "failed", "wait")
    assert found["url"] is None and found["ledger"]["status"] == "failed"
    assert "sum" in found["ledger"]["error"] and found["ledger"]["inputs_current"]
    assert "data changes" in found["when"]
    _, out, _ = why(capsys, "battingcard", str(card_env.bad))
    assert found["ledger"]["error"] in out


def test_a_card_whose_data_changed(card_env, capsys):
    card_id = card_env.batting[1]
    move_chances(card_env.engine, card_id)
    found = why_json(capsys, "battingcard", str(card_id))
    assert (found["state"], found["reason"], found["next"]) == ("stale", "data_changed", "render")
    ledger = found["ledger"]
    assert not ledger["inputs_current"] and ledger["input_hash"] != ledger["current_input_hash"]
    assert found["object"]["exists"] and found["object"]["matches_token"]  # the old image
    assert "sweep" in found["when"] and "nightly reconcile" in found["when"]


def test_a_url_someone_else_wrote(card_env, capsys):
    card_id = card_env.batting[2]
    set_url(card_env.engine, card_id, "https://elsewhere.example/cards/6342.png")
    found = why_json(capsys, "battingcard", str(card_id))
    assert (found["state"], found["reason"], found["next"]) == ("pending", "other_writer", "adopt")
    assert found["url"] == "https://elsewhere.example/cards/6342.png"
    # The URL names no object of ours: what is shown is the card's own, still there.
    assert found["object"]["named_by_url"] is False and found["object"]["exists"]


def test_a_card_whose_object_was_deleted(card_env, capsys, s3_server):
    card_id = card_env.batting[3]
    url = image_urls(card_env.engine)[card_id]
    key = url.split(f"/{card_env.bucket}/", 1)[1].partition("?")[0]
    s3_server.client().delete_object(Bucket=card_env.bucket, Key=key)
    found = why_json(capsys, "battingcard", str(card_id))
    assert found["state"] == "settled"  # as far as the rows and ledger tell
    assert found["object"]["exists"] is False and found["object"]["named_by_url"]
    assert found["object"]["problem"] == f"object {key} does not exist"
    assert "nightly reconcile (cron `0 3 * * *`, UTC)" in found["when"]
    assert "verify_objects" in found["when"]


def test_a_card_that_does_not_exist(card_env, capsys):
    code, _, err = why(capsys, "battingcard", "999999")
    assert code == 1 and "battingcard 999999 does not exist" in err
    code, _, err = why(capsys, "--player", "999999", "--variant", "0")
    assert code == 1 and "no card of player 999999 variant 0" in err
