"""Where card PNGs live: a local folder (the embedded default) or an S3 bucket.

Each object carries the sha256 of its bytes and the hash of the render inputs it shows, so a HEAD
alone recognises an object a previous run already made (a render-cache hit). `put` returns the
object as the store confirms it, so an upload needs no HEAD of its own.
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

PNG = "image/png"


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str
    sha256: str | None
    input_hash: str | None


class ObjectStore(Protocol):
    public_base_url: str

    def put(self, key: str, data: bytes, *, sha256: str, input_hash: str) -> StoredObject | None:
        """Store the bytes; the object as the store then holds it (None if it holds none)."""
        ...

    def head(self, key: str) -> StoredObject | None: ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def describe(self) -> str: ...


class LocalStore:
    """A folder; object metadata sits in a `.meta` tree beside the PNGs so the PNGs stay clean."""

    def __init__(self, root: str | Path, public_base_url: str | None = None):
        self.root = Path(root).resolve()
        self.public_base_url = public_base_url or self.root.as_uri()

    def describe(self) -> str:
        return f"local folder {self.root}"

    def _path(self, key: str, meta: bool = False) -> Path:
        path = (self.root / ".meta" / f"{key}.json") if meta else (self.root / key)
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root) or key.startswith("/"):
            raise ValueError(f"object key {key!r} points outside the store root {self.root}")
        return resolved

    def put(self, key: str, data: bytes, *, sha256: str, input_hash: str) -> StoredObject | None:
        meta = {"content_type": PNG, "sha256": sha256, "input_hash": input_hash}
        # Metadata first, then the PNG: a PNG that is present always has its metadata.
        _atomic_write(self._path(key, meta=True), json.dumps(meta).encode())
        _atomic_write(self._path(key), data)
        return self.head(key)

    def head(self, key: str) -> StoredObject | None:
        try:
            size = self._path(key).stat().st_size
            meta = json.loads(self._path(key, meta=True).read_bytes())
        except FileNotFoundError:
            return None
        return StoredObject(size, meta["content_type"], meta.get("sha256"), meta.get("input_hash"))

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def list(self, prefix: str) -> Iterator[str]:
        folder = self._path(prefix)
        if folder.is_dir():
            for path in sorted(folder.rglob("*.png")):
                yield path.relative_to(self.root).as_posix()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class S3Store:
    """An S3 (or S3-compatible) bucket, through a boto3 client from dagster-aws's S3Resource."""

    def __init__(self, client: Any, bucket: str, prefix: str, public_base_url: str):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        base = public_base_url.rstrip("/")
        self.public_base_url = f"{base}/{self.prefix}" if self.prefix else base

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, *, sha256: str, input_hash: str) -> StoredObject | None:
        response = self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=PNG,
            Metadata={"sha256": sha256, "input-hash": input_hash},
        )
        # The ETag of a single-part upload is the MD5 the server took of the bytes it stored:
        # equal to ours, the object is confirmed without a HEAD. Where it is no MD5 (SSE-KMS
        # buckets), a HEAD confirms it instead.
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if response.get("ETag", "").strip('"') == md5:
            return StoredObject(len(data), PNG, sha256, input_hash)
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
            user.get("input-hash"),
        )  # fmt: skip

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def list(self, prefix: str) -> Iterator[str]:
        skip = len(self._key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][skip:]
