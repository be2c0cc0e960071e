"""PNGs between Chromium and the store: verify them, and re-encode them losslessly and smaller.

Chromium's default PNG encoder (zlib level 6, adaptive filters) costs about 20 ms of CPU per
card in the browser; with `optimizeForSpeed` it costs little but writes files ~30% bigger (every
row Up-filtered, fast deflate). A card is mostly flat colour and anti-aliased text, which deflate
compresses best *unfiltered*: an RGB triple repeating at distance 3 is a cheap match, while
filters turn those runs into noise. So the renderer asks Chromium for the fast encoding and
`optimise_png` re-encodes it in a thread: inflate, undo the Up filter (numpy), then filter type 0
and libdeflate at level 6. That is ~11 ms of CPU, pixel-identical, ~13% smaller than Chromium's
default PNG of the same card, and deterministic (same pixels, same bytes: URL tokens are a hash
of the bytes, and identical bytes are never uploaded twice).

`verify_png` checks a PNG completely (signature, every chunk's CRC, the header's size, the
compressed stream inflating to exactly the image's size with valid row filters) without paying
for a Pillow decode when the PNG is a plain 8-bit RGB(A) one like ours; anything else is fully
decoded by Pillow.
"""

import io
import struct
from collections.abc import Iterator

import deflate
import numpy as np
from PIL import Image

CARD_SIZE = (1200, 600)
SIGNATURE = b"\x89PNG\r\n\x1a\n"
# libdeflate level: 6 is the knee (5 is ~10% faster but can exceed Chromium's default size on
# busy cards; 7-8 gain 1% for 30-120% more time). Changing it changes every card's bytes.
DEFLATE_LEVEL = 6
# PNG colour types this module decodes itself: 8-bit truecolour, without and with alpha.
CHANNELS = {2: 3, 6: 4}
COLOUR_TYPE = {channels: colour_type for colour_type, channels in CHANNELS.items()}
CRITICAL = (b"IHDR", b"IDAT", b"IEND")
NONE, UP = 0, 2  # PNG row filter types


class InvalidPng(ValueError):
    pass


class _Png:
    """A parsed PNG of the kind we decode ourselves: header, ancillary chunks and rows."""

    def __init__(self, width, height, channels, rows, before, after):
        self.width, self.height, self.channels = width, height, channels
        self.rows = rows  # (height, 1 + width * channels) uint8: filter byte, filtered bytes
        self.before, self.after = before, after  # ancillary chunks around IDAT, kept verbatim


def verify_png(data: bytes, size: tuple[int, int] = CARD_SIZE) -> None:
    """Check the whole image (not just the header) and its size; raise InvalidPng if not."""
    if _parse(data, size) is None:
        _pillow_pixels(data, size)


def optimise_png(data: bytes, size: tuple[int, int] = CARD_SIZE) -> bytes:
    """The same pixels as `data` in our compact encoding, verifying `data` on the way.

    The bytes depend on the pixels only (not on how `data` was encoded), so the same card always
    gives the same bytes. Kinds of PNG Chromium does not make (interlaced, palette, grey,
    16-bit) are checked and returned as they are.
    """
    return split_png(data, 1, size)[0]


def split_png(data: bytes, cards: int, size: tuple[int, int] = CARD_SIZE) -> list[bytes]:
    """One PNG per card of `data`, a capture of `cards` frames of `size` one above the other,
    each as `optimise_png` gives it: a card's bytes are those of the card captured alone.

    The whole capture is checked; its rows are unfiltered once and cut into bands of a card's
    height, each encoded on its own (ancillary chunks go with every card)."""
    width, height = size
    whole = (width, height * cards)
    png = _parse(data, whole)
    if png is None:
        _pillow_pixels(data, whole)
        if cards > 1:
            raise InvalidPng("only an 8-bit RGB(A) capture can be cut into cards")
        return [data]
    rows = _unfiltered_rows(png, data, whole)
    card = _Png(width, height, png.channels, None, png.before, png.after)
    return [
        _encode_rows(rows[i * height : (i + 1) * height], card, (png.before, png.after))
        for i in range(cards)
    ]


def encode_png(pixels: np.ndarray, width: int, height: int, channels: int = 3) -> bytes:
    """An 8-bit RGB (3 channels) or RGBA (4) PNG of `pixels` (height rows of width*channels
    bytes), encoded as `optimise_png` does."""
    rows = _rows(pixels, height, width * channels)
    return _encode_rows(rows, _Png(width, height, channels, rows, [], []), ([], []))


def decode_png(data: bytes, size: tuple[int, int] = CARD_SIZE) -> np.ndarray:
    """The pixels of an 8-bit RGB(A) PNG as (height, width * channels) uint8, to compare images."""
    png = _parse(data, size)
    if png is None:
        pixels = _pillow_pixels(data, size)
        if pixels is None:
            raise InvalidPng("decode_png returns 8-bit RGB(A) pixels only")
        return pixels
    return _unfiltered_rows(png, data, size)[:, 1:]


# ---------------------------------------------------------------------------------------------


def _encode_rows(rows: np.ndarray, png: _Png, ancillary: tuple[list[bytes], list[bytes]]) -> bytes:
    return _assemble(png.width, png.height, png.channels, _compress(rows), ancillary)


def _rows(pixels: np.ndarray, height: int, row_bytes: int) -> np.ndarray:
    """`pixels` as PNG rows: filter type 0 (see above for why), then the row's bytes."""
    rows = np.empty((height, 1 + row_bytes), np.uint8)
    rows[:, 0] = NONE
    rows[:, 1:] = pixels.reshape(height, row_bytes)
    return rows


def _compress(rows: np.ndarray) -> bytes:
    return deflate.zlib_compress(rows, DEFLATE_LEVEL)


def _assemble(
    width: int,
    height: int,
    channels: int,
    idat: bytes,
    ancillary: tuple[list[bytes], list[bytes]] = ([], []),
) -> bytes:
    """A PNG file: the header, `ancillary` chunks before and after the compressed `idat`."""
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPE[channels], 0, 0, 0)
    before, after = ancillary
    return b"".join(
        [
            SIGNATURE,
            _chunk(b"IHDR", header),
            *before,
            _chunk(b"IDAT", idat),
            *after,
            _chunk(b"IEND", b""),
        ]
    )


def _chunk(tag: bytes, body) -> bytes:
    crc = deflate.crc32(body, deflate.crc32(tag))
    return b"".join([struct.pack(">I", len(body)), tag, body, struct.pack(">I", crc)])


def _chunks(data: bytes) -> Iterator[tuple[bytes, memoryview, int, int]]:
    """(tag, body, start, end) of every chunk, CRCs checked, up to IEND."""
    if not data.startswith(SIGNATURE):
        raise InvalidPng(f"not a PNG (starts with {bytes(data[:8])!r})")
    view, pos, end = memoryview(data), len(SIGNATURE), len(data)
    while pos + 12 <= end:
        length, tag = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            break
        body = view[pos + 8 : body_end]
        (crc,) = struct.unpack_from(">I", data, body_end)
        if deflate.crc32(body, deflate.crc32(tag)) != crc:
            raise InvalidPng(f"PNG chunk {tag!r} fails its CRC")
        yield tag, body, pos, body_end + 4
        if tag == b"IEND":
            return
        pos = body_end + 4
    raise InvalidPng("PNG is truncated (no IEND chunk)")


def _parse(data: bytes, size: tuple[int, int]) -> _Png | None:
    """Check and inflate an 8-bit RGB(A) PNG; None for other kinds (Pillow's to check)."""
    header = None
    idat: list[memoryview] = []
    before: list[bytes] = []
    after: list[bytes] = []
    for tag, body, start, end in _chunks(data):
        if tag == b"IHDR":
            if len(body) != 13:
                raise InvalidPng("PNG header chunk has the wrong length")
            header = struct.unpack(">IIBBBBB", body)
            width, height = header[:2]
            if (width, height) != size:
                raise InvalidPng(f"PNG is {width}x{height}, expected {size[0]}x{size[1]}")
        elif tag == b"IDAT":
            idat.append(body)
        elif tag not in CRITICAL:
            (after if idat else before).append(bytes(data[start:end]))
    if header is None:
        raise InvalidPng("PNG has no header chunk")
    width, height, depth, colour_type, compression, filtering, interlace = header
    if depth != 8 or colour_type not in CHANNELS or (compression, filtering, interlace) != (0,) * 3:
        return None
    if not idat:
        raise InvalidPng("PNG has no image data")
    channels = CHANNELS[colour_type]
    rows = _inflate_rows(b"".join(idat), width, height, channels)
    return _Png(width, height, channels, rows, before, after)


def _inflate_rows(
    compressed, width: int, height: int, channels: int, what: str = "PNG"
) -> np.ndarray:
    """The filtered rows (height, 1 + width * channels) of a zlib stream, checked: it inflates to
    exactly that size and every row's filter type is known. Errors name `what` was inflated."""
    row_bytes = 1 + width * channels
    try:
        raw = deflate.zlib_decompress(compressed, row_bytes * height)
    except deflate.DeflateError as e:
        raise InvalidPng(f"{what} image data does not inflate: {e}") from e
    if len(raw) != row_bytes * height:
        raise InvalidPng(f"{what} image data is {len(raw)} bytes, expected {row_bytes * height}")
    rows = np.frombuffer(raw, np.uint8).reshape(height, row_bytes)  # writable: a bytearray
    if rows[:, 0].max() > 4:
        raise InvalidPng(f"{what} has a row with an unknown filter type")
    return rows


def _unfiltered_rows(png: _Png, data: bytes, size: tuple[int, int]) -> np.ndarray:
    """`png.rows` with every row's filter undone (in place when we can) and filter type 0."""
    rows, filters = png.rows, png.rows[:, 0]
    if (filters == UP).all():
        # Chromium's fast encoding: each row adds the one above. Row by row in place is ~8x
        # faster than np.cumsum over the (strided) pixel columns; column 0 is reset below.
        for y in range(1, png.height):
            np.add(rows[y - 1], rows[y], out=rows[y])
    elif not (filters == NONE).all():
        # Other filters depend on the pixel to the left: Pillow's C decoder undoes them.
        rows[:, 1:] = _pillow_pixels(data, size)
    rows[:, 0] = NONE
    return rows


def _pillow_pixels(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """Decode with Pillow (checking it all); 8-bit RGB(A) pixels, or None for other kinds."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise InvalidPng(f"not a PNG but {image.format}")
            image.load()
            if image.size != size:
                raise InvalidPng(
                    f"PNG is {image.size[0]}x{image.size[1]}, expected {size[0]}x{size[1]}"
                )
            if image.mode not in ("RGB", "RGBA"):
                return None  # palette, grey or 16-bit: kept as Chromium made them
            return np.asarray(image).reshape(size[1], -1)
    except InvalidPng:
        raise
    except Exception as e:  # Pillow raises many types for broken data
        raise InvalidPng(f"PNG does not decode: {e}") from e
