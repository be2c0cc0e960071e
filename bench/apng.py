"""`python -m bench.apng`: the animated tiers' APNGs (render/apng.py) on shimmer frames.

For T3 (12 frames x 200 ms) and T4 (24 x 250 ms): bytes of the changed-rectangle APNG against
the same frames stored whole (Paper Dynasty's render service) and a static PNG of frame 0; the
rectangles' share of the canvas; CPU time to encode (per frame), verify and decode. Times are
the best of --repeat runs (CPU time of this process: the machine is shared). A few seconds.

--filters: the bytes of each set's changed rectangles with each PNG row filter, and with
libpng's per-row adaptive choice, relative to filter type 0 (what apng.py writes).
"""

import argparse
import io
import time

import numpy as np
from PIL import Image

from pd_pipeline.render.apng import decode_apng, encode_apng, encode_apng_whole, verify_apng
from pd_pipeline.render.png import _compress, encode_png
from pd_pipeline_tests.animated_cards import T3, T3_CARD, T4, T4_CARD, card_pixels, shimmer_frames


def _cpu_ms(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        best = min(best, (time.process_time() - start) * 1000)
    return best, result


def _pillow_apng(frames: list[np.ndarray], delay: int) -> bytes:
    out = io.BytesIO()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(out, "PNG", save_all=True, append_images=images[1:], duration=delay, loop=0)
    return out.getvalue()


def measure(name: str, card, count: int, delay: int, repeat: int) -> dict:
    frames = shimmer_frames(card_pixels(card), count)
    height, width, _ = frames[0].shape
    static = encode_png(frames[0], width, height)
    encode, apng = _cpu_ms(lambda: encode_apng(frames, delay), repeat)
    encode_whole, whole = _cpu_ms(lambda: encode_apng_whole(frames, delay), repeat)
    verify, info = _cpu_ms(lambda: verify_apng(apng, frames=count), repeat)
    verify_whole, _ = _cpu_ms(lambda: verify_apng(whole, frames=count), repeat)
    decode, _ = _cpu_ms(lambda: decode_apng(apng), repeat)
    pillow_encode, pillow = _cpu_ms(lambda: _pillow_apng(frames, delay), 1)
    areas = [r.width * r.height / (width * height) for r in info.regions[1:]]
    return {
        "set": name,
        "frames": count,
        "delay_ms": delay,
        "static_png": len(static),
        "whole_apng": len(whole),
        "apng": len(apng),
        "apng_over_whole": round(len(apng) / len(whole), 3),
        "apng_over_static": round(len(apng) / len(static), 2),
        "rect_share_mean": round(float(np.mean(areas)), 3),
        "rect_share_max": round(float(np.max(areas)), 3),
        "encode_ms_per_frame": round(encode / count, 1),
        "encode_whole_ms_per_frame": round(encode_whole / count, 1),
        "verify_ms": round(verify, 1),
        "verify_whole_ms": round(verify_whole, 1),
        "decode_ms": round(decode, 1),
        "pillow_apng": len(pillow),
        "pillow_encode_ms_per_frame": round(pillow_encode / count, 1),
    }


def _filtered(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Each filter type's rows (filter byte first) of (h, w, 3) pixels, and the adaptive pick."""
    h, w, c = pixels.shape
    x = pixels.reshape(h, w * c).astype(np.int16)
    a = np.zeros_like(x)  # left
    a[:, c:] = x[:, :-c]
    b = np.zeros_like(x)  # up
    b[1:] = x[:-1]
    d = np.zeros_like(x)  # up left
    d[1:, c:] = x[:-1, :-c]
    p = a + b - d
    pa, pb, pd = np.abs(p - a), np.abs(p - b), np.abs(p - d)
    paeth = np.where((pa <= pb) & (pa <= pd), a, np.where(pb <= pd, b, d))
    data = [x, x - a, x - b, x - (a + b) // 2, x - paeth]
    data = [(v % 256).astype(np.uint8) for v in data]
    # libpng's heuristic: per row, the filter with the least sum of |bytes as signed|.
    cost = np.stack([np.abs(v.view(np.int8).astype(np.int32)).sum(axis=1) for v in data])
    pick = cost.argmin(axis=0)
    names = ["none", "sub", "up", "average", "paeth"]
    rows = {
        n: np.hstack([np.full((h, 1), t, np.uint8), v])
        for t, (n, v) in enumerate(zip(names, data, strict=True))
    }
    rows["adaptive"] = np.hstack(
        [pick[:, None].astype(np.uint8), np.stack(data)[pick, np.arange(h)]]
    )
    return rows


def filters(name: str, card, count: int, delay: int) -> dict:
    frames = shimmer_frames(card_pixels(card), count)
    info = verify_apng(encode_apng(frames, delay), frames=count)
    total: dict[str, int] = {}
    for frame, (x, y, w, h) in zip(frames[1:], info.regions[1:], strict=True):
        for kind, rows in _filtered(frame[y : y + h, x : x + w]).items():
            total[kind] = total.get(kind, 0) + len(_compress(rows))
    return {"set": name, "none_bytes": total["none"]} | {
        kind: f"{size / total['none'] - 1:+.1%}" for kind, size in total.items() if kind != "none"
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.apng", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--filters", action="store_true", help="compare the row filters")
    args = parser.parse_args()
    for name, card, (count, delay) in (("T3", T3_CARD, T3), ("T4", T4_CARD, T4)):
        if args.filters:
            result = filters(name, card, count, delay)
        else:
            result = measure(name, card, count, delay, args.repeat)
        print("  ".join(f"{key}={value}" for key, value in result.items()), flush=True)


if __name__ == "__main__":
    main()
