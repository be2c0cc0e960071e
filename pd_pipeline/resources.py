"""Dagster resources: the card database, the object store and the renderer.

`resources_from_env()` is the one place runs get their settings: the `PD_*` variables of
`config.SETTINGS`, read by Dagster as `EnvVar`s (the UI then names them), with the table's
defaults for the embedded setup.
"""

import dagster as dg
import sqlalchemy as sa
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from pd_pipeline import config
from pd_pipeline.db.engine import ready_engine
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import CardPages, pages_for
from pd_pipeline.storage.stores import ObjectStore, open_store


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
    adopt: str = Field(
        default="keep",
        description="URLs the pipeline did not make: `keep` them once their object is "
        "confirmed, until the card's data changes, or `replace` them (PD_ADOPT).",
    )
    adopt_outside: str = Field(
        default="render",
        description="URLs outside the store that the pipeline did not make: `render` the card "
        "(nothing vouches for them), adopt them once an HTTP GET gives a PNG of the card's size "
        "(`http`), or adopt them as they are (`trust`) (PD_ADOPT_OUTSIDE).",
    )
    cache_control: str | None = Field(
        default=None,
        description="Cache-Control of every object written (PD_CACHE_CONTROL). Default: "
        "`public, max-age=300`, as a card's key is overwritten when it is rendered again.",
    )
    s3: S3Resource

    _store: ObjectStore | None = PrivateAttr(default=None)

    def open(self) -> ObjectStore:
        """The store, opened once per run: every step shares it (and its boto3 client, which
        costs 0.15-0.4 s of CPU to make)."""
        if self._store is None:
            self._store = open_store(
                self.location, self.public_base_url, self.s3.get_client, self.cache_control
            )
        return self._store


class CardRenderer(dg.ConfigurableResource):
    """Headless Chromium (via Playwright) with a pool of warm pages; started on first use."""

    chromium_path: str | None = Field(
        default=None, description="Chromium binary (PD_CHROMIUM_PATH); default: found on PATH."
    )
    pages: int = Field(default=4, description="Pages rendering at once (PD_RENDER_PAGES).")
    tile: int = Field(default=4, description="Cards captured at once by a page (PD_RENDER_TILE).")
    timeout_seconds: int = Field(
        default=20, description="Per-card render timeout (PD_RENDER_TIMEOUT_SECONDS)."
    )
    recycle_after: int = Field(default=2000, description="Relaunch Chromium after this many cards.")
    templates_dir: str | None = Field(
        default=None,
        description="A folder of card templates replacing the shipped design (PD_TEMPLATES_DIR).",
    )

    _pool: BrowserPool | None = PrivateAttr(default=None)

    def card_pages(self) -> CardPages:
        return pages_for(self.templates_dir)

    def browser(self) -> BrowserPool:
        if self._pool is None:
            self._pool = BrowserPool(
                find_chromium(self.chromium_path),
                self.card_pages(),
                pages=self.pages,
                tile=self.tile,
                timeout_s=self.timeout_seconds,
                recycle_after=self.recycle_after,
            ).start()
        return self._pool

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources as the environment configures them: `EnvVar`s where a variable is set."""

    def setting(name: str):
        if not config.is_set(name):
            return config.SETTINGS[name].default
        env = config.SETTINGS[name]
        return dg.EnvVar.int(env.env) if env.kind is int else dg.EnvVar(env.env)

    return {
        "card_db": CardDatabase(url=setting("database_url")),
        "card_store": CardStore(
            location=setting("store"),
            public_base_url=setting("public_base_url"),
            adopt=setting("adopt"),
            adopt_outside=setting("adopt_outside"),
            cache_control=setting("cache_control"),
            # Credentials and region come from the standard AWS chain, never from config.
            s3=S3Resource(endpoint_url=setting("s3_endpoint_url")),
        ),
        "renderer": CardRenderer(
            chromium_path=setting("chromium_path"),
            pages=setting("render_pages"),
            tile=setting("render_tile"),
            timeout_seconds=setting("render_timeout_seconds"),
            templates_dir=setting("templates_dir"),
        ),
    }
