"""Animated tiers: what a design declares in `animations.toml`, checked against its CSS.

    [T4]
    keyframes = ["pd-prism-sweep", "pd-diamond-glow"]  # the @keyframes the tier's rules use
    frames = 24                                       # frames of the APNG
    delay_ms = 250                                    # how long each frame is shown
    cycle_ms = 6000                                   # the animations' cycle
    region = { x = 12, y = 12, width = 1176, height = 112 }  # card pixels: all that moves

Frame i shows the card with its paused animations seeked to i * cycle_ms / frames; frame 0 is the
static card. Only the region is captured (and stored) for frames after the first, so it must hold
everything that moves, glows included. A tier's rules are those whose selector names
`.tier-N` (the class the shipped templates give a card of tier N; `selector` says otherwise).

A declaration the CSS does not back (keyframes no style sheet defines, or that no rule of the tier
animates with), a region outside the card, or frame counts and times out of bounds fail the design
at load (DesignError, naming the file, the tier and what is wrong). A design without the file
animates nothing.
"""

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pd_pipeline.render.apng import MAX_DELAY_MS, Region
from pd_pipeline.render.errors import DesignError
from pd_pipeline.render.png import CARD_SIZE

FILE = "animations.toml"
TIER = re.compile(r"T([0-4])")
IDENT = re.compile(r"-?[_a-zA-Z][\w-]*")
# Bounds that make sense for a card: viewers clamp delays under 20 ms (often to 100 ms), and a
# frame is a capture: hundreds of them would cost more than the card is worth.
FRAMES = (2, 120)
DELAY_MS = (20, 10_000)
CYCLE_MS = (100, 60_000)
KEYS = {"keyframes", "frames", "delay_ms", "cycle_ms", "region", "selector"}
REGION_KEYS = ("x", "y", "width", "height")
COMMENTS = re.compile(r"/\*.*?\*/", re.S)
ANIMATING = re.compile(r"(?:^|;)\s*animation(?:-name)?\s*:([^;]*)")
STYLE_ELEMENTS = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)


@dataclass(frozen=True)
class Animation:
    """One tier's animation: `frames` frames of `delay_ms` each, seeked evenly over `cycle_ms`;
    all that moves is inside `region` (card pixels)."""

    tier: int
    frames: int
    delay_ms: int
    cycle_ms: int
    region: Region
    keyframes: tuple[str, ...]

    @property
    def seeks_ms(self) -> tuple[float, ...]:
        """Where each frame is seeked to, in ms into the cycle (frame 0: 0, the static card)."""
        return tuple(i * self.cycle_ms / self.frames for i in range(self.frames))


def load_animations(design_dir: Path) -> dict[int, Animation]:
    """The design's animations by tier, checked against its CSS; {} without animations.toml."""
    path = design_dir / FILE
    if not path.is_file():
        return {}
    try:
        declared = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DesignError(f"{FILE}: {e}") from None
    css = _style_sheets(design_dir)
    keyframes = set(re.findall(r"@(?:-webkit-)?keyframes\s+([-\w]+)", css))
    rules = _rules(css)
    animations = {}
    for key, table in declared.items():
        match = TIER.fullmatch(key)
        if not match:
            raise DesignError(f"{FILE}: [{key}] is not a tier: tiers are [T0] to [T4]")
        tier = int(match.group(1))
        animations[tier] = _animation(tier, table, keyframes, rules)
    return animations


def _animation(tier: int, table: object, defined: set[str], rules: list[tuple[str, str]]):
    def fail(what: str) -> DesignError:
        return DesignError(f"{FILE}: [T{tier}] {what}")

    if not isinstance(table, dict):
        raise fail("must be a table of keyframes, frames, delay_ms, cycle_ms and region")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise fail(f"has unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    missing = sorted(KEYS - {"selector"} - set(table))
    if missing:
        raise fail(f"has no {missing[0]}")
    frames = _whole(table["frames"], "frames", FRAMES, fail)
    delay = _whole(
        table["delay_ms"], "delay_ms", (DELAY_MS[0], min(DELAY_MS[1], MAX_DELAY_MS)), fail
    )
    cycle = _whole(table["cycle_ms"], "cycle_ms", CYCLE_MS, fail)
    region = _region(table["region"], fail)
    names = table["keyframes"]
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise fail("keyframes must be a list of the @keyframes names the tier animates with")
    selector = table.get("selector", f".tier-{tier}")
    if not isinstance(selector, str) or not selector.strip():
        raise fail("selector must be the text a selector of the tier's rules contains")
    for name in names:
        if not IDENT.fullmatch(name):
            raise fail(f"keyframes name {name!r} is not a CSS name")
        if name not in defined:
            raise fail(f"uses @keyframes {name}, which no style sheet of the design defines")
        if not any(selector in where and _names(value, name) for where, value in rules):
            raise fail(
                f"uses @keyframes {name}, but no rule with {selector} in its selector animates "
                f"with it (animation or animation-name)"
            )
    return Animation(tier, frames, delay, cycle, region, tuple(names))


def _whole(value: object, key: str, bounds: tuple[int, int], fail) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(f"{key} = {value!r}: must be a whole number from {low} to {high}")
    return value


def _region(value: object, fail) -> Region:
    width, height = CARD_SIZE
    if not isinstance(value, dict) or set(value) != set(REGION_KEYS):
        raise fail("region must be { x = ..., y = ..., width = ..., height = ... } in card pixels")
    x, y, w, h = (value[k] for k in REGION_KEYS)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (x, y, w, h)):
        raise fail(f"region {value} must be whole card pixels")
    if not (min(x, y) >= 0 and min(w, h) >= 1 and x + w <= width and y + h <= height):
        raise fail(
            f"region x={x}, y={y}, width={w}, height={h} is not inside the {width}x{height} card"
        )
    return Region(x, y, w, h)


def _style_sheets(design_dir: Path) -> str:
    """Every style sheet of the design: its .css files and <style> elements of its templates."""
    texts = []
    for path in sorted(design_dir.rglob("*")):
        if path.suffix == ".css":
            texts.append(path.read_text())
        elif path.suffix == ".html":
            texts.extend(STYLE_ELEMENTS.findall(path.read_text()))
    return COMMENTS.sub("", "\n".join(texts))


def _rules(css: str) -> list[tuple[str, str]]:
    """(selector, value) of every animation and animation-name declaration, at any depth of
    at-rules (keyframes' own blocks are not rules)."""
    found: list[tuple[str, str]] = []
    stack: list[str] = []  # preludes of the open blocks
    start = 0
    for match in re.finditer(r"[{}]", css):
        if match.group() == "{":
            stack.append(css[start : match.start()].strip().rsplit(";", 1)[-1].strip())
        elif stack:
            prelude = stack.pop()
            if not prelude.startswith("@") and not any("keyframes" in p for p in stack):
                body = css[start : match.start()]
                found += [(prelude, value) for value in ANIMATING.findall(body)]
        start = match.end()
    return found


def _names(value: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", value) is not None
