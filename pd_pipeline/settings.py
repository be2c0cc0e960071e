"""Tunables of the automation (sensor, checks, freshness), each overridable from the environment.

Resource settings (database, store, renderer) live in `resources.py`.
"""

import datetime as dt
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None


SENSOR_INTERVAL_SECONDS = _int("PD_SENSOR_INTERVAL_SECONDS", 5)
# At most this many runs per tick, and at most this many card_images_job runs in flight: a first
# tick on a huge backlog launches a few runs and says how many cardsets wait.
SENSOR_MAX_RUNS_PER_TICK = _int("PD_SENSOR_MAX_RUNS_PER_TICK", 4)
SENSOR_MAX_RUNS_IN_FLIGHT = _int("PD_SENSOR_MAX_RUNS_IN_FLIGHT", 8)
# Cards per type the sensor re-checks each tick for stale data or URLs (a rolling window).
SENSOR_SWEEP_CARDS = _int("PD_SENSOR_SWEEP_CARDS", 500)

# Work a run left waiting (an outage) is launched again after this, doubling per attempt up to
# the cap, each stretched by up to 20% (`retries.py`).
RETRY_BACKOFF_SECONDS = _int("PD_RETRY_BACKOFF_SECONDS", 30)
RETRY_BACKOFF_MAX_SECONDS = _int("PD_RETRY_BACKOFF_MAX_SECONDS", 900)
# A run that logs nothing for this long is taken for lost (its process killed) and marked failed,
# so that its work is launched again (`lost_runs.py`); a working run logs every few seconds.
RUN_SILENT_SECONDS = _int("PD_RUN_SILENT_SECONDS", 600)

# A new design (or PD_ADOPT=replace) makes cards stale by design: `auto` re-renders them in
# rollout runs the sensor launches one at a time, ROLLOUT_CARDS_PER_RUN cards per type each,
# whenever no new or changed card waits in that cardset; `manual` waits for an operator's run.
ROLLOUT = os.environ.get("PD_ROLLOUT") or "auto"
if ROLLOUT not in ("auto", "manual"):
    raise ValueError(f"PD_ROLLOUT={ROLLOUT!r}: use auto or manual")
ROLLOUT_CARDS_PER_RUN = _int("PD_ROLLOUT_CARDS_PER_RUN", 200)

# Freshness of the image_url assets: warn, then fail, when not materialized for this long.
FRESHNESS_WARN = dt.timedelta(hours=_int("PD_FRESHNESS_WARN_HOURS", 6))
FRESHNESS_FAIL = dt.timedelta(hours=_int("PD_FRESHNESS_FAIL_HOURS", 24))
# The backlog check fails when a card has waited longer than this for a valid URL.
BACKLOG_MAX_WAIT = dt.timedelta(minutes=_int("PD_BACKLOG_MAX_WAIT_MINUTES", 60))
