import dagster as dg

from pd_pipeline.alert_sensors import backlog_alert, run_failure_alert
from pd_pipeline.assets import card_assets, design_preview
from pd_pipeline.checks import url_checks
from pd_pipeline.jobs import card_images_job, design_preview_job, render_pending_job
from pd_pipeline.resources import resources_from_env
from pd_pipeline.schedules import nightly_reconcile_schedule
from pd_pipeline.sensors import pending_images_sensor


def build_defs() -> dg.Definitions:
    """The code location, with resources configured from the environment as it is now."""
    return dg.Definitions(
        assets=[*card_assets, design_preview],
        asset_checks=url_checks,
        jobs=[card_images_job, render_pending_job, design_preview_job],
        sensors=[pending_images_sensor, run_failure_alert, backlog_alert],
        schedules=[nightly_reconcile_schedule],
        resources=resources_from_env(),
        # UI and backfill runs use the implicit asset job: one process, so one warm Chromium
        # serves every step instead of a browser per step process.
        executor=dg.in_process_executor,
    )


defs = build_defs()
