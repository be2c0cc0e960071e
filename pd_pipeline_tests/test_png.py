"""The PNG step between Chromium and the store: lossless, smaller, deterministic, and strict."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pd_pipeline.render.png import (
    InvalidPng,
    decode_png,
    encode_png,
    optimise_png,
    split_png,
    verify_png,
)

SIZE = (120, 60)


def _card_like(seed: int = 0, channels: int = 3) -> np.ndarray:
    """Flat colour, a gradient, and noisy 'text': what cards are made of."""
    rng = np.random.default_rng(seed)
    h, w = SIZE[1], SIZE[0]
    image = np.zeros((h, w, channels), np.uint8)
    image[..., 0] = np.linspace(20, 230, w, dtype=np.uint8)[None, :]
    image[..., 1] = 40
    image[..., 2] = np.linspace(200, 60, h, dtype=np.uint8)[:, None]
    image[20:40, 10:110, :3] = rng.integers(0, 256, (20, 100, 3), dtype=np.uint8)
    if channels == 4:
        image[..., 3] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    return image


def _png_with_filter(pixels: np.ndarray, filter_type: int, level: int = 1) -> bytes:
    """A PNG whose every row uses `filter_type` (0 None, 2 Up), as Chromium's fast mode does."""
    h, w, c = pixels.shape
    rows = pixels.reshape(h, w * c).astype(np.int16)
    if filter_type == 2:
        rows = rows - np.vstack([np.zeros((1, w * c), np.int16), rows[:-1]])
    data = np.hstack([np.full((h, 1), filter_type, np.int16), rows % 256]).astype(np.uint8)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", w, h, 8, {3: 2, 4: 6}[c], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(data.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def _pillow_png(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("filter_type", [0, 2])
def test_optimise_keeps_every_pixel(channels, filter_type):
    # (Sizes are compared on real cards, against Chromium's own PNGs: test_fast_path.py.)
    pixels = _card_like(channels=channels)
    source = _png_with_filter(pixels, filter_type, level=1)
    optimised = optimise_png(source, SIZE)
    assert (_pixels(optimised) == _pixels(source)).all()
    verify_png(optimised, SIZE)


def test_optimise_handles_pngs_with_any_filters_and_keeps_other_kinds_as_they_are():
    pixels = _card_like()
    adaptive = _pillow_png(Image.fromarray(pixels), compress_level=0)  # Pillow filters per row
    optimised = optimise_png(adaptive, SIZE)
    assert (_pixels(optimised) == _pixels(adaptive)).all() and len(optimised) < len(adaptive)
    palette = _pillow_png(Image.fromarray(pixels).quantize(16))
    grey = _pillow_png(Image.fromarray(pixels[..., 0]))
    for other in (palette, grey):  # not Chromium's kinds: checked, kept as they are
        assert optimise_png(other, SIZE) == other
        with pytest.raises(InvalidPng, match="expected 10x10"):
            optimise_png(other, (10, 10))


def test_the_same_pixels_always_give_the_same_bytes():
    pixels = _card_like(seed=3)
    first = optimise_png(_png_with_filter(pixels, 2), SIZE)
    assert optimise_png(_png_with_filter(pixels, 2, level=9), SIZE) == first
    assert optimise_png(_png_with_filter(pixels, 0), SIZE) == first
    assert encode_png(pixels, *SIZE) == first
    assert optimise_png(first, SIZE) == first  # a fixed point


def test_decode_matches_pillow():
    pixels = _card_like(seed=5)
    for png in (_png_with_filter(pixels, 2), _pillow_png(Image.fromarray(pixels))):
        assert (decode_png(png, SIZE).reshape(SIZE[1], SIZE[0], 3) == pixels).all()


def _corrupt(png: bytes, offset_in_idat: int, fix_crc: bool) -> bytes:
    start = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[start : start + 4])
    body = bytearray(png[start + 8 : start + 8 + length])
    body[offset_in_idat] ^= 0xFF
    crc = png[start + 8 + length : start + 12 + length]
    if fix_crc:
        crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(body)))
    return png[: start + 8] + bytes(body) + crc + png[start + 12 + length :]


def test_verify_rejects_broken_pngs_with_a_reason():
    good = encode_png(_card_like(), *SIZE)
    verify_png(good, SIZE)
    bad_filter = bytearray(zlib.decompress(good[good.index(b"IDAT") + 4 : -16]))
    bad_filter[0] = 9
    cases = {
        "not a PNG": b"GIF89a" + good[6:],
        "truncated": good[: len(good) // 2],
        "fails its CRC": _corrupt(good, 40, fix_crc=False),
        "does not inflate": _corrupt(good, 40, fix_crc=True),
        "expected 10x10": good,
    }
    for reason, data in cases.items():
        with pytest.raises(InvalidPng, match=reason):
            verify_png(data, (10, 10) if reason == "expected 10x10" else SIZE)
    with pytest.raises(InvalidPng, match="unknown filter"):
        verify_png(_with_idat(good, zlib.compress(bytes(bad_filter))), SIZE)
    with pytest.raises(InvalidPng):
        optimise_png(_corrupt(good, 40, fix_crc=True), SIZE)


def _with_idat(png: bytes, idat: bytes) -> bytes:
    start = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[start : start + 4])
    chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat
    chunk += struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return png[:start] + chunk + png[start + 12 + length :]


@pytest.mark.parametrize("channels", [3, 4])
def test_a_capture_of_several_cards_is_cut_into_each_cards_own_png(channels):
    cards = [_card_like(seed, channels) for seed in range(3)]
    capture = _png_with_filter(np.concatenate(cards), filter_type=2)  # as Chromium makes it
    pieces = split_png(capture, 3, SIZE)
    assert pieces == [optimise_png(_png_with_filter(card, 2), SIZE) for card in cards]
    for piece, card in zip(pieces, cards, strict=True):
        assert (decode_png(piece, SIZE) == card.reshape(SIZE[1], -1)).all()


def test_a_capture_that_is_not_whole_cards_is_refused():
    capture = _png_with_filter(np.concatenate([_card_like(0), _card_like(1)]), filter_type=2)
    with pytest.raises(InvalidPng, match=r"PNG is 120x120, expected 120x180"):
        split_png(capture, 3, SIZE)
    with pytest.raises(InvalidPng, match="fails its CRC"):
        split_png(capture[:-20] + b"\0" + capture[-19:], 2, SIZE)
