"""The fonts shipped with pd_pipeline, which every card page can use.

Families have names of their own so that a system copy of Inter or Bebas Neue can never stand in
for a font that failed to load. The renderer serves the files to its pages (`ORIGIN`): a face is
fetched and decoded only when a page first uses it, so a page starts in a fraction of a second
and Latin cards never wait for CJK or emoji.
"""

from pathlib import Path
from typing import NamedTuple

FONT_DIR = Path(__file__).parent / "fonts"
# Where the renderer serves fonts and design files to its pages from (an address of its own
# that no network has: `.invalid` is reserved).
ORIGIN = "https://card.invalid"


class Face(NamedTuple):
    """One @font-face of the card page."""

    family: str
    file: str
    weight: str = "400"
    # Fallback faces cover only scripts our fonts lack: Chromium fetches and decodes a face only
    # when a card's text has a character in its range.
    unicode_range: str | None = None


# "PD Fallback" is one family made of subsets of Noto (see fonts/LICENSE.txt for what each
# holds), each face with its range.
FALLBACK = "PD Fallback"
FALLBACK_FACES = (
    (
        "NotoSansArabic-Regular.subset.woff2",
        "U+0600-06FF, U+0750-077F, U+200C-200F, U+FB50-FDFF, U+FE70-FEFF",
    ),
    ("NotoSansHebrew-Regular.subset.woff2", "U+0590-05FF, U+FB1D-FB4F"),
    (
        "NotoSansCJKjp-Regular.subset.woff2",
        "U+3000-30FF, U+3130-318F, U+31F0-31FF, U+4E00-9FFF, U+AC00-D7AF, U+FF00-FFEF",
    ),
    (
        "NotoColorEmoji.subset.woff2",
        "U+200D, U+20E3, U+2190-21FF, U+2300-23FF, U+24C2, U+25A0-27BF, U+2900-297F, "
        "U+2B00-2BFF, U+FE0F, U+1F000-1FAFF, U+E0020-E007F",
    ),
)
# Each fallback face claims every weight: Chromium composes a family only from faces of the same
# weight range (a 400 face would hide the others from bold text), and bold text gets regular
# glyphs rather than smeared synthetic bold ones (colour emoji).
ANY_WEIGHT = "100 900"
FONTS = (
    Face("PD Bebas", "BebasNeue-Regular.otf"),
    Face("PD Inter", "Inter-Regular.woff2"),
    Face("PD Inter", "Inter-SemiBold.woff2", "600"),
    Face("PD Inter", "Inter-Bold.woff2", "700"),
    Face("PD Inter", "Inter-ExtraBold.woff2", "800"),
    *(Face(FALLBACK, file, ANY_WEIGHT, ranges) for file, ranges in FALLBACK_FACES),
)
FONT_TYPES = {".otf": ("font/otf", "opentype"), ".woff2": ("font/woff2", "woff2")}


def font_css() -> str:
    """@font-face rules for every shipped face, served from ORIGIN."""
    return "\n".join(_face_css(face) for face in FONTS)


def preloaded() -> list[tuple[str, str]]:
    """(family, weight) of every face without a range: text in each makes the page load it."""
    return [(face.family, face.weight) for face in FONTS if face.unicode_range is None]


def _face_css(face: Face) -> str:
    _, form = FONT_TYPES[Path(face.file).suffix]
    scope = f"unicode-range:{face.unicode_range};" if face.unicode_range else ""
    return (
        f"@font-face{{font-family:'{face.family}';font-weight:{face.weight};font-style:normal;"
        f"font-display:block;{scope}src:url({ORIGIN}/fonts/{face.file}) format('{form}')}}"
    )
