"""Asset checks on the image_url assets, per cardset partition: every card has a valid, resolvable,
current image, and the backlog is not getting old. One audit (`images.audit`) feeds them all;
asset runs and the CI job report them alike (`evaluate`)."""

import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from pd_pipeline import settings, steps
from pd_pipeline.images.audit import Audit, Problem
from pd_pipeline.metadata import problems_table
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.partitions import cardsets
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
        "Every image_url the pipeline stands behind is the canonical URL of its row (its key "
        "and the token of its PNG); URLs others set are counted while they await adoption.",
    ),
    "objects_valid": (
        ERROR,
        "Every URL served as a card's image (ours or adopted) names a valid object: image/png, "
        "1200x600, its bytes matching the URL's token and our metadata. Checked: the objects "
        "the run touched and a sample of the rest (every object in the nightly reconcile); "
        "where the store states an MD5 the ledger recorded, a HEAD vouches, else it is read.",
    ),
    "images_current": (
        WARN,
        "No stale image: each PNG shows the card's current data (else the sensor re-renders it).",
    ),
    "backlog": (
        WARN,
        "Cards lacking a valid URL, and how long the oldest has waited since first seen.",
    ),
    "urls_present": (
        ERROR,
        "No NULL image_url left behind by a run: cards added or changed since the run read them "
        "are counted as queued for the next run.",
    ),
}


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    metadata: dict[str, Any]
    problems: list[Problem]

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return CHECKS[self.name][0]

    def evaluation(self, asset: str, partition: str) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(asset), check_name=self.name, passed=self.passed,
            severity=self.severity, metadata=self.metadata, partition=partition,
        )  # fmt: skip


def _listed(name: str, problems: list[Problem], **metadata: Any) -> Outcome:
    if problems:
        metadata["cards"] = problems_table(problems)
    return Outcome(name, not problems, {"count": len(problems), **metadata}, problems)


def outcomes(audit: Audit, now: dt.datetime) -> list[Outcome]:
    """Every check's verdict on `audit`, in reporting order."""
    found = audit.findings
    waited = (now - audit.first_pending) if audit.first_pending else dt.timedelta(0)
    overdue = bool(audit.waiting) and waited > settings.BACKLOG_MAX_WAIT
    backlog = {
        "cards_lacking_valid_url": len(audit.waiting),
        "oldest_wait_minutes": round(waited.total_seconds() / 60, 1),
        "max_wait_minutes": settings.BACKLOG_MAX_WAIT.total_seconds() / 60,
    }
    return [
        _listed("all_cards_rendered", found["failed"], failed_cards=len(found["failed"])),
        _listed("urls_canonical", found["not_canonical"], awaiting_adoption=len(found["to_adopt"])),
        _listed(
            "objects_valid",
            audit.bad_objects,
            objects_checked=audit.objects_checked,
            which=audit.objects_scope,
        ),  # fmt: skip
        _listed("images_current", found["stale"], in_older_design=len(found["old_design"])),
        Outcome("backlog", not overdue, backlog, []),
        _listed(
            "urls_present",
            found["missing"],
            queued_for_next_run=len(found["queued"]),
            not_seen_by_a_run_yet=len(found["unseen"]),
        ),  # fmt: skip
    ]


def evaluate(
    context: dg.OpExecutionContext | dg.AssetCheckExecutionContext,
    res: steps.Opened,
    card_type: str,
    cardset_ids: list[int],
    selected: set[str] = frozenset(CHECKS),
) -> Iterator[dg.AssetCheckEvaluation]:
    """Audit each cardset, yield every selected check's evaluation on its partition, then fail
    (naming the cards) when an ERROR check failed. Asset runs and the CI job both run this: a
    backfill run covering several cardsets reports each one's own results."""
    asset, problems = f"{card_type}_image_urls", []
    for cardset_id in cardset_ids:
        partition = partition_key(cardset_id)
        audit = steps.audit(res, context.log, context.run, card_type, cardset_id)
        results = [r for r in outcomes(audit, dt.datetime.now(dt.UTC)) if r.name in selected]
        yield from (result.evaluation(asset, partition) for result in results)
        failed = [r for r in results if not r.passed and r.severity == ERROR]
        if failed:
            names = ", ".join(f"{r.name} ({len(r.problems)})" for r in failed)
            problems.append(f"{card_type} {partition}: ERROR checks failed: {names}")
            named = [p for r in failed for p in r.problems]
            problems += [f"  - {p.card.label}: {p.reason}" for p in named[:50]]
            if len(named) > 50:
                problems.append(f"  ... and {len(named) - 50} more")
    if problems:
        raise dg.Failure(description="\n".join(problems))


def _specs(asset: str) -> list[dg.AssetCheckSpec]:
    # Partitioned checks are a preview feature of Dagster 1.13: we rely on it knowingly, since a
    # check must judge the partition a run wrote, not the whole asset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(name, asset=asset, description=text, partitions_def=cardsets)
            for name, (_, text) in CHECKS.items()
        ]


def build_url_checks(card_type: str) -> dg.AssetChecksDefinition:
    asset = f"{card_type}_image_urls"

    @dg.multi_asset_check(
        name=f"{card_type}_image_checks",
        specs=_specs(asset),
        description=f"Audit of every {card_type} in the partition.",
        can_subset=True,  # the UI may run any one of them
        required_resource_keys=steps.RESOURCES,
    )
    def image_checks(context: dg.AssetCheckExecutionContext):
        # Evaluations on each cardset's partition: results of a step covering several cardsets
        # (a backfill run) would be recorded for none of them.
        yield from evaluate(
            context,
            steps.Opened.of_step(context),
            card_type,
            [cardset_id_of(p) for p in context.partition_keys],
            {key.name for key in context.selected_asset_check_keys},
        )

    return image_checks


url_checks = [build_url_checks(card_type) for card_type in CARD_TYPES]
