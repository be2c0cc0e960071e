"""`nightly_reconcile_schedule`: a full sweep of every cardset, whatever the sensor has seen."""

import dagster as dg

from pd_pipeline.defs.cards.jobs import Jobs
from pd_pipeline.defs.cards.names import image_ops
from pd_pipeline.defs.cards.steps import RECONCILE_TAG
from pd_pipeline.defs.partitions import cardsets
from pd_pipeline.settings import Settings

VERIFY = {"config": {"verify_objects": True}}


def build_nightly_reconcile_schedule(settings: Settings, jobs: Jobs) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="nightly_reconcile_schedule",
        job=jobs.card_images,
        cron_schedule=settings.reconcile_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every night, a card_images_job run per cardset that re-checks every card: "
        "stale data, lost or altered objects (re-made), orphan objects (reported), and the "
        "image checks.",
    )
    def nightly_reconcile_schedule(context: dg.ScheduleEvaluationContext):
        partitions = context.instance.get_dynamic_partitions(cardsets.name)
        if not partitions:
            return dg.SkipReason("No cardsets registered yet (the sensor registers them).")
        night = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return [
            dg.RunRequest(
                run_key=f"reconcile-{night}-{partition}",
                partition_key=partition,
                run_config=image_ops(VERIFY),
                tags={RECONCILE_TAG: night},
            )
            for partition in partitions
        ]

    return nightly_reconcile_schedule
