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


def png_metadata(report: PngReport) -> dict[str, Any]:
    rate = report.rendered / report.render_seconds if report.render_seconds else 0.0
    metadata: dict[str, Any] = {
        "cards": report.cards,
        "current": report.current,
        "reused": report.reused,
        "rendered": report.rendered,
        "uploaded": report.uploaded,
        "failed": report.failed,
        "png_bytes": dg.MetadataValue.int(report.png_bytes),
        "render_seconds": dg.MetadataValue.float(round(report.render_seconds, 2)),
        "cards_per_second": dg.MetadataValue.float(round(rate, 1)),
    }
    if report.failures:
        metadata["failures"] = failures_markdown(report.failures)
    if report.orphans:
        metadata["orphan_objects"] = len(report.orphans)
        shown = "\n".join(f"- `{key}`" for key in report.orphans[:MAX_LISTED_FAILURES])
        metadata["orphans"] = dg.MetadataValue.md(shown)
    return metadata


def url_metadata(report: WriteReport) -> dict[str, Any]:
    return {
        "candidates": report.candidates,
        "written": report.written,
        "left_stale": report.changed,
        "left_to_other_writer": report.conflicts,
        "deleted_meanwhile": report.gone,
    }
