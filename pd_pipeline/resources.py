"""Dagster resources: the card database, the object store and the renderer.

`resources_from_env()` is the one place settings come from: `PD_*` variables (read by Dagster as
`EnvVar`s, so the UI shows where a value came from), with defaults for the embedded setup.
"""

import functools
import os
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import sqlalchemy as sa
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from pd_pipeline.db.engine import make_engine
from pd_pipeline.db.schema import create_ledger
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.html import CardTemplates
from pd_pipeline.storage.stores import LocalStore, ObjectStore, S3Store

DEFAULT_DATABASE_URL = "sqlite:///var/pd_cards.db"
DEFAULT_STORE = "var/store"


@functools.cache
def ready_engine(url: str) -> sa.Engine:
    """The engine for `url`, with the pipeline's ledger table created on first use."""
    engine = make_engine(url)
    create_ledger(engine)
    return engine


@functools.cache
def card_templates() -> CardTemplates:
    return CardTemplates()


class CardDatabase(dg.ConfigurableResource):
    """The card database: SQLite (the embedded default) or PostgreSQL, by SQLAlchemy URL."""

    url: str = Field(description="SQLAlchemy URL of the card database (PD_DATABASE_URL).")

    def engine(self) -> sa.Engine:
        return ready_engine(self.url)


class CardStore(dg.ConfigurableResource):
    """Where PNGs go: a local folder, or an S3 bucket through dagster-aws's S3Resource."""

    location: str = Field(
        description="`s3://bucket/prefix`, `file:///abs/dir` or a folder path (PD_STORE)."
    )
    public_base_url: str | None = Field(
        default=None,
        description="Base of the URLs written back (PD_PUBLIC_BASE_URL). Default: the folder's "
        "file:// URL, `{endpoint}/{bucket}` with an endpoint, else the bucket's AWS URL.",
    )
    s3: S3Resource

    def open(self) -> ObjectStore:
        parsed = urlparse(self.location)
        if parsed.scheme == "s3":
            client = self.s3.get_client()
            base = self.public_base_url or _s3_public_base(client, parsed.netloc, self.s3)
            return S3Store(client, parsed.netloc, parsed.path, base)
        if parsed.scheme not in ("", "file"):
            raise ValueError(f"PD_STORE={self.location!r}: use s3://bucket/prefix or a folder")
        folder = parsed.path if parsed.scheme == "file" else self.location
        return LocalStore(Path(folder).expanduser(), self.public_base_url)


def _s3_public_base(client, bucket: str, s3: S3Resource) -> str:
    if s3.endpoint_url:
        return f"{s3.endpoint_url.rstrip('/')}/{bucket}"
    return f"https://{bucket}.s3.{client.meta.region_name}.amazonaws.com"


class CardRenderer(dg.ConfigurableResource):
    """Headless Chromium (via Playwright) with a pool of warm pages; started on first use."""

    chromium_path: str | None = Field(
        default=None, description="Chromium binary (PD_CHROMIUM_PATH); default: found on PATH."
    )
    pages: int = Field(default=4, description="Pages rendering at once (PD_RENDER_PAGES).")
    timeout_seconds: int = Field(
        default=20, description="Per-card render timeout (PD_RENDER_TIMEOUT_SECONDS)."
    )
    recycle_after: int = Field(default=2000, description="Relaunch Chromium after this many cards.")

    _pool: BrowserPool | None = PrivateAttr(default=None)

    def templates(self) -> CardTemplates:
        return card_templates()

    def browser(self) -> BrowserPool:
        if self._pool is None:
            self._pool = BrowserPool(
                find_chromium(self.chromium_path),
                self.templates().shell(),
                pages=self.pages,
                timeout_s=self.timeout_seconds,
                recycle_after=self.recycle_after,
            ).start()
        return self._pool

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def resources_from_env(resolved: bool = False) -> dict[str, dg.ConfigurableResource]:
    """The resources as the environment configures them. Dagster gets `EnvVar`s where a variable
    is set (the UI then names it); `resolved` gives plain values, for use outside a run."""

    def setting(name: str, default, kind: type = str):
        if not os.environ.get(name):
            return default
        if resolved:
            return kind(os.environ[name])
        return dg.EnvVar.int(name) if kind is int else dg.EnvVar(name)

    return {
        "card_db": CardDatabase(url=setting("PD_DATABASE_URL", DEFAULT_DATABASE_URL)),
        "card_store": CardStore(
            location=setting("PD_STORE", DEFAULT_STORE),
            public_base_url=setting("PD_PUBLIC_BASE_URL", None),
            # Credentials and region come from the standard AWS chain, never from config.
            s3=S3Resource(endpoint_url=setting("PD_S3_ENDPOINT_URL", None)),
        ),
        "renderer": CardRenderer(
            chromium_path=setting("PD_CHROMIUM_PATH", None),
            pages=setting("PD_RENDER_PAGES", 4, int),
            timeout_seconds=setting("PD_RENDER_TIMEOUT_SECONDS", 20, int),
        ),
    }


def store_from_env() -> ObjectStore:
    """The object store runs configured from this environment write to."""
    return resources_from_env(resolved=True)["card_store"].open()
