"""`nightly_reconcile_schedule`: a full sweep of every cardset, whatever the sensor has seen."""

import dagster as dg

from pd_pipeline.jobs import card_images_job
from pd_pipeline.partitions import cardsets
from pd_pipeline.steps import RECONCILE_TAG

VERIFY = {"config": {"verify_objects": True}}


@dg.schedule(
    job=card_images_job,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night, a card_images_job run per cardset that re-checks every card: stale "
    "data, lost or altered objects (re-made), orphan objects (reported), and the image checks.",
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
            run_config={"ops": {"battingcard_pngs": VERIFY, "pitchingcard_pngs": VERIFY}},
            tags={RECONCILE_TAG: night},
        )
        for partition in partitions
    ]
