"""Where card PNGs live: a local folder (the embedded default) or an S3 bucket.

Each object carries the sha256 of its bytes and the hash of the render inputs it shows, so a HEAD
alone recognises an object a previous run already made (a render-cache hit). `put` returns the
object as the store confirms it, so an upload needs no HEAD of its own.

Every object is written with an explicit Cache-Control. A card's key is overwritten whenever the
card is rendered again, and only the `?d=` token of its URL changes, so a cache that ignores query
strings must not keep the old bytes long: the default allows five minutes.
"""

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

PNG = "image/png"
APNG = "image/apng"  # as Paper Dynasty serves its animated cards
CONTENT_TYPES = {".png": PNG, ".apng": APNG}


def content_type(key: str) -> str:
    """The Content-Type an object of this key is stored with: its image's, by extension."""
    return CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream")


# What a store raises when it cannot do what it is asked (down, refusing, unreachable).
STORE_ERRORS = (OSError, BotoCoreError, ClientError)


@dataclass(frozen=True)
class Listed:
    """What a listing says of an object: its size, where the store tells it its MD5, and when
    it was last written (None where a store does not say)."""

    size: int
    md5: str | None
    last_modified: dt.datetime | None = None


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str
    sha256: str | None  # None: the object carries none of the pipeline's metadata
    input_hash: str | None
    md5: str | None = None  # the bytes' MD5 where the store tells it (an S3 single-part ETag)


class ObjectStore(Protocol):
    public_base_url: str

    def put(self, key: str, data: bytes, *, sha256: str, input_hash: str) -> StoredObject | None:
        """Store the bytes; the object as the store then holds it (None if it holds none)."""
        ...

    def head(self, key: str) -> StoredObject | None: ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str) -> Iterator[tuple[str, "Listed"]]:
        """Every object below `prefix`, with what a listing says of it (1,000 a request)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (nothing happens when there is none)."""
        ...

    def describe(self) -> str: ...

    def probe(self) -> None:
        """Raise the store's error unless it answers the cheapest request it takes."""
        ...


class LocalStore:
    """A folder; object metadata sits in a `.meta` tree beside the PNGs so the PNGs stay clean.

    A PNG and its metadata are two files, each replaced atomically. The metadata names the inode
    of the PNG it describes and the sha256 of its bytes: where the inode differs (a crash between
    the two renames, a copied or restored folder, an earlier release's metadata) the bytes are
    read, and metadata that does not name them never passes for them.
    """

    def __init__(self, root: str | Path, public_base_url: str | None = None, *, cache_control: str):
        self.root = Path(root).resolve()
        self.public_base_url = public_base_url or self.root.as_uri()
        # Recorded with each object, for whatever serves the folder over HTTP.
        self.cache_control = cache_control

    def describe(self) -> str:
        return f"local folder {self.root}"

    def probe(self) -> None:
        # The folder is made on first write: down is one that cannot be made or written to.
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"{self.root} is not writable")

    def _path(self, key: str, meta: bool = False) -> Path:
        path = (self.root / ".meta" / f"{key}.json") if meta else (self.root / key)
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root) or key.startswith("/"):
            raise ValueError(f"object key {key!r} points outside the store root {self.root}")
        return resolved

    def put(self, key: str, data: bytes, *, sha256: str, input_hash: str) -> StoredObject | None:
        path = self._path(key)
        with _staged(path, data) as staged:
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            meta = {"content_type": content_type(key), "sha256": sha256,
                    "input_hash": input_hash, "md5": md5, "cache_control": self.cache_control,
                    "inode": staged.stat().st_ino}  # fmt: skip
            with _staged(self._path(key, meta=True), json.dumps(meta).encode()) as staged_meta:
                os.replace(staged_meta, self._path(key, meta=True))
            os.replace(staged, path)
        return self.head(key)

    def head(self, key: str) -> StoredObject | None:
        try:
            stat = self._path(key).stat()
        except FileNotFoundError:
            return None
        try:
            meta = json.loads(self._path(key, meta=True).read_bytes())
        except FileNotFoundError:
            meta = {}
        if meta.get("inode") != stat.st_ino and not self._names_its_bytes(key, meta):
            return StoredObject(stat.st_size, content_type(key), None, None)
        return StoredObject(stat.st_size, meta["content_type"], meta.get("sha256"),
                            meta.get("input_hash"), meta.get("md5"))  # fmt: skip

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def _names_its_bytes(self, key: str, meta: dict) -> bool:
        """Metadata not written beside this very file (a copy of the folder, a restored backup,
        a release that recorded no inode, a crash between the two renames) is trusted only when
        the file holds the bytes it names."""
        sha = meta.get("sha256")
        return bool(sha) and hashlib.sha256(self.get(key)).hexdigest() == sha

    def list(self, prefix: str) -> Iterator[tuple[str, Listed]]:
        folder = self._path(prefix)
        if folder.is_dir():
            # No MD5: the metadata's is what was written, not necessarily what the file holds
            # now, and a listing must not read every file to tell.
            for path in sorted(p for p in folder.rglob("*") if p.suffix in CONTENT_TYPES):
                stat = path.stat()
                written = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                yield path.relative_to(self.root).as_posix(), Listed(stat.st_size, None, written)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._path(key, meta=True).unlink(missing_ok=True)


@contextlib.contextmanager
def _staged(path: Path, data: bytes) -> Iterator[Path]:
    """`data` in a temporary file beside `path`, on disk, for the caller to move into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already once moved into place


class S3Store:
    """An S3 (or S3-compatible) bucket, through a boto3 client from dagster-aws's S3Resource."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        public_base_url: str,
        cache_control: str,
    ):
        self.client = client
        self.cache_control = cache_control
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        base = public_base_url.rstrip("/")
        self.public_base_url = f"{base}/{self.prefix}" if self.prefix else base

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def probe(self) -> None:
        # One key listed under the prefix: a single cheap request, needing only the permission
        # the pipeline uses anyway (it lists the store), where a HEAD of the bucket may not.
        self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, *, sha256: str, input_hash: str) -> StoredObject | None:
        response = self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type(key),
            CacheControl=self.cache_control,
            Metadata={"sha256": sha256, "input-hash": input_hash},
        )
        # The ETag of a single-part upload is the MD5 the server took of the bytes it stored:
        # equal to ours, the object is confirmed without a HEAD. Where it is no MD5 (SSE-KMS
        # buckets), a HEAD confirms it instead.
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if _md5_of(response.get("ETag")) == md5:
            return StoredObject(len(data), content_type(key), sha256, input_hash, md5)
        return self.head(key)

    def head(self, key: str) -> StoredObject | None:
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        user = meta.get("Metadata", {})
        return StoredObject(
            meta["ContentLength"], meta.get("ContentType", ""), user.get("sha256"),
            user.get("input-hash"), _md5_of(meta.get("ETag")),
        )  # fmt: skip

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def list(self, prefix: str) -> Iterator[tuple[str, Listed]]:
        skip = len(self._key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield (
                    item["Key"][skip:],
                    Listed(item["Size"], _md5_of(item.get("ETag")), item.get("LastModified")),
                )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def _md5_of(etag: str | None) -> str | None:
    """The MD5 an ETag states: a single-part upload's, unencrypted or SSE-S3 (a multipart or
    SSE-KMS ETag is something else)."""
    value = (etag or "").strip('"')
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None


def open_store(
    location: str,
    public_base_url: str | None,
    s3_client: Callable[[], Any],
    cache_control: str,
) -> Any:
    """The store `location` names (`s3://bucket/prefix`, `file:///abs/dir` or a folder path);
    `s3_client` makes the boto3 client for an S3 one. `cache_control` goes with every
    object written (PD_CACHE_CONTROL)."""
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        client = s3_client()
        base = public_base_url or _s3_public_base(client, parsed.netloc)
        return S3Store(client, parsed.netloc, parsed.path, base, cache_control=cache_control)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"PD_STORE={location!r}: use s3://bucket/prefix or a folder")
    folder = parsed.path if parsed.scheme == "file" else location
    return LocalStore(Path(folder).expanduser(), public_base_url, cache_control=cache_control)


def _s3_public_base(client: Any, bucket: str) -> str:
    endpoint = client.meta.endpoint_url
    if not urlparse(endpoint).hostname.endswith("amazonaws.com"):
        return f"{endpoint.rstrip('/')}/{bucket}"
    return f"https://{bucket}.s3.{client.meta.region_name}.amazonaws.com"
