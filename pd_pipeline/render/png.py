"""Checking PNGs before they leave the renderer."""

import io

from PIL import Image

CARD_SIZE = (1200, 600)


class InvalidPng(ValueError):
    pass


def verify_png(data: bytes, size: tuple[int, int] = CARD_SIZE) -> None:
    """Decode the whole image (not just the header) and check its size; raise InvalidPng if not."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise InvalidPng(f"not a PNG but {image.format}")
            image.load()
            if image.size != size:
                raise InvalidPng(
                    f"PNG is {image.size[0]}x{image.size[1]}, expected {size[0]}x{size[1]}"
                )
    except InvalidPng:
        raise
    except Exception as e:  # Pillow raises many types for broken data
        raise InvalidPng(f"PNG does not decode: {e}") from e
