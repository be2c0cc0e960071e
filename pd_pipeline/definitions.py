import dagster as dg

from pd_pipeline.assets import card_assets
from pd_pipeline.jobs import card_images_job, render_pending_job
from pd_pipeline.resources import resources_from_env


def build_defs() -> dg.Definitions:
    """The code location, with resources configured from the environment as it is now."""
    return dg.Definitions(
        assets=card_assets,
        jobs=[card_images_job, render_pending_job],
        resources=resources_from_env(),
    )


defs = build_defs()
