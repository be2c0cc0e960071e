"""The Dagster layer: assets, checks, jobs, sensors, schedules and resources of the code location,
made by `build_defs` from the settings.

    cards/        the card assets, their checks, metadata and jobs (and the steps they share)
    automation/   the sensor and its tick, the schedule, retries, lost runs, alerts
    resources.py  the card database, the store and the renderer, configured from the settings
    partitions.py one partition per cardset
"""

import dagster as dg

from pd_pipeline import profiling
from pd_pipeline.defs.automation.alert_sensors import build_alert_sensors
from pd_pipeline.defs.automation.schedules import build_nightly_reconcile_schedule
from pd_pipeline.defs.automation.sensors import build_pending_images_sensor
from pd_pipeline.defs.cards.assets import build_assets
from pd_pipeline.defs.cards.checks import build_checks
from pd_pipeline.defs.cards.jobs import build_jobs
from pd_pipeline.defs.resources import card_resources
from pd_pipeline.settings import Settings, load


def build_defs(
    settings: Settings | None = None, executor: dg.ExecutorDefinition = dg.in_process_executor
) -> dg.Definitions:
    """The code location for `settings` (default: the environment's, as it is now), its asset
    steps on `executor`. In-process by default: one warm Chromium serves every step of a run,
    where a process per step would start a browser each."""
    settings = settings or load()
    if settings.profile_file:
        profiling.enable(settings.profile_file)
    jobs = build_jobs(settings, executor)
    return dg.Definitions(
        assets=build_assets(settings),
        asset_checks=build_checks(settings),
        jobs=jobs.all(),
        sensors=[build_pending_images_sensor(settings, jobs), *build_alert_sensors(settings)],
        schedules=[build_nightly_reconcile_schedule(settings, jobs)],
        resources=card_resources(settings),
        executor=executor,
    )
