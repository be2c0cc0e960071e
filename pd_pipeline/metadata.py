"""What a materialization tells the people looking at it in the Dagster UI."""

from typing import Any

import dagster as dg

from pd_pipeline.db.writeback import WriteReport
from pd_pipeline.pngs import PngReport

MAX_LISTED_FAILURES = 50


def failures_markdown(failures: list[tuple[str, str]]) -> dg.MarkdownMetadataValue:
    lines = ["| card | error |", "| --- | --- |"]
    for label, error in failures[:MAX_LISTED_FAILURES]:
        lines.append(f"| {_cell(label)} | {_cell(error)} |")
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"| ... | and {len(failures) - MAX_LISTED_FAILURES} more |")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def png_metadata(reports: list[PngReport]) -> dict[str, Any]:
    """Counts summed over the run's cardsets (a backfill run may cover several)."""

    def total(attribute: str):
        return sum(getattr(r, attribute) for r in reports)

    seconds = total("render_seconds")
    metadata: dict[str, Any] = {
        "cardsets": ", ".join(r.partition for r in reports),
        **{name: total(name) for name in ("cards", "current", "reused", "rendered", "uploaded")},
        "failed": total("failed"),
        "png_bytes": dg.MetadataValue.int(total("png_bytes")),
        "render_seconds": dg.MetadataValue.float(round(seconds, 2)),
        "cards_per_second": dg.MetadataValue.float(
            round(total("rendered") / seconds, 1) if seconds else 0.0
        ),
    }
    failures = [f for r in reports for f in r.failures]
    if failures:
        metadata["failures"] = failures_markdown(failures)
    orphans = [key for r in reports for key in r.orphans]
    if orphans:
        metadata["orphan_objects"] = len(orphans)
        shown = "\n".join(f"- `{key}`" for key in orphans[:MAX_LISTED_FAILURES])
        metadata["orphans"] = dg.MetadataValue.md(shown)
    return metadata


def url_metadata(reports: list[WriteReport]) -> dict[str, Any]:
    names = {
        "candidates": "candidates",
        "written": "written",
        "left_stale": "changed",
        "left_to_other_writer": "conflicts",
        "deleted_meanwhile": "gone",
    }
    return {label: sum(getattr(r, field) for r in reports) for label, field in names.items()}
