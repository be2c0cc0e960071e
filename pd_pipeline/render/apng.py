"""Animated cards as APNGs: encode them compactly, verify them fast, and decode them for checks.

A tier's animation is N captures of the card (its paused CSS animations seeked to evenly spaced
points). Frame 0 is the PNG's default image (IDAT, with an fcTL before it so it is also the
animation's first frame): a viewer that does not animate shows it, and it is the static card,
pixel for pixel. Each later frame is stored as the bounding rectangle of the pixels that differ
from the frame before (fcTL x/y offsets; dispose NONE, blend SOURCE, so the canvas always holds
the previous frame), in one fdAT chunk. A frame equal to the one before still gets a 1x1
rectangle: the frame count and every delay stay exactly as captured.

The rows are written as png.py writes a card: filter type 0 and libdeflate at its level, by its
own helpers, so the bytes depend on the pixels only (same frames, same bytes). Filter type 0 is
also the smallest for the rectangles, measured on shimmer frames (pd_pipeline_tests/
animated_cards.py; `python -m bench.apng --filters`): against it, the rectangles of T3 / T4 take
Sub +8.9% / +0.3%, Up +7.0% / +9.5%, Average +25% / +18%, Paeth +5.2% / +3.5%, and libpng's
per-row adaptive choice +2.2% / +3.3%. A shimmer blends a smooth band into the card's flat colour
and text, and deflate still finds the card's repeats best unfiltered.

`encode_apng_whole` stores every frame whole (a full-canvas fdAT each), as Paper Dynasty's render
service does: the baseline the changed rectangles are measured against (`python -m bench.apng`).
What they save depends on where the card moves, since a frame has one rectangle: it must cover
the shimmer band where it was and where it is (a leaning band spans ~220 px more than its width)
and the pulsing badge glow far from it. On the shimmer frames that is ~2/3 of the canvas on
average and the APNG is 0.77 (T3) / 0.67 (T4) of the whole frames; the band alone gives 0.51 /
0.39, the glow alone 0.07.

Frames are (height, width, 3) uint8 RGB arrays; `png.decode_png(data).reshape(h, w, 3)` gives
one from a card PNG. An animated card changes only inside its region: `encode_apng_in` takes frame
0 whole and the region of each later frame, and writes the bytes `encode_apng` would write for
the whole frames without making them. `default_image` is the APNG's frame 0 as a plain PNG: the
static card's PNG, byte for byte.
"""

import operator
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import gcd
from typing import NamedTuple

import numpy as np

from pd_pipeline.render.png import (
    CARD_SIZE,
    NONE,
    InvalidPng,
    _assemble,
    _chunk,
    _chunks,
    _compress,
    _inflate_rows,
    _Png,
    _rows,
    _unfiltered_rows,
)

CHANNELS = 3  # RGB: cards are opaque
DISPOSE_NONE, DISPOSE_BACKGROUND, DISPOSE_PREVIOUS = 0, 1, 2
BLEND_SOURCE, BLEND_OVER = 0, 1
MAX_DELAY_MS = 0xFFFF  # delay_num is 16 bits; ms / 1000 in lowest terms always fits


class InvalidApng(InvalidPng):
    pass


class Region(NamedTuple):
    """Where a frame's pixels go on the canvas."""

    x: int
    y: int
    width: int
    height: int


_SAME = Region(0, 0, 1, 1)  # a frame equal to the one before: its top left pixel, again


@dataclass(frozen=True)
class ApngInfo:
    frames: int
    delays_ms: tuple[float, ...]  # delay_num / delay_den in ms: exact for whole milliseconds
    plays: int  # 0: loops forever
    regions: tuple[Region, ...]


def encode_apng(
    frames: Sequence[np.ndarray], delays_ms: int | Sequence[int], *, loops: int = 0
) -> bytes:
    """A looping APNG of `frames` ((height, width, 3) uint8 RGB, all one size): frame 0 whole as
    the default image, each later frame as the rectangle that changed. `delays_ms`: each frame's
    delay in whole ms, or one delay for all. `loops`: plays before stopping, 0 for ever."""
    return _encode(frames, delays_ms, loops, whole=False)


def encode_apng_in(
    first: np.ndarray,
    region: Region,
    patches: Sequence[np.ndarray],
    delays_ms: int | Sequence[int],
    *,
    loops: int = 0,
) -> bytes:
    """`encode_apng` of frames that differ from `first` only inside `region`: frame 0 is `first`,
    frame i is `first` with `patches[i - 1]` ((region height, region width, 3) uint8) over its
    region. Byte for byte what `encode_apng` makes of those frames whole."""
    height, width = _check_frames([first])
    x, y, w, h = region = Region(*region)
    if not (min(x, y) >= 0 and min(w, h) >= 1 and x + w <= width and y + h <= height):
        raise ValueError(f"{region} is not inside the {width}x{height} frames")
    for i, patch in enumerate(patches, 1):
        if not (isinstance(patch, np.ndarray) and patch.dtype == np.uint8):
            raise ValueError(f"the region of frame {i} is not a uint8 array")
        if patch.shape != (h, w, CHANNELS):
            raise ValueError(f"the region of frame {i} is {patch.shape}, not {(h, w, CHANNELS)}")
    corner = region.x == 0 and region.y == 0  # the pixel an unchanged frame stores, if inside

    def later() -> Iterator[tuple[Region, np.ndarray]]:
        previous = first[y : y + h, x : x + w]
        for patch in patches:
            changed = _changed(previous, patch)
            if changed is None:
                yield _SAME, (patch if corner else first)[:1, :1]
            else:
                cx, cy, cw, ch = changed
                yield Region(x + cx, y + cy, cw, ch), patch[cy : cy + ch, cx : cx + cw]
            previous = patch

    return _write(first, later(), 1 + len(patches), delays_ms, loops)


def encode_apng_whole(
    frames: Sequence[np.ndarray], delays_ms: int | Sequence[int], *, loops: int = 0
) -> bytes:
    """`encode_apng` with every frame stored whole (the baseline the rectangles are measured
    against); decodes to the same frames."""
    return _encode(frames, delays_ms, loops, whole=True)


def default_image(data: bytes) -> bytes:
    """The PNG a viewer that does not animate shows: frame 0 alone (header, IDAT, end). For our
    APNGs, the static card's PNG byte for byte. Raises InvalidApng for a broken APNG."""
    with _as_apng():
        header, idat = None, []
        for tag, _, start, end in _chunks(data):
            if tag == b"IHDR":
                header = data[start:end]
            elif tag == b"IDAT":
                idat.append(data[start:end])
        if header is None or not idat:
            raise InvalidApng("APNG has no header or no image data")
    return b"".join([data[:8], header, *idat, _chunk(b"IEND", b"")])


def verify_apng(
    data: bytes, size: tuple[int, int] = CARD_SIZE, frames: int | None = None
) -> ApngInfo:
    """Check a whole APNG (8-bit RGB, `size`, `frames` frames if given) without compositing it:
    signature, every chunk's CRC, acTL, the one sequence of fcTL and fdAT numbers, every frame's
    region inside the canvas and its data inflating to exactly its size with known row filters.
    Raise InvalidApng naming what is wrong."""
    with _as_apng():
        plays, parsed, _ = _read(data, size)
        if frames is not None and len(parsed) != frames:
            raise InvalidApng(f"APNG has {len(parsed)} frames, expected {frames}")
        for i, frame in enumerate(parsed):
            _inflate(frame, i)
    return ApngInfo(
        frames=len(parsed),
        delays_ms=tuple(frame.delay_ms for frame in parsed),
        plays=plays,
        regions=tuple(frame.region for frame in parsed),
    )


def decode_apng(data: bytes, size: tuple[int, int] = CARD_SIZE) -> list[np.ndarray]:
    """Every frame as shown, composited on the canvas: (height, width, 3) uint8 RGB arrays.

    Checks all that `verify_apng` checks. Any filter types and dispose ops are decoded; blending
    is SOURCE (OVER is the same for opaque RGB; tRNS transparency is refused)."""
    width, height = size
    with _as_apng():
        _, parsed, transparent = _read(data, size)
        canvas = np.zeros((height, width, CHANNELS), np.uint8)  # transparent black, as specified
        shown = []
        for i, frame in enumerate(parsed):
            if frame.blend == BLEND_OVER and transparent:
                raise InvalidApng("decode_apng does not blend tRNS transparency (blend op OVER)")
            x, y, w, h = frame.region
            area = canvas[y : y + h, x : x + w]
            saved = area.copy() if frame.dispose == DISPOSE_PREVIOUS else None
            area[...] = _pixels(frame, i).reshape(h, w, CHANNELS)
            shown.append(canvas.copy())
            # The spec: a first frame's PREVIOUS is BACKGROUND (there is nothing before it).
            if frame.dispose == DISPOSE_BACKGROUND or (saved is not None and i == 0):
                area[...] = 0
            elif saved is not None:
                area[...] = saved
    return shown


# ---------------------------------------------------------------------------------------------


def _encode(
    frames: Sequence[np.ndarray], delays_ms: int | Sequence[int], loops: int, whole: bool
) -> bytes:
    height, width = _check_frames(frames)
    canvas = Region(0, 0, width, height)

    def later() -> Iterator[tuple[Region, np.ndarray]]:
        for i in range(1, len(frames)):
            changed = canvas if whole else _changed(frames[i - 1], frames[i])
            x, y, w, h = changed or _SAME  # nothing changed: a frame all the same
            yield Region(x, y, w, h), frames[i][y : y + h, x : x + w]

    return _write(frames[0], later(), len(frames), delays_ms, loops)


def _write(
    first: np.ndarray,
    later: Iterator[tuple[Region, np.ndarray]],
    count: int,
    delays_ms: int | Sequence[int],
    loops: int,
) -> bytes:
    """The APNG: `first` whole, then each later frame's (region, its pixels)."""
    height, width, _ = first.shape
    delays = _delays(delays_ms, count)
    if not 0 <= loops < 2**31:
        raise ValueError(f"loops must be 0 (for ever) to 2**31 - 1, not {loops}")
    sequence = iter(range(2 * count))  # fcTL and fdAT share one sequence
    before = [
        _chunk(b"acTL", struct.pack(">II", count, loops)),
        _frame_control(next(sequence), Region(0, 0, width, height), delays[0]),
    ]
    after = []
    for i, (region, pixels) in enumerate(later, 1):
        rows = _rows(pixels, region.height, region.width * CHANNELS)
        after.append(_frame_control(next(sequence), region, delays[i]))
        after.append(_chunk(b"fdAT", struct.pack(">I", next(sequence)) + _compress(rows)))
    idat = _compress(_rows(first, height, width * CHANNELS))
    return _assemble(width, height, CHANNELS, idat, (before, after))


def _check_frames(frames: Sequence[np.ndarray]) -> tuple[int, int]:
    if len(frames) == 0:
        raise ValueError("an APNG needs at least one frame")
    shape = np.shape(frames[0])
    for i, frame in enumerate(frames):
        if not (
            isinstance(frame, np.ndarray)
            and frame.dtype == np.uint8
            and frame.ndim == 3
            and frame.shape[2] == CHANNELS
        ):
            raise ValueError(f"frame {i} is not a (height, width, 3) uint8 RGB array")
        if frame.shape != shape:
            raise ValueError(f"frame {i} is {frame.shape}, frame 0 is {shape}")
    if not (shape[0] and shape[1]):
        raise ValueError(f"frames are empty ({shape})")
    return shape[0], shape[1]


def _delays(delays_ms: int | Sequence[int], count: int) -> list[int]:
    if isinstance(delays_ms, int | np.integer):
        delays_ms = [delays_ms] * count
    if len(delays_ms) != count:
        raise ValueError(f"{len(delays_ms)} delays for {count} frames")
    delays = [operator.index(delay) for delay in delays_ms]  # whole ms: the fraction is exact
    for delay in delays:
        if not 0 <= delay <= MAX_DELAY_MS:
            raise ValueError(f"a delay is {delay} ms: 0 to {MAX_DELAY_MS} ms")
    return delays


def _frame_control(sequence: int, region: Region, delay_ms: int) -> bytes:
    common = gcd(delay_ms, 1000)  # 200 ms: 1/5 s, 250 ms: 1/4 s
    x, y, w, h = region
    body = struct.pack(
        ">IIIIIHHBB",
        sequence,
        w,
        h,
        x,
        y,
        delay_ms // common,
        1000 // common,
        DISPOSE_NONE,
        BLEND_SOURCE,
    )
    return _chunk(b"fcTL", body)


def _changed(previous: np.ndarray, frame: np.ndarray) -> Region | None:
    """The bounding rectangle of the pixels of `frame` that differ from `previous`; None if
    none do (the frame is then stored as _SAME, to keep its delay)."""
    height, width, _ = frame.shape
    diff = np.not_equal(previous, frame).reshape(height, width * CHANNELS)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    columns = np.flatnonzero(diff[top:bottom].any(axis=0))
    left, right = int(columns[0]) // CHANNELS, int(columns[-1]) // CHANNELS + 1
    return Region(left, top, right - left, bottom - top)


@dataclass
class _Frame:
    region: Region
    delay_ms: float
    dispose: int
    blend: int
    data: list[memoryview] = field(default_factory=list)  # its zlib stream, chunk by chunk


@contextmanager
def _as_apng() -> Iterator[None]:
    """png.py's helpers raise InvalidPng (bad CRC, truncated file); callers catch InvalidApng."""
    try:
        yield
    except InvalidApng:
        raise
    except InvalidPng as e:
        raise InvalidApng(str(e)) from e


def _read(data: bytes, size: tuple[int, int]) -> tuple[int, list[_Frame], bool]:
    """Check an APNG's chunks: (plays, frames with their compressed data, has tRNS)."""
    plays = count = None
    frames: list[_Frame] = []
    sequence = 0
    idat = "before"  # then "in", then "after": IDAT chunks must be consecutive
    transparent = False
    for n, (tag, body, _, _) in enumerate(_chunks(data)):
        if n == 0:
            if tag != b"IHDR":
                raise InvalidApng(f"APNG starts with a {tag!r} chunk, not its header")
            _check_header(body, size)
        elif tag == b"acTL":
            if count is not None or idat != "before" or len(body) != 8:
                raise InvalidApng("APNG needs one 8-byte acTL chunk, before its image data")
            count, plays = struct.unpack(">II", body)
            if count == 0:
                raise InvalidApng("APNG's acTL says it has no frames")
        elif tag == b"fcTL":
            if frames and not frames[-1].data:
                raise InvalidApng(f"APNG frame {len(frames) - 1} has no image data")
            sequence = _sequence(body, sequence, f"frame {len(frames)}'s fcTL")
            frame = _frame(body, len(frames), size)
            if idat == "before" and frame.region != Region(0, 0, *size):
                raise InvalidApng(f"APNG's first frame is {frame.region}, not the whole canvas")
            idat = "after" if idat == "in" else idat
            frames.append(frame)
        elif tag == b"IDAT":
            if count is None:
                raise InvalidApng("not an APNG: no acTL chunk before the image data")
            if not frames:
                raise InvalidApng("APNG's default image is not its first frame (no fcTL before it)")
            if idat == "after":
                raise InvalidApng("APNG's IDAT chunks are not consecutive")
            idat = "in"
            frames[0].data.append(body)
        elif tag == b"fdAT":
            if idat == "before" or len(frames) < 2:
                raise InvalidApng("APNG has an fdAT chunk with no fcTL after the image data")
            sequence = _sequence(body, sequence, f"frame {len(frames) - 1}'s fdAT")
            frames[-1].data.append(body[4:])
        else:
            transparent = transparent or tag == b"tRNS"
            idat = "after" if idat == "in" else idat
    if count is None:
        raise InvalidApng("not an APNG: no acTL chunk")
    if idat == "before":
        raise InvalidApng("APNG has no image data (IDAT)")
    if not frames[-1].data:
        raise InvalidApng(f"APNG frame {len(frames) - 1} has no image data")
    if len(frames) != count:
        raise InvalidApng(f"APNG's acTL says {count} frames, it has {len(frames)}")
    return plays, frames, transparent


def _check_header(body: memoryview, size: tuple[int, int]) -> None:
    if len(body) != 13:
        raise InvalidApng("APNG header chunk has the wrong length")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", body
    )
    if (width, height) != size:
        raise InvalidApng(f"APNG is {width}x{height}, expected {size[0]}x{size[1]}")
    if (depth, colour_type, compression, filtering, interlace) != (8, 2, 0, 0, 0):
        raise InvalidApng(
            f"APNG is not 8-bit RGB, non-interlaced (bit depth {depth}, colour type "
            f"{colour_type}, interlace {interlace})"
        )


def _sequence(body: memoryview, expected: int, what: str) -> int:
    """The sequence number after `body`'s, which must be `expected`."""
    if len(body) < 4:
        raise InvalidApng(f"APNG {what} has no sequence number")
    (number,) = struct.unpack_from(">I", body)
    if number != expected:
        raise InvalidApng(f"APNG {what} has sequence number {number}, expected {expected}")
    return expected + 1


def _frame(body: memoryview, i: int, size: tuple[int, int]) -> _Frame:
    if len(body) != 26:
        raise InvalidApng(f"APNG frame {i}'s fcTL chunk has the wrong length")
    _, w, h, x, y, num, den, dispose, blend = struct.unpack(">IIIIIHHBB", body)
    region = Region(x, y, w, h)
    if not (w and h and x + w <= size[0] and y + h <= size[1]):
        raise InvalidApng(f"APNG frame {i}'s region {region} is not inside the {size} canvas")
    if dispose > DISPOSE_PREVIOUS or blend > BLEND_OVER:
        raise InvalidApng(f"APNG frame {i} has an unknown dispose ({dispose}) or blend ({blend})")
    return _Frame(region, num * 1000 / (den or 100), dispose, blend)  # den 0 means 1/100 s


def _inflate(frame: _Frame, i: int) -> np.ndarray:
    data = frame.data[0] if len(frame.data) == 1 else b"".join(frame.data)
    _, _, w, h = frame.region
    return _inflate_rows(data, w, h, CHANNELS, f"APNG frame {i}")


def _pixels(frame: _Frame, i: int) -> np.ndarray:
    """A frame's pixels (h, w * 3), its filters undone."""
    rows = _inflate(frame, i)
    if (rows[:, 0] == NONE).all():
        return rows[:, 1:]  # ours: filter type 0
    # Other filters (other encoders' APNGs): png.py undoes them, through Pillow when it has to,
    # given the frame as a PNG of its own.
    _, _, w, h = frame.region
    alone = _assemble(w, h, CHANNELS, b"".join(frame.data))
    return _unfiltered_rows(_Png(w, h, CHANNELS, rows, [], []), alone, (w, h))[:, 1:]
