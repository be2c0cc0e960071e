"""The code location with steps on Celery workers (deploy/celery/): the same assets, checks,
resources, sensors and schedule as `pd_pipeline.definitions`, with `card_images_job` and the
implicit asset job (UI runs, backfills) sending each step to a worker; `render_pending_job`
stays in one process (the CI job). Needs the `celery` extra.

Workers and runs load this module: `-m pd_pipeline.defs.celery`."""

from dagster_celery import celery_executor

from pd_pipeline.defs import build_defs

defs = build_defs(executor=celery_executor)
