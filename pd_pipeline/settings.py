"""Every `PD_*` setting, declared once: its type, default, what it accepts and what it means.

`load()` reads them from the environment (a variable set to the empty string counts as unset)
and refuses a wrong value with one line naming the variable, its value and what is allowed. The
code location (`pd_pipeline.definitions`) and `pd-pipeline` both load them before anything
else, so a typo stops `dagster definitions validate`, `dg check defs` and every command instead
of running with another behaviour. The README's configuration table is `markdown_table()`.
"""

import datetime as dt
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic import model_validator as model_rule

PREFIX = "PD_"
# Read by the files in deploy/ or by the tests, not by the code location.
ELSEWHERE = {
    "PD_PIPELINE_IMAGE": "the image deploy/k8s runs (Kubernetes only)",
    "PD_CELERY_BROKER_URL": "Celery's broker (deploy/celery/executor.yaml)",
    "PD_CELERY_BACKEND_URL": "Celery's result backend (deploy/celery/executor.yaml)",
    "PD_CODE_SERVER_HOST": "where the webserver and daemon find the code server (the image)",
    "PD_CODE_SERVER_PORT": "the code server's port (the image)",
    "PD_LISTEN_HOST": "the address the image's servers listen on",
    "PD_WEBSERVER_PORT": "the image's operators' webserver port",
    "PD_READ_ONLY_WEBSERVER_PORT": "the image's read-only webserver port",
    "PD_TEST_POSTGRES_URL": "tests only: the server tests make their databases on",
    "PD_REQUIRE_POSTGRES": "tests only: `1` makes an unreachable PostgreSQL a failure",
    "PD_LOADTEST_CARDS": "`make loadtest` only: the cards of the load run",
}


class SettingsError(ValueError):
    """A setting with a value the pipeline cannot use; the message is one line naming it."""


def _setting(default: Any, meaning: str, group: str, **constraints: Any) -> Any:
    return Field(default, description=meaning, json_schema_extra={"group": group}, **constraints)


Whole = Annotated[int, at.Ge(0)]
Count = Annotated[int, at.Ge(1)]


class Settings(BaseModel):
    """The pipeline's settings; field `x` is the environment variable `PD_X`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- where things are ---------------------------------------------------------------------
    database_url: str = _setting(
        "sqlite:///var/pd_cards.db",
        "SQLAlchemy URL of the card database. `postgresql://` URLs use psycopg 3.",
        "where",
    )
    store: str = _setting(
        "var/store",
        "Where images go: a folder (`var/store`, `file:///abs/dir`) or `s3://bucket/prefix`.",
        "where",
    )
    s3_endpoint_url: str | None = _setting(
        None, "An S3-compatible endpoint (MinIO, moto, R2, ...); AWS when unset.", "where"
    )
    public_base_url: str | None = _setting(
        None,
        "Base of the URLs written back, `{base}/{key}?d={token}`. Default: the folder's "
        "`file://` URL, `{endpoint}/{bucket}` with an endpoint, else the bucket's AWS URL.",
        "where",
    )
    cache_control: str = _setting(
        "public, max-age=300",
        "`Cache-Control` of every object written. A card's key is overwritten when it is "
        "rendered again (only the URL's `?d=` token changes): lengthen it only behind a CDN "
        "that keys on `d` (docs/deploy.md).",
        "where",
        min_length=1,
    )
    # -- rendering ----------------------------------------------------------------------------
    chromium_path: str | None = _setting(
        None,
        "The Chromium Playwright drives. Default: `/usr/bin/chromium`, else the one "
        "`playwright install chromium` put in place.",
        "rendering",
    )
    templates_dir: str | None = _setting(
        None, "A card design folder of your own (docs/design.md). Default: the shipped one.",
        "rendering",
    )  # fmt: skip
    render_pages: Annotated[int, at.Ge(1), at.Le(32)] = _setting(
        4, "Pages rendering at once in the one warm browser.", "rendering"
    )
    render_tile: Annotated[int, at.Ge(1), at.Le(16)] = _setting(
        4,
        "Cards a page captures at once (cut into per-card PNGs byte-identical to single "
        "captures); `1` captures one by one.",
        "rendering",
    )
    render_timeout_seconds: Annotated[int, at.Ge(1), at.Le(600)] = _setting(
        20,
        "A card taking longer is tried again on a fresh page, 3 tries in all, then fails "
        "alone; the rest of the cardset goes on.",
        "rendering",
    )
    # -- images others made -------------------------------------------------------------------
    adopt: Literal["keep", "replace"] = _setting(
        "keep",
        "URLs in the rows that the pipeline did not make: `keep` them once their object is "
        "confirmed (until the card's data changes), or `replace` them at the rollout's pace.",
        "adoption",
    )
    adopt_outside: Literal["render", "http", "trust"] = _setting(
        "render",
        "Such URLs outside the store: `render` the card, adopt them once an HTTP GET from a "
        "host `PD_ADOPT_HTTP_HOSTS` allows gives a PNG of the card's size (`http`), or adopt "
        "them as they are (`trust`).",
        "adoption",
    )
    adopt_http_hosts: str | None = _setting(
        None,
        "The hosts `http` adoption fetches from: only these, when set; else the host of the "
        "store's public base URL alone (none for a folder's `file://` URL). A name without a "
        "port means ports 80 and 443. Redirects are followed only among them.",
        "adoption",
    )
    # -- automation ---------------------------------------------------------------------------
    sensor_interval_seconds: Annotated[int, at.Ge(1), at.Le(3600)] = _setting(
        5,
        "How often `pending_images_sensor` looks for cards needing an image (Dagster's daemon "
        "looks at sensors every 5 s: a shorter interval acts as 5).",
        "automation",
    )
    sensor_max_runs_per_tick: Whole = _setting(
        4,
        "Runs one sensor tick may launch (`0`: it still registers new cardsets, and launches "
        "nothing).",
        "automation",
    )
    sensor_max_runs_in_flight: Count = _setting(
        8, "No new sensor runs while this many cardsets are queued or running.", "automation"
    )
    sensor_changes_per_tick: Count = _setting(
        5000,
        "Tracked changes (`pd-pipeline track-changes`) one tick takes from the queue, and "
        "assesses: a burst of them is worked off over several ticks.",
        "automation",
    )
    sensor_sweep_cards: Count = _setting(
        500,
        "Where the database does not track changes: cards per type each tick re-checks for "
        "changed data or URLs (a rolling window).",
        "automation",
    )
    sensor_sweep_pass_minutes: Annotated[int, at.Ge(1)] | None = _setting(
        None,
        "Where the database does not track changes: re-check every card in this many minutes "
        "(the window each tick grows with the table) instead of PD_SENSOR_SWEEP_CARDS a tick.",
        "automation",
    )
    rollout: Literal["auto", "manual"] = _setting(
        "auto",
        "Cards stale only by design: re-rendered by rollout runs the sensor launches one at a "
        "time (`auto`), or only by an operator's run (`manual`).",
        "automation",
    )
    rollout_cards_per_run: Count = _setting(
        200, "Cards per card type a rollout run re-renders: the rollout's pace.", "automation"
    )
    run_silent_seconds: Annotated[int, at.Ge(10)] = _setting(
        600,
        "A run that has logged nothing this long (its process killed with Dagster or its "
        "host) is marked failed, and its work launched again. A working run logs every few "
        "seconds; under a minute, a slow step may be taken for lost.",
        "automation",
    )
    step_retries: Annotated[int, at.Ge(0), at.Le(10)] = _setting(
        3,
        "A step that fails for the store or the card database (not for a card's data, a "
        "broken design or a missing Chromium) is tried again this many times in its run, "
        "after a backoff doubling from PD_STEP_RETRY_DELAY_SECONDS with jitter; longer "
        "outages are the sensor's to retry.",
        "automation",
    )
    step_retry_delay_seconds: Annotated[int, at.Ge(1), at.Le(600)] = _setting(
        2, "The first of those waits.", "automation"
    )
    retry_backoff_seconds: Count = _setting(
        30,
        "Work a failed run left waiting is launched again after this, doubling per attempt.",
        "automation",
    )
    retry_backoff_max_seconds: Count = _setting(900, "The cap of that backoff.", "automation")
    reconcile_cron: str = _setting(
        "0 3 * * *",
        "When `nightly_reconcile_schedule` re-checks every card and object (cron, UTC).",
        "automation",
    )
    # -- alerts and freshness -----------------------------------------------------------------
    alert_webhook_url: str | None = _setting(
        None,
        "A Slack or Discord incoming webhook for the alerts (failed runs, cards waiting too "
        "long, the card database or the store unreachable).",
        "alerts",
    )
    outage_alert_seconds: Annotated[int, at.Ge(10)] = _setting(
        60,
        "The card database or the store unreachable this long, whether or not a run is "
        "going, is posted to the webhook (once, and once more when it is back).",
        "alerts",
    )
    dagster_ui_url: str = _setting(
        "http://127.0.0.1:3000",
        "The Dagster UI that alerts and `pd-pipeline why` link runs to.",
        "alerts",
    )
    freshness_warn_hours: Count = _setting(
        6, "The `*_image_urls` assets warn when not materialized for this long.", "alerts"
    )
    freshness_fail_hours: Count = _setting(24, "... and fail after this long.", "alerts")
    backlog_max_wait_minutes: Count = _setting(
        60,
        "The `backlog` check fails, `backlog_alert` posts and `pd-pipeline status` exits 1 "
        "when a card has waited longer for a valid URL.",
        "alerts",
    )

    # -- development --------------------------------------------------------------------------
    profile_file: str | None = _setting(
        None,
        "Write the CPU time of each phase of the pipeline's own work (markup, encode, store, "
        "...) to this JSON file when the process ends (`make bench` sets it).",
        "development",
    )

    @field_validator("reconcile_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields):
            raise ValueError("not a cron schedule of five fields")
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        import sqlalchemy as sa

        try:
            backend = sa.make_url(value).get_backend_name()
        except Exception:
            raise ValueError("not a database URL") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"a {backend} database is not supported")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        scheme = value.partition("://")[0] if "://" in value else ""
        if scheme not in ("", "file", "s3"):
            raise ValueError(f"a {scheme}:// store is not supported")
        if scheme == "s3" and not value.removeprefix("s3://").split("/")[0]:
            raise ValueError("an s3:// store needs a bucket")
        return value

    @field_validator("s3_endpoint_url", "public_base_url", "alert_webhook_url", "dagster_ui_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is not None and ("?" in value or "#" in value):
            raise ValueError("a base URL has no query or fragment")
        return value

    @field_validator("adopt_http_hosts")
    @classmethod
    def _hosts(cls, value: str | None) -> str | None:
        from pd_pipeline.images.fetch import parse_hosts

        if value is not None:
            parse_hosts(value)  # ValueError naming the entry that is no host
        return value

    @field_validator("templates_dir")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_dir():
            raise ValueError("no such folder")
        return value

    @field_validator("chromium_path")
    @classmethod
    def _executable(cls, value: str | None) -> str | None:
        if value is not None and not os.access(value, os.X_OK):
            raise ValueError("not an executable file")
        return value

    @model_rule(mode="after")
    def _ordered(self) -> "Settings":
        for low, high in (
            ("retry_backoff_seconds", "retry_backoff_max_seconds"),
            ("freshness_warn_hours", "freshness_fail_hours"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise SettingsError(
                    f"{env_name(low)}={getattr(self, low)} is more than "
                    f"{env_name(high)}={getattr(self, high)}: make it at most that"
                )
        return self

    # Durations as the code uses them.
    @property
    def freshness_warn(self) -> dt.timedelta:
        return dt.timedelta(hours=self.freshness_warn_hours)

    @property
    def freshness_fail(self) -> dt.timedelta:
        return dt.timedelta(hours=self.freshness_fail_hours)

    @property
    def backlog_max_wait(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.backlog_max_wait_minutes)

    def is_set(self, name: str) -> bool:
        """Whether the environment chose this setting (the UI then names its variable)."""
        return name in self.model_fields_set

    # Outside Dagster (`pd-pipeline`, tests, the bench), the same things the resources open.
    def open_store(self):
        """The object store these settings name."""
        import boto3

        from pd_pipeline.storage.stores import open_store

        client = lambda: boto3.client("s3", endpoint_url=self.s3_endpoint_url)  # noqa: E731
        return open_store(self.store, self.public_base_url, client, self.cache_control)

    def card_policy(self, store):
        """What these settings hold every card to: their design, `store`'s base URL and their
        adoption rules."""
        from pd_pipeline.images.state import Policy
        from pd_pipeline.render.pages import pages_for

        return Policy.of(pages_for(self.templates_dir), store.public_base_url, adopt=self.adopt,
                         adopt_outside=self.adopt_outside,
                         adopt_http_hosts=self.adopt_http_hosts)  # fmt: skip


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings the environment gives (os.environ by default); SettingsError for a wrong
    value, naming the variable, its value and what is allowed."""
    environ = os.environ if environ is None else environ
    given = {
        name: environ[env_name(name)]
        for name in Settings.model_fields
        if environ.get(env_name(name), "") != ""
    }
    try:
        return Settings(**given)
    except ValidationError as e:
        error = e.errors()[0]
        if not error["loc"]:  # a rule across settings: its message names them
            raise SettingsError(str(error["ctx"]["error"])) from None
        name = str(error["loc"][0])
        value = f"{env_name(name)}={given[name]!r}"
        if error["type"] == "value_error":  # one of the rules above: it says what is wrong
            raise SettingsError(f"{value}: {error['ctx']['error']}; use {allowed(name)}") from None
        raise SettingsError(f"{value} is not allowed: use {allowed(name)}") from None


def misspelt(environ: Mapping[str, str] | None = None) -> list[str]:
    """`PD_*` variables that are no setting but look like one: likely typos, worth a warning."""
    environ = os.environ if environ is None else environ
    known = [env_name(name) for name in Settings.model_fields] + list(ELSEWHERE)
    notes = []
    for variable in sorted(environ):
        if variable.startswith(PREFIX) and variable not in known:
            close = difflib.get_close_matches(variable, known, n=1, cutoff=0.85)
            if close:
                notes.append(f"{variable} is not a pd_pipeline setting: did you mean {close[0]}?")
    return notes


def allowed(name: str) -> str:
    """What a setting accepts, in words (from its declaration)."""
    field = Settings.model_fields[name]
    kind, metadata = field.annotation, list(field.metadata)
    if type(None) in get_args(kind):  # optional: what it accepts when set
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    if get_origin(kind) is Annotated:
        kind, *more = get_args(kind)
        metadata += more
    if get_origin(kind) is Literal:
        *first, last = [f"`{v}`" for v in get_args(kind)]
        return f"{', '.join(first)} or {last}"
    if kind is int:
        low = next((m.ge for m in metadata if isinstance(m, at.Ge)), None)
        high = next((m.le for m in metadata if isinstance(m, at.Le)), None)
        if high is not None:
            return f"a whole number from {low} to {high}"
        return f"a whole number, at least {low}" if low is not None else "a whole number"
    words = {
        "database_url": "`sqlite:///path` or `postgresql://...`",
        "store": "a folder, `file:///abs/dir` or `s3://bucket/prefix`",
        "templates_dir": "a folder",
        "profile_file": "a file path",
        "chromium_path": "an executable file",
        "cache_control": "a Cache-Control header value",
        "reconcile_cron": "a cron schedule (`minute hour day month weekday`)",
        "adopt_http_hosts": "comma-separated `host` or `host:port` (IPv6 as `[::1]:8080`)",
    }
    return words.get(name, "an http(s) URL")


def markdown_table() -> str:
    """The README's configuration table: every setting, its default, what it accepts and
    means, in declaration order."""
    lines = ["| variable | default | accepts | meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else f"`{field.default}`"
        lines.append(f"| `{env_name(name)}` | {default} | {allowed(name)} | {field.description} |")
    return "\n".join(lines)


START, END = (
    "<!-- settings table: python -m pd_pipeline.settings -->",
    "<!-- end of settings table -->",
)


def write_table(readme: Path) -> None:
    """Put `markdown_table()` between the markers of `readme`."""
    text = readme.read_text()
    head, rest = text.split(START, 1)
    readme.write_text(f"{head}{START}\n{markdown_table()}\n{END}{rest.split(END, 1)[1]}")


if __name__ == "__main__":  # the README's configuration table: printed, or --write README.md
    import sys

    if sys.argv[1:2] == ["--write"]:
        write_table(Path(sys.argv[2]))
    else:
        print(markdown_table())
