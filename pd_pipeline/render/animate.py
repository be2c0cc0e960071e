"""Animated cards' captures, and their APNGs (BrowserPool.render_animated drives them).

A tile of cards sharing one animation is swapped into a page's frames as for a static capture,
and captured whole: each card's frame 0, the static card. Then the page turns into strips: each
frame's window shrinks to the animation's region and the frame (a layer of its own) slides up and
left under it, so the cards' regions stack at the top of the page, one strip per card, with the
pixels they have in the whole card. For each later frame the renderer sets the seek (`--pd-seek`,
read by the shell's paused animations) on the elements that animate and captures the strips at
once: Chromium repaints what moved, and one capture carries that frame of every card.

Why this way (Chromium's trace and the bench, T4 cards, 2 cores; docs/performance.md): a
capture costs Chromium and the pipe to it ~25 ms whatever it holds, and a 1176x112 strip ~12 ms
more (the display compositor's draws, the browser's encoding, sending, decoding), so a card per
capture pays the first 23 times a T4 card; stacking copies of one card at several seeks instead
makes Chromium lay out and raster a whole card per copy (~15 ms each), more than it saves. A seek
set on a frame would restyle every element of its card (~2 ms a card a frame): it is set only on
the elements `getAnimations` names."""

from pd_pipeline.profiling import phase
from pd_pipeline.render.animation import Animation
from pd_pipeline.render.apng import encode_apng_in
from pd_pipeline.render.png import CARD_SIZE, decode_png

WIDTH, HEIGHT = CARD_SIZE
# The cards' windows shrink to the region and their frames move under it: the strips stack.
# The elements that animate are noted for SEEK.
STRIPS = """([x, y, w, h, count]) => {
  const frames = [...document.querySelectorAll('.pd-frame')].slice(0, count);
  frames.forEach(frame => {
    frame.parentElement.style.cssText = `width: ${w}px; height: ${h}px; overflow: hidden`;
    frame.style.transform = `translate(${-x}px, ${-y}px)`;
  });
  const animated = frame => frame.getAnimations({subtree: true}).map(a => a.effect.target);
  window.pdAnimated = [...new Set(frames.flatMap(animated))];
  return true;
}"""
# Every card of the tile to one point of its cycle. The seek is set on the elements that
# animate: set on a frame, every element of the card would be restyled.
SEEK = """seek => {
  window.pdAnimated.forEach(element => element.style.setProperty('--pd-seek', seek));
  return true;
}"""


def seek_value(ms: float) -> str:
    """`--pd-seek` for a point of the cycle: the same text, so the same pixels, every time."""
    return f"{ms:.3f}ms"


def assemble(captures: list[bytes], cards: int, animation: Animation) -> list[bytes]:
    """Each card's APNG from a tile's captures: the whole tile (frame 0 of every card), then one
    capture of the strips per later frame."""
    with phase("animate"):
        _, _, w, h = animation.region
        whole = decode_png(captures[0], (WIDTH, HEIGHT * cards)).reshape(cards, HEIGHT, WIDTH, 3)
        strips = [decode_png(raw, (w, h * cards)).reshape(cards, h, w, 3) for raw in captures[1:]]
        return [
            encode_apng_in(
                whole[card], animation.region, [s[card] for s in strips], animation.delay_ms
            )
            for card in range(cards)
        ]
