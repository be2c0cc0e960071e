"""What every uploaded object carries over HTTP (Cache-Control), and uploads under each of boto's
checksum modes, read back from the S3 server itself, not through our code. (That a real run's
objects carry PD_CACHE_CONTROL is tested on the render test_why.py makes once.)"""

import hashlib
import json
import urllib.request
from email.message import Message
from pathlib import Path

import pytest

from pd_pipeline.settings import Settings
from pd_pipeline.storage.keys import object_key, public_url
from pd_pipeline.storage.stores import LocalStore
from pd_pipeline_tests.helpers import open_store

PNG_BYTES = (Path(__file__).parent / "reference" / "battingcard.png").read_bytes()
CHECKSUM_MODES = ("when_supported", "when_required")


def make_public(s3_server, bucket: str) -> None:
    """A bucket policy letting anyone read objects, as a CDN origin or public bucket has."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }  # fmt: skip
    s3_server.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def fetch(url: str) -> tuple[int, Message, bytes]:
    """A plain anonymous HTTP request, as a browser or CDN makes it."""
    with urllib.request.urlopen(url) as response:
        return response.status, response.headers, response.read()


@pytest.mark.parametrize("response_mode", CHECKSUM_MODES)
@pytest.mark.parametrize("request_mode", CHECKSUM_MODES)
def test_uploads_confirm_under_each_checksum_mode(
    s3_env, s3_server, monkeypatch, request_mode, response_mode
):
    # botocore reads these itself when a client is made; the store's client is made after.
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", request_mode)
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", response_mode)
    store = open_store()
    heads = []
    store.client.meta.events.register("before-call.s3.HeadObject", lambda **kw: heads.append(1))
    key = object_key("battingcard", 1, 7, 0)
    sha = hashlib.sha256(PNG_BYTES).hexdigest()
    md5 = hashlib.md5(PNG_BYTES, usedforsecurity=False).hexdigest()

    confirmed = store.put(key, PNG_BYTES, sha256=sha, input_hash="i" * 64)

    # Confirmed by the PUT's ETag alone (the MD5 of the bytes), with no HEAD.
    assert confirmed is not None and confirmed.md5 == md5 and confirmed.size == len(PNG_BYTES)
    assert heads == []
    assert store.get(key) == PNG_BYTES
    make_public(s3_server, s3_env["bucket"])
    status, headers, body = fetch(public_url(store.public_base_url, key, sha))
    assert status == 200 and body == PNG_BYTES and headers["ETag"].strip('"') == md5
    default = Settings.model_fields["cache_control"].default
    assert headers["Cache-Control"] == default == "public, max-age=300"


def test_the_local_store_records_cache_control_with_each_object(tmp_path):
    store = LocalStore(tmp_path, cache_control="public, max-age=60")
    key = object_key("battingcard", 1, 7, 0)
    store.put(key, PNG_BYTES, sha256="s" * 64, input_hash="i" * 64)
    meta = json.loads((tmp_path / ".meta" / f"{key}.json").read_text())
    assert meta["cache_control"] == "public, max-age=60"
