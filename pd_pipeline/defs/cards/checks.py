"""Asset checks on the URL assets (`*_image_urls`, `*_animated_urls`), per cardset partition: every
card has a valid, resolvable, current image (and each animated card its design's animation), and
the backlog is not getting old. One audit (`images.audit`) feeds them all; asset runs and the CI
job report them alike (`evaluate`)."""

import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from pd_pipeline.defs.cards import steps
from pd_pipeline.defs.cards.metadata import problems_table
from pd_pipeline.defs.cards.names import ALL, ImageNames
from pd_pipeline.defs.partitions import cardsets
from pd_pipeline.defs.resources import CardDatabase, CardRenderer, CardStore
from pd_pipeline.images.audit import Audit, Problem
from pd_pipeline.images.state import Finding
from pd_pipeline.model import Image
from pd_pipeline.settings import Settings
from pd_pipeline.storage.keys import cardset_id_of, partition_key

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
# name: (severity, description), in reporting order.
CHECKS = {
    "all_cards_rendered": (
        ERROR,
        "Every card of the partition rendered; the ones whose last render failed are named.",
    ),
    "urls_canonical": (
        ERROR,
        "Every URL the pipeline stands behind is the canonical URL of its row (its key and the "
        "token of its image's bytes); URLs others set are counted while they await adoption.",
    ),
    "objects_valid": (
        ERROR,
        "Every URL served as a card's image (ours or adopted) names a valid object: a 1200x600 "
        "image/png PNG (image/apng APNG for animated_url), its bytes matching the URL's token "
        "and our metadata. Checked: the objects the run touched and a sample of the rest "
        "(every object in the nightly reconcile); where the store states an MD5 the ledger "
        "recorded, a HEAD vouches, else it is read.",
    ),
    "images_current": (
        WARN,
        "No stale image: each shows the card's current data (else the sensor re-renders it).",
    ),
    "backlog": (
        WARN,
        "Cards lacking a valid URL, and how long the oldest has waited since first seen.",
    ),
    "urls_present": (
        ERROR,
        "No NULL URL left behind by a run: cards added or changed since the run read them are "
        "counted as queued for the next run.",
    ),
}
ANIMATED_CHECKS = {
    **CHECKS,
    "animations_match": (
        ERROR,
        "The APNGs read (a sample) are their design's animation of their card: the tier's frame "
        "count and delay, looping for ever, and a first frame equal, pixel for pixel, to the "
        "card's static PNG of the same data and design.",
    ),
}


def checks_of(image: Image) -> dict[str, tuple[dg.AssetCheckSeverity, str]]:
    return CHECKS if image is Image.STATIC else ANIMATED_CHECKS


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    metadata: dict[str, Any]
    problems: list[Problem]

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return ANIMATED_CHECKS[self.name][0]

    def evaluation(self, asset: str, partition: str) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(asset), check_name=self.name, passed=self.passed,
            severity=self.severity, metadata=self.metadata, partition=partition,
        )  # fmt: skip


def _listed(name: str, problems: list[Problem], **metadata: Any) -> CheckResult:
    if problems:
        metadata["cards"] = problems_table(problems)
    return CheckResult(name, not problems, {"count": len(problems), **metadata}, problems)


def results(audit: Audit, now: dt.datetime, max_wait: dt.timedelta) -> list[CheckResult]:
    """Every check's verdict on `audit`, in reporting order; `max_wait` is how long a card may
    wait for a valid URL."""
    found = audit.findings
    waited = (now - audit.first_pending) if audit.first_pending else dt.timedelta(0)
    overdue = bool(audit.waiting) and waited > max_wait
    backlog = {
        "cards_lacking_valid_url": len(audit.waiting),
        "oldest_wait_minutes": round(waited.total_seconds() / 60, 1),
        "max_wait_minutes": max_wait.total_seconds() / 60,
    }
    failed = found[Finding.FAILED]
    return [
        _listed("all_cards_rendered", failed, failed_cards=len(failed)),
        _listed(
            "urls_canonical",
            found[Finding.NOT_CANONICAL],
            awaiting_adoption=len(found[Finding.TO_ADOPT]),
        ),
        _listed(
            "objects_valid",
            audit.bad_objects,
            objects_checked=audit.objects_checked,
            which=audit.objects_scope,
        ),  # fmt: skip
        _listed(
            "images_current",
            found[Finding.STALE],
            in_older_design=audit.old_design,
        ),
        CheckResult("backlog", not overdue, backlog, []),
        _listed(
            "urls_present",
            found[Finding.MISSING],
            queued_for_next_run=len(found[Finding.QUEUED]),
            not_seen_by_a_run_yet=len(found[Finding.UNSEEN]),
            waiting_for_column=audit.no_column,  # pd-pipeline add-animated-column: not a failure
        ),
        _listed("animations_match", audit.bad_animations),
    ]


def evaluate(
    context: dg.OpExecutionContext | dg.AssetCheckExecutionContext,
    card_db: CardDatabase,
    card_store: CardStore,
    renderer: CardRenderer,
    of: ImageNames,
    cardset_ids: list[int],
    max_wait: dt.timedelta,
    selected: set[str] | None = None,
) -> Iterator[dg.AssetCheckEvaluation]:
    """Audit each cardset's image `of`, yield every selected check's evaluation on its
    partition (all of the image's by default), then fail (naming the cards) when an ERROR check
    failed. Asset runs and the CI job both run this: a backfill run covering several cardsets
    reports each one's own results."""
    selected = set(checks_of(of.image)) if selected is None else selected
    problems = []
    for cardset_id in cardset_ids:
        partition = partition_key(cardset_id)
        audit = steps.audit(card_db, card_store, renderer, context.log, context.run,
                            of.card_type, cardset_id, of.image)  # fmt: skip
        found = results(audit, dt.datetime.now(dt.UTC), max_wait)
        found = [r for r in found if r.name in selected]
        yield from (result.evaluation(of.urls, partition) for result in found)
        failed = [r for r in found if not r.passed and r.severity == ERROR]
        if failed:
            which = ", ".join(f"{r.name} ({len(r.problems)})" for r in failed)
            problems.append(f"{of.urls} {partition}: ERROR checks failed: {which}")
            named = [p for r in failed for p in r.problems]
            problems += [f"  - {p.card.label}: {p.reason}" for p in named[:50]]
            if len(named) > 50:
                problems.append(f"  ... and {len(named) - 50} more")
    if problems:
        # The cards' data or a run's output is at fault: running the step again changes nothing.
        raise dg.Failure(description="\n".join(problems), allow_retries=False)


def _specs(of: ImageNames) -> list[dg.AssetCheckSpec]:
    # Partitioned checks are a preview feature of Dagster 1.13: we rely on it knowingly, since a
    # check must judge the partition a run wrote, not the whole asset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(name, asset=of.urls, description=text, partitions_def=cardsets)
            for name, (_, text) in checks_of(of.image).items()
        ]


def build_url_checks(of: ImageNames, settings: Settings) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=of.checks,
        specs=_specs(of),
        description=f"Audit of every {of.card_type}'s {of.image.upper()} in the partition.",
        can_subset=True,  # the UI may run any one of them
        retry_policy=steps.step_retries(settings),
    )
    def image_checks(
        context: dg.AssetCheckExecutionContext,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
    ):
        # Evaluations on each cardset's partition: results of a step covering several cardsets
        # (a backfill run) would be recorded for none of them.
        yield from evaluate(
            context, card_db, card_store, renderer, of,
            [cardset_id_of(p) for p in context.partition_keys], settings.backlog_max_wait,
            {key.name for key in context.selected_asset_check_keys},
        )  # fmt: skip

    return image_checks


def build_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    return [build_url_checks(of, settings) for of in ALL]
