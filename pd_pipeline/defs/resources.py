"""Dagster resources: the card database, the object store and the renderer.

`card_resources(settings)` is the one place runs get their settings: each `PD_*` variable the
environment set reaches the resource as an `EnvVar` (so the UI names it), the rest as the
declared default (`pd_pipeline.settings`).
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache, partial
from typing import Any

import boto3
import dagster as dg
import sqlalchemy as sa
from botocore.config import Config
from botocore.handlers import disable_signing
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from pd_pipeline import __version__
from pd_pipeline.db.cards import CardCache
from pd_pipeline.db.engine import ready_engine
from pd_pipeline.db.migrations import SchemaTooNew
from pd_pipeline.images.state import Policy
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chromium import ChromiumNotFound, find_chromium
from pd_pipeline.render.pages import CardPages, DesignError, pages_for
from pd_pipeline.settings import Settings, env_name
from pd_pipeline.storage.stores import ObjectStore, open_store


def _declared(name: str, meaning: str):
    """A resource field defaulting to the setting's declared default (`pd_pipeline.settings`)."""
    default = Settings.model_fields[name].default
    return Field(default=default, description=f"{meaning} ({env_name(name)}).")


RELEASE_TAG = "pd/release"
# What no retry mends: a broken design, no Chromium, a database a newer release migrated.
LASTING_ERRORS = (DesignError, ChromiumNotFound, SchemaTooNew)


@contextmanager
def failing_at_once() -> Iterator[None]:
    """A lasting error fails its step without its retries (`steps.step_retries`: they are for
    the store and the database) and says what to fix."""
    try:
        yield
    except LASTING_ERRORS as e:
        raise dg.Failure(description=f"{type(e).__name__}: {e}", allow_retries=False) from e


class CardDatabase(dg.ConfigurableResource):
    """The card database: SQLite (the embedded default) or PostgreSQL, by SQLAlchemy URL."""

    url: str = _declared("database_url", "SQLAlchemy URL of the card database")

    # A run's checks read again the cardsets its plan read: the cards built then are kept.
    _cache: CardCache = PrivateAttr(default_factory=CardCache)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Every run that reads cards says which release ran it (UI runs of the assets too).
        run = context.run
        if run is not None and run.tags.get(RELEASE_TAG) != __version__:
            context.instance.add_run_tags(run.run_id, {RELEASE_TAG: __version__})

    def engine(self) -> sa.Engine:
        with failing_at_once():
            return ready_engine(self.url)

    @property
    def cache(self) -> CardCache:
        return self._cache


class CardStore(dg.ConfigurableResource):
    """Where images go: a local folder, or an S3 bucket through dagster-aws's S3Resource; and
    what becomes of URLs in the rows that the pipeline did not make."""

    location: str = _declared("store", "`s3://bucket/prefix` or a folder")
    public_base_url: str | None = _declared("public_base_url", "Base of the URLs written back")
    cache_control: str = _declared("cache_control", "Cache-Control of every object written")
    adopt: str = _declared("adopt", "URLs others made: keep or replace")
    adopt_outside: str = _declared("adopt_outside", "Such URLs outside the store")
    adopt_http_hosts: str | None = _declared("adopt_http_hosts", "Hosts `http` adoption fetches")
    s3: S3Resource

    _store: ObjectStore | None = PrivateAttr(default=None)

    def open(self) -> ObjectStore:
        """The store, opened once per run: every step shares it and its S3 client."""
        if self._store is None:
            client = partial(shared_s3_client, self.s3)
            self._store = open_store(self.location, self.public_base_url, client,
                                     self.cache_control)  # fmt: skip
        return self._store

    def open_quick(self, timeout_s: int) -> ObjectStore:
        """The store opened afresh for a probe, not for work: an S3 client that gives up fast
        (one attempt, `timeout_s` to connect and to read), where S3Resource's client tries 5
        times with botocore's 60 s timeouts."""
        client = lambda: quick_s3_client(self.s3, timeout_s)  # noqa: E731
        return open_store(self.location, self.public_base_url, client, self.cache_control)


@lru_cache(maxsize=8)
def shared_s3_client(s3: S3Resource) -> Any:
    """The client `s3` makes, made once per process and configuration (resources compare by
    their fields): making one takes 0.1-0.3 s (botocore reads the S3 model), which every sensor
    tick and run paid. Clients are thread-safe, and renew credentials that expire themselves."""
    return s3.get_client()


def quick_s3_client(s3: S3Resource, timeout_s: int) -> Any:
    """A client configured as `s3` makes its own (dagster-aws's construct_s3_client), with one
    attempt and short timeouts."""
    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s,
                    retries={"max_attempts": 1, "mode": "standard"})  # fmt: skip
    client = boto3.session.Session(profile_name=s3.profile_name).client(
        "s3",
        region_name=s3.region_name,
        endpoint_url=s3.endpoint_url,
        use_ssl=s3.use_ssl,
        verify=s3.verify,
        aws_access_key_id=s3.aws_access_key_id,
        aws_secret_access_key=s3.aws_secret_access_key,
        aws_session_token=s3.aws_session_token,
        config=config,
    )
    if s3.use_unsigned_session:
        client.meta.events.register("choose-signer.s3.*", disable_signing)
    return client


class CardRenderer(dg.ConfigurableResource):
    """Headless Chromium (via Playwright) with a pool of warm pages; started on first use."""

    chromium_path: str | None = _declared("chromium_path", "The Chromium binary")
    pages: int = _declared("render_pages", "Pages rendering at once")
    tile: int = _declared("render_tile", "Cards captured at once by a page")
    timeout_seconds: int = _declared("render_timeout_seconds", "Per-card render timeout")
    recycle_after: int = Field(default=2000, description="Relaunch Chromium after this many cards.")
    templates_dir: str | None = _declared("templates_dir", "The card design folder")

    _pool: BrowserPool | None = PrivateAttr(default=None)

    def design(self) -> CardPages:
        with failing_at_once():
            return pages_for(self.templates_dir)

    def browser(self) -> BrowserPool:
        """The warm pool, launched now if `warm_up` did not begin it."""
        with failing_at_once():
            if self._pool is None:
                self._pool = self._new_pool()
            return self._pool.start()

    def warm_up(self) -> None:
        """Begin launching Chromium while the run plans, for a run that will render: its first
        card then waits for what is left of the launch, not all of it. Whatever keeps Chromium
        from launching is raised by `browser()`, should a card need it."""
        if self._pool is None:
            with suppress(*LASTING_ERRORS):
                self._pool = self._new_pool().launch_soon()

    def _new_pool(self) -> BrowserPool:
        return BrowserPool(
            find_chromium(self.chromium_path),
            self.design(),
            pages=self.pages,
            tile=self.tile,
            timeout_s=self.timeout_seconds,
            recycle_after=self.recycle_after,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def card_policy(card_store: CardStore, renderer: CardRenderer) -> Policy:
    """What the resources hold every card to: their design, base URL and adoption."""
    return Policy.of(renderer.design(), card_store.open().public_base_url, adopt=card_store.adopt,
                     adopt_outside=card_store.adopt_outside,
                     adopt_http_hosts=card_store.adopt_http_hosts)  # fmt: skip


def card_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources as `settings` configure them: `EnvVar`s where the environment set them."""

    def given(name: str):
        if not settings.is_set(name):
            return getattr(settings, name)
        kind = type(Settings.model_fields[name].default)
        return dg.EnvVar.int(env_name(name)) if kind is int else dg.EnvVar(env_name(name))

    return {
        "card_db": CardDatabase(url=given("database_url")),
        "card_store": CardStore(
            location=given("store"),
            public_base_url=given("public_base_url"),
            cache_control=given("cache_control"),
            adopt=given("adopt"),
            adopt_outside=given("adopt_outside"),
            adopt_http_hosts=given("adopt_http_hosts"),
            # Credentials and region come from the standard AWS chain, never from config.
            s3=S3Resource(endpoint_url=given("s3_endpoint_url")),
        ),
        "renderer": CardRenderer(
            chromium_path=given("chromium_path"),
            pages=given("render_pages"),
            tile=given("render_tile"),
            timeout_seconds=given("render_timeout_seconds"),
            templates_dir=given("templates_dir"),
        ),
    }
