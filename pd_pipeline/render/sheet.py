"""Contact sheets: a few cards, downscaled into one small WebP image (an animated card: a small
looping WebP).

Sheets travel inside Dagster metadata (every byte lands in the event log), so a sheet is kept
under a byte budget.
"""

import io
import itertools
import math
from collections.abc import Sequence

from PIL import Image, ImageSequence

COLUMNS = 3
MAX_CARDS = 6  # 3 x 2
GAP = 8
BACKGROUND = (30, 34, 42)
# About 43 KB once base64-encoded: small enough for the event log, sharp enough to recognise cards.
MAX_BYTES = 32_000
# (thumbnail width, WebP quality), tried in order until the sheet fits MAX_BYTES.
ATTEMPTS = ((300, 50), (270, 45), (240, 40), (180, 40))


def pick_samples(per_cardset: Sequence[Sequence[bytes]], limit: int = MAX_CARDS) -> list[bytes]:
    """Up to `limit` PNGs taken in turn from each cardset, so a multi-cardset run shows them all,
    and spread over the samples (a player's variants come one after another)."""
    rounds = itertools.zip_longest(*per_cardset)
    pngs = [png for group in rounds for png in group if png is not None]
    if len(pngs) <= limit:
        return pngs
    return [pngs[i * len(pngs) // limit] for i in range(limit)]


def contact_sheet(
    pngs: Sequence[bytes], columns: int = COLUMNS, limit: int = MAX_CARDS
) -> tuple[bytes, int] | None:
    """A WebP grid of the first `limit` cards, `columns` to a row, and how many it shows (those
    that decode), or None when none does."""
    cards = [card for card in map(_decode, pngs[:limit]) if card is not None]
    if not cards:
        return None
    sheet = b""
    for width, quality in ATTEMPTS:
        buffer = io.BytesIO()
        _grid(cards, width, columns).save(buffer, "WEBP", quality=quality, method=4)
        sheet = buffer.getvalue()
        if len(sheet) <= MAX_BYTES:
            break
    return sheet, len(cards)


def _decode(png: bytes) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(png)) as image:
            return image.convert("RGB")
    except Exception:  # Pillow raises many types for broken data; a preview skips such a card
        return None


def _grid(cards: list[Image.Image], width: int, columns: int) -> Image.Image:
    height = round(width * cards[0].height / cards[0].width)
    columns = min(columns, len(cards))
    rows = math.ceil(len(cards) / columns)
    sheet = Image.new(
        "RGB", (columns * (width + GAP) + GAP, rows * (height + GAP) + GAP), BACKGROUND
    )
    for index, card in enumerate(cards):
        thumbnail = card.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        row, column = divmod(index, columns)
        sheet.paste(thumbnail, (GAP + column * (width + GAP), GAP + row * (height + GAP)))
    return sheet


def animated_thumbnail(apng: bytes) -> bytes | None:
    """An animated card as a small looping WebP (its frames downscaled, each shown as long as in
    the APNG), under the sheets' byte budget; None when the APNG does not decode."""
    try:
        with Image.open(io.BytesIO(apng)) as image:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(image):
                frames.append(frame.convert("RGB"))
                durations.append(frame.info.get("duration", 100))
    except Exception:  # as _decode: a preview skips what does not decode
        return None
    thumbnail = b""
    for width, quality in ATTEMPTS:
        height = round(width * frames[0].height / frames[0].width)
        small = [f.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0)
                 for f in frames]  # fmt: skip
        buffer = io.BytesIO()
        small[0].save(buffer, "WEBP", save_all=True, append_images=small[1:], duration=durations,
                      loop=0, quality=quality, method=4)  # fmt: skip
        thumbnail = buffer.getvalue()
        if len(thumbnail) <= MAX_BYTES:
            break
    return thumbnail
