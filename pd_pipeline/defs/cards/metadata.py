"""What a materialization tells the people looking at it in the Dagster UI.

Previews are contact sheets inside the metadata, as `data:` URIs in markdown, which the Dagster
UI renders as images: store objects need not be public (moto's and most buckets are not), and
the picture stays with the run that made it.
"""

import base64
from collections.abc import Sequence
from typing import Any

import dagster as dg

from pd_pipeline.images.audit import Problem
from pd_pipeline.images.produce import ImageReport
from pd_pipeline.images.writeback import WriteReport
from pd_pipeline.model import Image
from pd_pipeline.render.preview import PreviewCard
from pd_pipeline.render.sheet import animated_thumbnail, contact_sheet, pick_samples

MAX_LISTED_FAILURES = 50
PAIRS = 3  # before/after pairs on the design preview's sheet
MOVING = 2  # animated cards shown moving in an APNG step's preview


def preview_markdown(pngs: Sequence[bytes], rendered: int) -> str:
    """Markdown showing the contact sheet of `pngs`, out of `rendered` cards rendered."""
    made = contact_sheet(pngs)
    if made is None:
        return "_No card was rendered in this run, so there is nothing new to show._"
    sheet, shown = made
    data = base64.b64encode(sheet).decode("ascii")
    return (
        f"![contact sheet: {shown} of {rendered} cards rendered](data:image/webp;base64,{data})"
        f"\n\n{shown} of the {rendered} cards rendered in this run."
    )


def animated_markdown(apngs: Sequence[bytes], rendered: int) -> str:
    """Markdown showing the first animated cards of `apngs` moving, out of `rendered` made."""
    thumbnails = [t for t in map(animated_thumbnail, apngs[:MOVING]) if t is not None]
    if not thumbnails:
        return "_No animated card was made in this run, so there is nothing new to show._"
    shown = [
        f"![animated card {i + 1}](data:image/webp;base64,{base64.b64encode(t).decode('ascii')})"
        for i, t in enumerate(thumbnails)
    ]
    return " ".join(shown) + f"\n\n{len(shown)} of the {rendered} animated cards made in this run."


def design_preview_metadata(
    version: str, cards: Sequence[PreviewCard], older: int
) -> dict[str, Any]:
    """What the design_preview asset shows: the design on its sample cards and, where they have
    a current image, the pairs and the share of pixels each would change."""
    drawn = [c for c in cards if c.png is not None]
    compared = [c for c in drawn if c.changed is not None]
    metadata: dict[str, Any] = {
        "template_version": dg.MetadataValue.text(version),
        "cards_in_older_design": older,
        "sample_cards": len(cards),
        "preview": dg.MetadataValue.md(preview_markdown([c.png for c in drawn], len(drawn))),
    }
    if compared:
        pairs = [png for c in compared[:PAIRS] for png in (c.before, c.png)]
        sheet, _ = contact_sheet(pairs, columns=2, limit=2 * PAIRS) or (b"", 0)
        data = base64.b64encode(sheet).decode("ascii")
        lines = [
            f"![current images and the new design](data:image/webp;base64,{data})",
            "",
            "Left, the current image; right, the new design.",
            "",
            "| card | pixels changed |",
            "| --- | --- |",
        ]
        lines += [f"| {_cell(c.caption)} | {c.changed:.1%} |" for c in compared]
        metadata["before_after"] = dg.MetadataValue.md("\n".join(lines))
        metadata["mean_pixels_changed"] = round(sum(c.changed for c in compared) / len(compared), 4)
    failed = [(c.caption, c.error) for c in cards if c.error]
    if failed:
        metadata["failures"] = failures_markdown(failed)
    return metadata


def failures_markdown(failures: list[tuple[str, str]]) -> dg.MarkdownMetadataValue:
    lines = ["| card | error |", "| --- | --- |"]
    for label, error in failures[:MAX_LISTED_FAILURES]:
        lines.append(f"| {_cell(label)} | {_cell(error)} |")
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"| ... | and {len(failures) - MAX_LISTED_FAILURES} more |")
    return dg.MetadataValue.md("\n".join(lines))


def problems_table(problems: list[Problem]) -> dg.MarkdownMetadataValue:
    lines = ["| card | player | variant | reason |", "| --- | --- | --- | --- |"]
    for p in problems[:MAX_LISTED_FAILURES]:
        name = _cell(str(p.card.inputs["player"]["name"]))
        lines.append(
            f"| #{p.card.card_id} | {p.card.player_id} {name} | {p.card.variant} "
            f"| {_cell(p.reason)} |"
        )
    if len(problems) > MAX_LISTED_FAILURES:
        lines.append(f"| ... | | | and {len(problems) - MAX_LISTED_FAILURES} more |")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def image_metadata(reports: list[ImageReport]) -> dict[str, Any]:
    """Counts summed over the run's cardsets (a backfill run may cover several) of one image
    step, with a preview: a contact sheet of PNGs, or animated cards moving."""

    def total(attribute: str):
        return sum(getattr(r, attribute) for r in reports)

    seconds = total("render_seconds")
    samples = pick_samples([r.samples for r in reports])
    animated = bool(reports) and reports[0].image is Image.ANIMATED
    preview = (animated_markdown if animated else preview_markdown)(samples, total("rendered"))
    image = reports[0].image if reports else Image.STATIC
    metadata: dict[str, Any] = {
        # First, so the UI shows the pictures and the table above the single figures.
        "preview": dg.MetadataValue.md(preview),
        "summary": summary_markdown(reports),
        "cardsets": ", ".join(r.partition for r in reports),
        **{name: total(name) for name in SUMMARY_COUNTS if name != "failed"},
        "failed": total("failed"),
        f"{image}_bytes": dg.MetadataValue.int(total("png_bytes")),
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


SUMMARY_COUNTS = ("cards", "current", "adopted", "reused", "rendered", "uploaded", "failed",
                  "old_design")  # fmt: skip


def summary_markdown(reports: list[ImageReport]) -> dg.MarkdownMetadataValue:
    """Counts, bytes and timings, one column per cardset (and a total when the run covers
    several): the UI's metadata column is narrow, so the figures run down, not across."""
    columns = [(r.partition, [r]) for r in reports]
    if len(reports) > 1:
        columns.append(("total", reports))
    cells = [_summary_cells(group) for _, group in columns]
    kind = reports[0].image.upper() if reports else "PNG"
    labels = (*SUMMARY_COUNTS, f"{kind}\u00a0bytes", "render\u00a0time", "cards/s")
    lines = [
        "| | " + " | ".join(name for name, _ in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for row, label in enumerate(labels):
        lines.append(f"| {label} | " + " | ".join(column[row] for column in cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _summary_cells(reports: list[ImageReport]) -> list[str]:
    def total(attribute: str):
        return sum(getattr(r, attribute) for r in reports)

    seconds = total("render_seconds")
    rate = f"{total('rendered') / seconds:.1f}" if seconds else "-"
    counts = [str(total(name)) for name in SUMMARY_COUNTS]
    # No-break spaces keep a figure and its unit together in the narrow column.
    return [*counts, _size(total("png_bytes")), f"{seconds:.1f}\u00a0s", rate]


def _size(n: int) -> str:
    if n < 1000:
        return f"{n}\u00a0B"
    return f"{n / 1000:.0f}\u00a0KB" if n < 1_000_000 else f"{n / 1_000_000:.1f}\u00a0MB"


def url_metadata(reports: list[WriteReport]) -> dict[str, Any]:
    names = {
        "candidates": "candidates",
        "written": "written",
        "left_stale": "changed",
        "left_to_other_writer": "conflicts",
        "deleted_meanwhile": "gone",
        "animations_retired": "retired",
        "waiting_for_column": "no_column",
    }
    return {label: sum(getattr(r, field) for r in reports) for label, field in names.items()}
