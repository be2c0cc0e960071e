"""Asset checks on the image_url assets, per cardset partition: every card has a valid, resolvable,
current image, and the backlog is not getting old. One audit per partition feeds all the checks."""

import datetime as dt
import warnings

import dagster as dg

from pd_pipeline import settings
from pd_pipeline.audit import Audit, Problem, audit_cardset
from pd_pipeline.db.cards import CARD_TYPES
from pd_pipeline.partitions import cardsets
from pd_pipeline.resources import CardDatabase, CardRenderer, CardStore
from pd_pipeline.storage.keys import cardset_id_of

MAX_LISTED = 50
# name: (severity, blocking, description). A blocking check stops the step the moment it fails,
# so it is evaluated last, once every other result is recorded.
CHECKS = {
    "urls_canonical": (
        dg.AssetCheckSeverity.ERROR,
        False,
        "Every image_url is the canonical URL of its row: its key and the token of its PNG.",
    ),
    "objects_valid": (
        dg.AssetCheckSeverity.ERROR,
        False,
        "Every URL's object exists as image/png, decodes to 1200x600 and matches its token.",
    ),
    "images_current": (
        dg.AssetCheckSeverity.WARN,
        False,
        "No stale image: each PNG shows the card's current data (else the sensor re-renders it).",
    ),
    "backlog": (
        dg.AssetCheckSeverity.WARN,
        False,
        "Cards lacking a valid URL, and how long the oldest has waited since first seen.",
    ),
    "urls_present": (
        dg.AssetCheckSeverity.ERROR,
        True,
        "No NULL image_url left behind by a run: cards whose render failed are listed; cards "
        "added or changed since the run read them are counted as queued for the next run.",
    ),
}


def problems_table(problems: list[Problem]) -> dg.MarkdownMetadataValue:
    lines = ["| card | player | variant | reason |", "| --- | --- | --- | --- |"]
    for p in problems[:MAX_LISTED]:
        name = p.card.inputs["player"]["name"].replace("|", "\\|")
        reason = p.reason.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| #{p.card.card_id} | {p.card.player_id} {name} | {p.card.variant} | {reason} |"
        )
    if len(problems) > MAX_LISTED:
        lines.append(f"| ... | | | and {len(problems) - MAX_LISTED} more |")
    return dg.MetadataValue.md("\n".join(lines))


def _result(asset: str, name: str, problems: list[Problem], **metadata) -> dg.AssetCheckResult:
    severity, _, _ = CHECKS[name]
    if problems:
        metadata["cards"] = problems_table(problems)
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=not problems,
        severity=severity,
        metadata={"count": len(problems), **metadata},
    )


def check_results(asset: str, audit: Audit, now: dt.datetime) -> list[dg.AssetCheckResult]:
    waited = (now - audit.first_pending) if audit.first_pending else dt.timedelta(0)
    overdue = audit.waiting() and waited > settings.BACKLOG_MAX_WAIT
    return [
        _result(asset, "urls_canonical", audit.not_canonical),
        _result(asset, "objects_valid", audit.bad_objects),
        _result(asset, "images_current", audit.stale),
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="backlog",
            passed=not overdue,
            severity=CHECKS["backlog"][0],
            metadata={
                "cards_lacking_valid_url": len(audit.waiting()),
                "oldest_wait_minutes": round(waited.total_seconds() / 60, 1),
                "max_wait_minutes": settings.BACKLOG_MAX_WAIT.total_seconds() / 60,
            },
        ),
        _result(
            asset,
            "urls_present",
            audit.missing,
            failed_renders=len(audit.failed),
            queued_for_next_run=len(audit.queued),
            not_seen_by_a_run_yet=len(audit.unseen),
            **({"failed_cards": problems_table(audit.failed)} if audit.failed else {}),
        ),  # fmt: skip
    ]


def _failed_error(result: dg.AssetCheckResult) -> bool:
    return not result.passed and result.severity == dg.AssetCheckSeverity.ERROR


def _specs(asset: str) -> list[dg.AssetCheckSpec]:
    # Partitioned checks are a preview feature of Dagster 1.13: we rely on it knowingly, since a
    # check must judge the partition a run wrote, not the whole asset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name, asset=asset, blocking=blocking, description=text, partitions_def=cardsets
            )
            for name, (_, blocking, text) in CHECKS.items()
        ]


def build_url_checks(card_type: str) -> dg.AssetChecksDefinition:
    asset = f"{card_type}_image_urls"

    @dg.multi_asset_check(
        name=f"{card_type}_image_checks",
        specs=_specs(asset),
        description=f"Audit of every {card_type} in the partition.",
    )
    def image_checks(
        context: dg.AssetCheckExecutionContext,
        card_db: CardDatabase,
        card_store: CardStore,
        renderer: CardRenderer,
    ):
        engine, store, version = card_db.engine(), card_store.open(), renderer.templates().version
        audit = Audit.combine(
            [
                audit_cardset(engine, store, card_type, cardset_id_of(partition), version)
                for partition in context.partition_keys
            ]
        )
        context.log.info(
            f"{card_type} {', '.join(context.partition_keys)}: {audit.cards} cards, "
            f"{len(audit.waiting())} lacking a valid URL"
        )
        partitions = ", ".join(context.partition_keys)
        results = check_results(asset, audit, dt.datetime.now(dt.UTC))
        yield from results
        failed = [r.check_name for r in results if _failed_error(r)]
        if failed:
            # Every failing ERROR check fails the run (and `dagster job execute`), blocking or not.
            raise dg.Failure(
                description=f"{card_type} {partitions}: ERROR checks failed: " + ", ".join(failed)
            )

    return image_checks


url_checks = [build_url_checks(card_type) for card_type in CARD_TYPES]
