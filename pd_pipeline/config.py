"""Where the pipeline's resources are and how they behave: every `PD_*` resource setting, its
default and meaning, in one table. Dagster reads them as `EnvVar`s (`resources.py`, so the UI
shows where a value came from); the `pd-pipeline` commands read them here, without Dagster.

Tunables of the automation (sensor, checks, freshness) are in `settings.py`.
"""

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    env: str
    default: Any
    kind: type = str


SETTINGS = {
    "database_url": Setting("PD_DATABASE_URL", "sqlite:///var/pd_cards.db"),
    "store": Setting("PD_STORE", "var/store"),
    "public_base_url": Setting("PD_PUBLIC_BASE_URL", None),
    "s3_endpoint_url": Setting("PD_S3_ENDPOINT_URL", None),
    # None: the store's default, storage.stores.CACHE_CONTROL ("public, max-age=300").
    "cache_control": Setting("PD_CACHE_CONTROL", None),
    "adopt": Setting("PD_ADOPT", "keep"),
    "adopt_outside": Setting("PD_ADOPT_OUTSIDE", "render"),
    "chromium_path": Setting("PD_CHROMIUM_PATH", None),
    "render_pages": Setting("PD_RENDER_PAGES", 4, int),
    "render_tile": Setting("PD_RENDER_TILE", 4, int),
    "render_timeout_seconds": Setting("PD_RENDER_TIMEOUT_SECONDS", 20, int),
    "templates_dir": Setting("PD_TEMPLATES_DIR", None),
    "dagster_ui_url": Setting("PD_DAGSTER_UI_URL", "http://127.0.0.1:3000"),
    "alert_webhook_url": Setting("PD_ALERT_WEBHOOK_URL", None),
}


def is_set(name: str) -> bool:
    return bool(os.environ.get(SETTINGS[name].env))


def value(name: str) -> Any:
    """The setting as the environment has it now, or its default."""
    setting = SETTINGS[name]
    raw = os.environ.get(setting.env)
    if not raw:
        return setting.default
    try:
        return setting.kind(raw)
    except ValueError:
        raise ValueError(f"{setting.env}={raw!r} is not a {setting.kind.__name__}") from None


def store():
    """The object store the environment names, for use outside a run (`pd-pipeline`)."""
    import boto3

    from pd_pipeline.storage.stores import open_store

    endpoint = value("s3_endpoint_url")
    return open_store(value("store"), value("public_base_url"),
                      lambda: boto3.client("s3", endpoint_url=endpoint),
                      value("cache_control"))  # fmt: skip


def card_context(object_store):
    """The card-state context of this environment: its design, public base URL, adoption."""
    from pd_pipeline.images.state import Context
    from pd_pipeline.render.pages import pages_for

    return Context(pages_for(value("templates_dir")).version, object_store.public_base_url,
                   value("adopt"), value("adopt_outside"))  # fmt: skip
