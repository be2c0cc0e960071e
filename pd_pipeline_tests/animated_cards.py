"""Frames like an animated card's (tests/test_apng.py and bench/apng.py): a real card under a
moving shimmer and a pulsing glow, as Chromium captures them with the animations seeked to
evenly spaced points of their cycle. Not noise: what changes between frames, and by how much,
is what the APNG's changed rectangles and their compression depend on."""

import math
from pathlib import Path

import numpy as np

from pd_pipeline.render.png import CARD_SIZE, decode_png

ROOT = Path(__file__).resolve().parent.parent
T3_CARD = ROOT / "pd_pipeline_tests" / "reference" / "battingcard.png"
T4_CARD = ROOT / "docs" / "pitchingcard-t4.png"
# The tiers' animations: frames, and each frame's delay in ms.
T3 = (12, 200)
T4 = (24, 250)

# The shimmer: a soft white band leaning 20 degrees from vertical, 160 px wide (a cosine
# profile, 35% white at its centre), swept from just off the left edge to just off the right
# over one cycle. The glow: a gold diamond (40 px from centre to tip) on the tier badge, top
# right, whose strength pulses between 15% and 60% once a cycle.
TILT_DEGREES = 20.0
BAND_PX = 160.0
BAND_PEAK = 0.35
GLOW_CENTRE = (1155, 30)
GLOW_RADIUS = 40.0
GLOW_COLOUR = (255, 215, 120)


def card_pixels(path: Path) -> np.ndarray:
    """A card PNG's pixels as (height, width, 3) uint8."""
    width, height = CARD_SIZE
    return decode_png(path.read_bytes()).reshape(height, width, 3)


def shimmer_frames(card: np.ndarray, count: int, band: bool = True) -> list[np.ndarray]:
    """`count` frames of `card` (height, width, 3) uint8 with the shimmer (unless not `band`)
    and the glow at evenly spaced points of their cycle; frame 0 has the band just off the card."""
    height, width, _ = card.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    slope = math.tan(math.radians(TILT_DEGREES))
    across = xs + (height - 1 - ys) * slope  # position across the band: leans right going up
    sweep = width + height * slope + BAND_PX
    gx, gy = GLOW_CENTRE
    glow_shape = np.clip(1 - (np.abs(xs - gx) + np.abs(ys - gy)) / GLOW_RADIUS, 0, 1) ** 1.5
    base = card.astype(np.float32)
    frames = []
    for i in range(count):
        centre = -BAND_PX / 2 + sweep * i / count
        distance = np.minimum(np.abs(across - centre) / (BAND_PX / 2), 1)
        light = BAND_PEAK * 0.5 * (1 + np.cos(np.pi * distance)) if band else 0 * distance
        out = base + (255 - base) * light[..., None]
        strength = 0.15 + 0.45 * 0.5 * (1 - math.cos(2 * math.pi * i / count))
        glow = (strength * glow_shape)[..., None]
        out += (np.array(GLOW_COLOUR, np.float32) - out) * glow
        frames.append(np.rint(out).astype(np.uint8))
    return frames
