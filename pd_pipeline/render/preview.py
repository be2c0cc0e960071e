"""Previews of a card design: sample cards rendered by the real renderer, laid out full size on
sheets for people to look at, and compared pixel by pixel with the images they would replace.

Nothing here reads a database or a store: callers hand in the cards (and their current images).
"""

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pd_pipeline.model import tier_of
from pd_pipeline.render.apng import decode_apng
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.pages import Animation, CardPages, DesignError
from pd_pipeline.render.png import CARD_SIZE, InvalidPng, decode_png, encode_png
from pd_pipeline.render.samples import Sample
from pd_pipeline.render.sheet import BACKGROUND
from pd_pipeline.render.validate import CardDataError

WIDTH, HEIGHT = CARD_SIZE
COLUMNS = 2  # cards per row of the contact sheet: full size, so two rows of cards fit a screen
GAP = 24
CAPTION = 34  # caption line above each card
INK = (236, 239, 244)
MUTED = (150, 160, 176)
SHEETS = ("contact-sheet.png", "before-after.png")
CHANGED = (255, 43, 120)  # changed pixels on the difference image
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


@dataclass
class PreviewCard:
    """One sample card as the design draws it, and as its current image shows it."""

    sample: Sample
    png: bytes | None = None
    error: str | None = None
    before: bytes | None = None  # the card's current image in the store, if any
    changed: float | None = None  # share of pixels that differ from `before`
    path: Path | None = None  # where its PNG was written

    @property
    def caption(self) -> str:
        card = self.sample.card
        name = card.inputs.get("player", {}).get("name") or "?"
        name = name if len(name) <= 40 else name[:39] + "…"
        tier = f"T{tier_of(card.variant)}"
        why = [part for part in self.sample.label.split(" · ") if part not in ("", tier)]
        return " · ".join(
            [f"{card.card_type} #{card.card_id}", name, f"{tier} variant {card.variant}", *why]
        )


@dataclass
class Preview:
    """What a preview wrote: the design's version, every card, and the sheets."""

    version: str
    cards: list[PreviewCard]
    sheets: list[Path] = field(default_factory=list)
    animated: list[Path] = field(default_factory=list)  # APNGs and sheets of their frames
    animation_errors: list[str] = field(default_factory=list)


def render_samples(
    pages: CardPages, samples: Sequence[Sample], chromium: str, befores: Sequence[bytes | None]
) -> list[PreviewCard]:
    """Each sample rendered in `pages`' design (a card that makes no card keeps its error), and
    compared with its current image where `befores` has one."""
    cards = [PreviewCard(s, before=b) for s, b in zip(samples, befores, strict=True)]
    markups = []
    for index, card in enumerate(cards):
        try:
            markups.append((index, pages.body(card.sample.card)))
        except (CardDataError, DesignError) as e:
            card.error = str(e)
    if markups:
        with BrowserPool(chromium, pages, pages=2) as pool:
            for result in pool.render_many(markups):
                cards[result.key].png, cards[result.key].error = result.png, result.error
    for card in cards:
        if card.png is not None and card.before is not None:
            card.changed = changed_share(card.before, card.png)
    return cards


def changed_share(before: bytes, after: bytes) -> float | None:
    """The share (0-1) of the card's pixels whose colour differs; None if `before` is no card
    image."""
    try:
        old, new = _rgb(before), _rgb(after)
    except InvalidPng:
        return None
    return float(np.any(old != new, axis=2).mean())


def write_preview(out: Path, version: str, cards: list[PreviewCard]) -> Preview:
    """Each card's PNG, the contact sheet and, where cards have a current image, the
    before/after sheet, into `out`."""
    preview = Preview(version, cards)
    (out / "cards").mkdir(parents=True, exist_ok=True)
    # An earlier preview's files would pass for this one's.
    for old in [*(out / "cards").glob("*.png"), *(out / name for name in SHEETS)]:
        old.unlink(missing_ok=True)
    drawn = []
    for index, card in enumerate(cards):
        if card.png is None:
            continue
        c = card.sample.card
        card.path = out / "cards" / f"{index + 1:02d}-{c.card_type}-{c.card_id}-v{c.variant}.png"
        card.path.write_bytes(card.png)
        drawn.append(card)
    if drawn:
        sheet = out / SHEETS[0]
        sheet.write_bytes(contact_sheet([(c.caption, c.png) for c in drawn]))  # type: ignore[misc]
        preview.sheets.append(sheet)
    compared = [c for c in drawn if c.changed is not None]
    if compared:
        sheet = out / SHEETS[1]
        sheet.write_bytes(before_after_sheet(compared))
        preview.sheets.append(sheet)
    return preview


def contact_sheet(cards: Sequence[tuple[str, bytes]], columns: int = COLUMNS) -> bytes:
    """Cards at full size in a grid, each under its caption, as a PNG."""
    images = [(caption, _image(png)) for caption, png in cards]
    return _sheet([[(caption, image)] for caption, image in images], columns)


def before_after_sheet(cards: Sequence[PreviewCard]) -> bytes:
    """A row per card: its current image, the new one, and the pixels that changed."""
    rows = []
    for card in cards:
        before, after = _image(card.before), _image(card.png)  # type: ignore[arg-type]
        share = f"{card.changed:.1%} of pixels changed"
        rows.append(
            [
                (f"before · {card.caption}", before),
                (f"after · {share}", after),
                ("difference", _difference(before, after)),
            ]
        )
    return _sheet(rows, 1)


def _sheet(cells: list[list[tuple[str, Image.Image]]], columns: int) -> bytes:
    """Groups of captioned card images laid out `columns` groups to a row."""
    per_group = max(len(group) for group in cells)
    across = min(columns, len(cells)) * per_group
    rows = -(-len(cells) // columns)
    cell_w, cell_h = WIDTH + GAP, CAPTION + HEIGHT + GAP
    sheet = Image.new("RGB", (GAP + across * cell_w, GAP + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(20)
    for index, group in enumerate(cells):
        row, column = divmod(index, columns)
        for part, (caption, image) in enumerate(group):
            x = GAP + (column * per_group + part) * cell_w
            y = GAP + row * cell_h
            draw.text((x, y + 4), _fit(draw, caption, font), fill=INK if part == 0 else MUTED,
                      font=font)  # fmt: skip
            sheet.paste(image, (x, y + CAPTION))
    # The card codec: several times faster than Pillow's PNG encoder on flat-colour cards.
    return encode_png(np.asarray(sheet), sheet.width, sheet.height)


def _difference(before: Image.Image, after: Image.Image) -> Image.Image:
    """The new card faded, with every changed pixel in one loud colour."""
    old, new = np.asarray(before), np.asarray(after)
    faded = new // 4 + 191  # a quarter of the colour over white
    faded[np.any(old != new, axis=2)] = CHANGED
    return Image.fromarray(faded, "RGB")


def _rgb(png: bytes) -> np.ndarray:
    pixels = decode_png(png)
    channels = pixels.shape[1] // WIDTH
    return pixels.reshape(HEIGHT, WIDTH, channels)[:, :, :3]


def _image(png: bytes) -> Image.Image:
    try:
        return Image.fromarray(np.ascontiguousarray(_rgb(png)), "RGB")
    except InvalidPng:
        with Image.open(io.BytesIO(png)) as image:  # not a card-sized PNG: shown as it is
            return image.convert("RGB").resize(CARD_SIZE)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path in FONT_FILES:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int = WIDTH) -> str:
    """`text` cut to fit one card's width."""
    text = re.sub(r"\s+", " ", text)
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…"
    return text


def render_animated_samples(
    pages: CardPages, samples: Sequence[Sample], chromium: str, out: Path
) -> tuple[list[Path], list[str]]:
    """The samples that animate in `pages`' design, each written into `out` as its APNG
    (`NN-<type>-<id>-v<variant>-animated.png`, which browsers play) and a sheet of its frames
    (`...-frames.png`): the paths written, and the errors of the cards that failed."""
    animated = [(i, s, pages.animation(s.card)) for i, s in enumerate(samples)]
    animated = [(i, s, a) for i, s, a in animated if a is not None]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    failed: list[str] = []
    with BrowserPool(chromium, pages, pages=2) as pool:
        items = [(i, pages.body(s.card), a) for i, s, a in animated]
        results = {r.key: r for r in pool.render_animated(items)}
    for index, sample, animation in animated:
        result = results[index]
        if result.png is None:
            failed.append(f"{sample.label} {sample.card.label}: {result.error}")
            continue
        c = sample.card
        stem = f"{index + 1:02d}-{c.card_type}-{c.card_id}-v{c.variant}"
        written.append(out / f"{stem}-animated.png")
        written[-1].write_bytes(result.png)
        written.append(out / f"{stem}-frames.png")
        written[-1].write_bytes(frames_sheet(result.png, animation))
    return written, failed


def frames_sheet(apng: bytes, animation: Animation, margin: int = 24) -> bytes:
    """Every frame of an animated card, one under the other: its region and `margin` pixels of
    the card around it, captioned with the frame's number and its time in the cycle."""
    frames = decode_apng(apng)
    x, y, w, h = animation.region
    left, top = max(0, x - margin), max(0, y - margin)
    right, bottom = min(WIDTH, x + w + margin), min(HEIGHT, y + h + margin)
    cell_h = CAPTION + bottom - top + GAP
    sheet = Image.new("RGB", (GAP * 2 + right - left, GAP + len(frames) * cell_h), BACKGROUND)
    draw, font = ImageDraw.Draw(sheet), _font(20)
    for i, (frame, seek) in enumerate(zip(frames, animation.seeks_ms, strict=True)):
        at = GAP + i * cell_h
        caption = f"frame {i} · {seek:.0f} ms of {animation.cycle_ms} ms"
        draw.text((GAP, at + 4), caption, fill=INK if i == 0 else MUTED, font=font)
        crop = np.ascontiguousarray(frame[top:bottom, left:right])
        sheet.paste(Image.fromarray(crop, "RGB"), (GAP, at + CAPTION))
    return encode_png(np.asarray(sheet), sheet.width, sheet.height)


def summary_lines(preview: Preview) -> Iterable[str]:
    """What the command prints: per card its PNG (or error) and changed share, then the sheets."""
    for card in preview.cards:
        where = str(card.path) if card.path else f"FAILED: {card.error}"
        changed = "" if card.changed is None else f"  ({card.changed:.2%} of pixels changed)"
        if card.changed is None and card.sample.card.image_url:
            changed = "  (its image_url names no object in the store)"
        yield f"  {card.caption}\n    {where}{changed}"
    for path in preview.sheets + preview.animated:
        yield f"wrote {path}"
    for error in preview.animation_errors:
        yield f"  animation FAILED: {error}"
