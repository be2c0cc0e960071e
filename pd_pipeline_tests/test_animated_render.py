"""Animated cards: what designs declare (checked at load), and the APNGs the pool makes of them:
PD's frame plans, frame 0 the static card, everything that moves inside the region, the same bytes
every time, and a broken card failing alone."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from pd_pipeline.render.animation import FILE
from pd_pipeline.render.apng import (
    Region,
    decode_apng,
    default_image,
    encode_apng,
    encode_apng_in,
    verify_apng,
)
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import DESIGN_DIR, CardPages, DesignError
from pd_pipeline.render.png import decode_png, encode_png
from pd_pipeline.render.samples import _card, first_variant
from pd_pipeline_tests.animated_cards import T4_CARD, card_pixels

EXAMPLE = Path(__file__).parents[1] / "examples" / "classic"
PLANS = {3: (12, 200, 2500), 4: (24, 250, 6000)}  # Paper Dynasty's: frames, delay, cycle
TYPES = ("battingcard", "pitchingcard")


@pytest.fixture(scope="module")
def pages() -> CardPages:
    return CardPages()


# ---- declarations (fast, no browser) -----------------------------------------------------------


def test_the_shipped_design_animates_t3_and_t4_on_pds_frame_plans(pages):
    for tier in range(5):
        for card_type in TYPES:
            animation = pages.animation(_card(card_type, first_variant(tier)))
            if tier < 3:
                assert animation is None, (tier, card_type)
                continue
            frames, delay, cycle = PLANS[tier]
            assert (animation.frames, animation.delay_ms, animation.cycle_ms) == PLANS[tier]
            assert animation.seeks_ms[:2] == (0.0, cycle / frames)
            x, y, w, h = animation.region
            assert w * h <= 0.2 * 1200 * 600  # the header band, not the card


def test_a_design_without_the_file_animates_nothing():
    classic = CardPages(EXAMPLE)
    assert not (EXAMPLE / FILE).exists()
    assert classic.animations == {}
    assert all(classic.animation(_card("battingcard", first_variant(t))) is None for t in range(5))


GOOD = """[T3]
keyframes = ["pd-gold-shimmer"]
frames = 12
delay_ms = 200
cycle_ms = 2500
region = { x = 12, y = 12, width = 1176, height = 112 }
"""


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (('"pd-gold-shimmer"', '"pd-nope"'),
         r"\[T3\] uses @keyframes pd-nope, which no style sheet of the design defines"),
        (("[T3]", "[T2]"),
         r"\[T2\] uses @keyframes pd-gold-shimmer, but no rule with \.tier-2 in its selector "
         r"animates with it"),
        (("x = 12,", "x = 100,"), r"\[T3\] region x=100, y=12, width=1176, height=112 is not "
         r"inside the 1200x600 card"),
        (("height = 112", "height = -4"), r"\[T3\] region .* is not inside the 1200x600 card"),
        (("frames = 12", "frames = 1"), r"\[T3\] frames = 1: must be a whole number from 2"),
        (("delay_ms = 200", "delay_ms = 5"), r"\[T3\] delay_ms = 5: must be a whole number from"),
        (("cycle_ms = 2500", "cycle_ms = 3600000"), r"\[T3\] cycle_ms = 3600000: must be"),
        (("cycle_ms = 2500", "cycle_ms = 2.5"), r"\[T3\] cycle_ms = 2\.5: must be a whole number"),
        (("frames = 12\n", ""), r"\[T3\] has no frames"),
        (("frames = 12", "frames = 12\nloop = true"), r"\[T3\] has unknown key 'loop'"),
        (("[T3]", "[T7]"), r"\[T7\] is not a tier"),
        (("keyframes = [", "keyframes = [[["), r"\(at line \d+, column \d+\)"),
    ],
    ids=["undefined keyframes", "tier not animated", "region outside", "negative region",
         "one frame", "tiny delay", "hour cycle", "fractional cycle", "no frames",
         "unknown key", "no such tier", "toml syntax"],
)  # fmt: skip
def test_a_broken_declaration_fails_at_load_naming_what_is_wrong(tmp_path, change, error):
    design = tmp_path / "design"
    shutil.copytree(DESIGN_DIR, design)
    (design / FILE).write_text(GOOD.replace(*change))
    with pytest.raises(DesignError, match=rf"^{FILE}: .*{error}"):
        CardPages(design)


def test_the_declaration_is_part_of_the_designs_version(tmp_path, pages):
    design = tmp_path / "design"
    shutil.copytree(DESIGN_DIR, design)
    assert CardPages(design).version == pages.version
    (design / FILE).write_text(
        (design / FILE).read_text().replace("delay_ms = 200", "delay_ms = 180")
    )
    assert CardPages(design).version != pages.version


def test_encode_apng_in_writes_what_encode_apng_writes_of_the_whole_frames():
    first = card_pixels(T4_CARD)
    rng = np.random.default_rng(7)
    for region in (Region(12, 12, 1176, 112), Region(0, 0, 40, 30)):
        x, y, w, h = region
        patches, frames = [], [first]
        for i in range(6):
            patch = first[y : y + h, x : x + w].copy()
            if i not in (2, 3):  # 2 and 3: unchanged frames (a 1x1 rectangle each)
                top, left = rng.integers(0, h - 4), rng.integers(0, w - 4)
                patch[top : top + 4, left : left + 4] = rng.integers(0, 256, (4, 4, 3))
            patches.append(patch)
            frame = first.copy()
            frame[y : y + h, x : x + w] = patch
            frames.append(frame)
        apng = encode_apng_in(first, region, patches, 250)
        assert apng == encode_apng(frames, 250)
        assert default_image(apng) == encode_png(first, 1200, 600)
    with pytest.raises(ValueError, match="not inside"):
        encode_apng_in(first, Region(1190, 0, 20, 10), [], 250)


# ---- rendering (real Chromium) -----------------------------------------------------------------


def _seeked(markup: str, ms: float) -> str:
    """The card's markup in a wrapper that seeks its animations: the whole card at `ms`."""
    return f'<div style="--pd-seek: {ms:.3f}ms">{markup}</div>'


@pytest.fixture(scope="module")
def rendered(pages):
    """T3 and T4 cards of both types: their APNGs, static PNGs (made after the APNGs, on the
    same pages), and whole cards at a few seeks; then the APNGs again from another pool."""
    cards = {(t, tier): _card(t, first_variant(tier)) for tier in (3, 4) for t in TYPES}
    markup = {key: pages.body(card) for key, card in cards.items()}
    items = [(key, markup[key], pages.animation(card)) for key, card in cards.items()]
    seeks = {(key, i): _seeked(markup[key], ms)
             for key, card in cards.items() if key[0] == "battingcard"
             for i, ms in [*enumerate(pages.animation(card).seeks_ms), (-1, PLANS[key[1]][2])]
             if i % 3 == 1 or i == -1}  # fmt: skip
    with BrowserPool(find_chromium(), pages, pages=2) as pool:
        apngs = {r.key: r for r in pool.render_animated(items)}
        statics = {r.key: r.png for r in pool.render_many(markup.items())}
        whole = {r.key: r.png for r in pool.render_many(seeks.items())}
    with BrowserPool(find_chromium(), pages, pages=1, tile=3) as pool:
        again = {r.key: r.png for r in pool.render_animated(items[::-1])}
    return cards, apngs, statics, whole, again


def _frame(png: bytes) -> np.ndarray:
    return decode_png(png).reshape(600, 1200, 3)


@pytest.mark.slow
def test_t3_and_t4_cards_are_apngs_of_their_frame_plans(rendered):
    cards, apngs, *_ = rendered
    for key, result in apngs.items():
        assert result.error is None and result.png, (key, result.error)
        frames, delay, _ = PLANS[key[1]]
        info = verify_apng(result.png, frames=frames)
        assert info.delays_ms == (delay,) * frames and info.plays == 0, key
        decoded = decode_apng(result.png)
        assert len({frame.tobytes() for frame in decoded}) >= frames // 2, f"{key}: frames alike"


@pytest.mark.slow
def test_frame_0_is_the_static_png(rendered):
    _, apngs, statics, *_ = rendered
    for key, result in apngs.items():
        assert (decode_apng(result.png)[0] == _frame(statics[key])).all(), key
        # Byte for byte: the pipeline may store the APNG's default image as the card's PNG.
        assert default_image(result.png) == statics[key], key


@pytest.mark.slow
def test_the_same_card_gives_the_same_bytes(rendered):
    _, apngs, _, _, again = rendered
    assert {key: r.png for key, r in apngs.items()} == again


@pytest.mark.slow
def test_everything_that_moves_is_inside_the_region(rendered, pages):
    """Whole cards captured at seeks: outside the region, every pixel is frame 0's; inside, the
    APNG's frame is the whole card's; and the cycle's end is its start (the loop is seamless:
    up to rounding in the animations' arithmetic)."""
    cards, apngs, _, whole, _ = rendered
    for (key, i), png in whole.items():
        animation = pages.animation(cards[key])
        x, y, w, h = animation.region
        frames = decode_apng(apngs[key].png)
        seeked = _frame(png)
        outside = np.ones((600, 1200), bool)
        outside[y : y + h, x : x + w] = False
        assert (seeked[outside] == frames[0][outside]).all(), f"{key} moves outside at {i}"
        if i == -1:  # the end of the cycle
            difference = np.abs(seeked.astype(int) - frames[0]).max()
            assert difference <= 4, f"{key}: the cycle's end differs from its start by {difference}"
        else:
            assert (seeked == frames[i]).all(), f"{key}: frame {i} is not the whole card's"


@pytest.mark.slow
def test_a_broken_card_fails_alone_among_animated_ones(pages):
    card = _card("battingcard", first_variant(4))
    animation = pages.animation(card)
    markup = pages.body(card)
    broken = markup.replace("</header>", '<img src="nowhere.png"></header>')
    items = [("a", markup, animation), ("broken", broken, animation), ("b", markup, animation)]
    with BrowserPool(find_chromium(), pages, pages=1) as pool:
        results = {r.key: r for r in pool.render_animated(items)}
    assert results["a"].png and results["a"].png == results["b"].png
    assert results["broken"].png is None
    assert "asks for nowhere.png, which the design folder does not have" in results["broken"].error
