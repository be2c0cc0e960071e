import hashlib

import pytest
from dagster_aws.s3 import S3Resource

from pd_pipeline.defs.resources import CardStore
from pd_pipeline.storage.keys import cardset_id_of, object_key, partition_key, public_url
from pd_pipeline.storage.stores import LocalStore


def test_keys_follow_the_production_layout():
    assert object_key("battingcard", 12, 6557, 415156387) == (
        "cards/cardset-012/player-6557/v415156387/battingcard.png"
    )
    assert partition_key(1) == "cardset-001" and partition_key(1234) == "cardset-1234"
    assert cardset_id_of("cardset-012") == 12 and cardset_id_of("cardset-1234") == 1234
    with pytest.raises(ValueError, match="not a cardset partition key"):
        cardset_id_of("cardset-12x")


def test_url_token_changes_exactly_with_the_bytes():
    key = object_key("pitchingcard", 1, 2, 0)
    a, b = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    assert public_url("https://cdn.example/", key, a) == f"https://cdn.example/{key}?d={a[:10]}"
    assert public_url("https://cdn.example", key, a) != public_url("https://cdn.example", key, b)


def _round_trip(store) -> None:
    key = object_key("battingcard", 1, 7, 0)
    assert store.head(key) is None
    confirmed = store.put(key, b"\x89PNG fake", sha256="s" * 64, input_hash="i" * 64)
    head = store.head(key)
    assert confirmed == head  # what put reports is what the store holds
    assert (head.size, head.content_type, head.sha256, head.input_hash) == (
        9, "image/png", "s" * 64, "i" * 64,
    )  # fmt: skip
    assert store.get(key) == b"\x89PNG fake"


def test_local_store_round_trip(tmp_path):
    store = LocalStore(tmp_path / "store", cache_control="no-cache")
    _round_trip(store)
    assert store.public_base_url == (tmp_path / "store").resolve().as_uri()


def test_local_store_cannot_write_outside_its_root(tmp_path):
    store = LocalStore(tmp_path / "store", cache_control="no-cache")
    for key in ("../escape.png", "cards/../../escape.png", "/etc/passwd"):
        with pytest.raises(ValueError, match="outside the store root"):
            store.put(key, b"x", sha256="s", input_hash="i")
    assert not (tmp_path / "escape.png").exists()


def test_s3_store_round_trip_on_a_real_s3_server(s3_env, s3_server):
    resource = CardStore(
        location=f"s3://{s3_env['bucket']}/some/prefix",
        s3=S3Resource(endpoint_url=s3_server.endpoint_url),
    )
    store = resource.open()
    _round_trip(store)
    key = object_key("battingcard", 1, 7, 0)
    listed = s3_server.client().list_objects_v2(Bucket=s3_env["bucket"])["Contents"]
    assert [o["Key"] for o in listed] == [f"some/prefix/{key}"]
    assert store.public_base_url == f"{s3_server.endpoint_url}/{s3_env['bucket']}/some/prefix"


def test_s3_public_base_defaults_to_the_bucket_url(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    store = CardStore(location="s3://my-cards", s3=S3Resource()).open()
    assert store.public_base_url == "https://my-cards.s3.eu-west-2.amazonaws.com"
