"""Whether the card database and the store answer, asked cheaply and briefly; and the one-line
skip reason of a sensor tick that met either unreachable.

A probe must keep `outage_alert`'s tick short whatever the outage looks like (refused, or
packets dropped): a fresh connection with a connect timeout for the database, one S3 request with
no retries and short timeouts for the store.
"""

import dagster as dg
import sqlalchemy as sa
from botocore.exceptions import BotoCoreError, ClientError

from pd_pipeline.db.engine import ping
from pd_pipeline.defs.automation import alerts
from pd_pipeline.defs.automation.outages import Probe
from pd_pipeline.defs.resources import CardDatabase, CardStore

TIMEOUT_S = 5
DATABASE, STORE = "card database", "store"

# What the card database (SQLAlchemy's wrapping of the driver's) and an S3 store raise when they
# cannot be reached. Local-folder errors (OSError) are left out on purpose: a sensor tick meets
# none, and an OSError there (a missing design folder) is no outage.
UNREACHABLE = (sa.exc.OperationalError, BotoCoreError, ClientError)


def error_line(error: BaseException) -> str:
    """`Type: first line`, under SQLAlchemy's wrapping of the driver's error, no credential."""
    inner = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return alerts.redact(f"{type(inner).__name__}: {lines[0] if lines else 'no message'}")


def unreachable(error: Exception) -> dg.SkipReason:
    """A tick that met the card database or the store unreachable: one line, not a traceback
    (`outage_alert` is the sensor that posts about outages)."""
    what = DATABASE if isinstance(error, sa.exc.DBAPIError) else STORE
    return dg.SkipReason(f"The {what} cannot be reached, nothing done this tick: "
                         f"{error_line(error)}")  # fmt: skip


def masked_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return alerts.redact(url)


def probe_database(card_db: CardDatabase) -> Probe:
    where = masked_url(card_db.url)
    try:
        ping(card_db.url, TIMEOUT_S)
    except Exception as e:  # whatever stops a SELECT 1 stops the pipeline too
        return Probe(DATABASE, where, error_line(e))
    return Probe(DATABASE, where)


def probe_store(card_store: CardStore) -> Probe:
    where = card_store.location
    try:
        store = card_store.open_quick(TIMEOUT_S)
        where = store.describe()
        store.probe()
    except Exception as e:  # whatever stops a listing stops the pipeline's uploads too
        return Probe(STORE, where, error_line(e))
    return Probe(STORE, where)
