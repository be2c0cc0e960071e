"""The code location with steps on Celery workers (deploy/celery/): the same assets, checks,
resources, sensor and schedule as `pd_pipeline.definitions`, but `card_images_job` and the
implicit asset job (UI runs, backfills) send each step to a worker. `render_pending_job` stays in
one process: it is the CI entry point. Needs the `celery` extra.

Workers and runs load this module: `-m pd_pipeline.celery_defs`."""

import warnings

import dagster as dg
from dagster_celery import celery_executor

from pd_pipeline.definitions import build_defs
from pd_pipeline.jobs import card_images_job

# Dagster 1.13's with_updated_jobs passes the beta `owners` on, and would say so on every import.
warnings.filterwarnings("ignore", "Parameter `owners`", dg.BetaWarning)

celery_card_images_job = dg.define_asset_job(
    card_images_job.name,
    selection=card_images_job.selection,
    executor_def=celery_executor,
    tags=card_images_job.tags,
    description=card_images_job.description,
)


def _on_celery(automation):
    """A sensor or schedule of the base location, pointed at the Celery job where it targets
    card_images_job (its other jobs, and sensors that launch nothing, as they are)."""
    celery = {card_images_job.name: celery_card_images_job}
    if isinstance(automation, dg.ScheduleDefinition):
        return automation.with_updated_job(celery.get(automation.job_name, automation.job))
    if not automation.has_jobs:
        return automation
    return automation.with_updated_jobs([celery.get(job.name, job) for job in automation.jobs])


def build_celery_defs() -> dg.Definitions:
    """The code location, steps on Celery, with resources configured from the environment."""
    base = build_defs()
    jobs = [job for job in base.jobs or [] if job.name != card_images_job.name]
    return dg.Definitions(
        assets=base.assets,
        asset_checks=base.asset_checks,
        jobs=[celery_card_images_job, *jobs],
        sensors=[_on_celery(sensor) for sensor in base.sensors or []],
        schedules=[_on_celery(schedule) for schedule in base.schedules or []],
        resources=base.resources,
        executor=celery_executor,
    )


defs = build_celery_defs()
