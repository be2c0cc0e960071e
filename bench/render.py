"""The render benchmark: the pipeline end to end against its baselines, on the same cards.

Seeds N demo cards into an SQLite database, starts a local S3 server (moto), then runs each
phase (see `bench.phase`) in a child process while watching that process tree's memory, and
prints one table (also written as JSON). With `--repeat`, phases run in turns and the table shows
each figure's median run: other work on the machine hits every phase alike.
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.procs import TreeWatcher, cpu_seconds
from bench.seed import seed_cards
from pd_pipeline_tests.services import S3Server

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("bare-tiled", "bare", "e2e", "naive", "bare-chromium", "bare-fast")
# Animated cards (bench.animated), on the first --animated-cards cards made T4 or T3 variants.
ANIMATED = tuple(f"{kind}-t{t}" for t in (4, 3) for kind in ("still", "anim", "pd", "pdfast"))
LABELS = {
    "e2e": "pipeline end to end",
    "e2e-before": "pipeline end to end, before",
    "bare-tiled": "bare tiled loop (the limit)",
    "bare": "bare Chromium loop, a card a capture",
    "bare-chromium": "bare loop, Chromium default PNG",
    "bare-fast": "bare loop, Chromium fast PNG as is",
    "naive": "naive: a browser per card",
    **{f"still-t{t}": f"T{t} cards, static PNGs (render_many)" for t in (3, 4)},
    **{f"anim-t{t}": f"T{t} cards, animated (render_animated)" for t in (3, 4)},
    **{f"pd-t{t}": f"T{t} cards, animated PD's way" for t in (3, 4)},
    **{f"pdfast-t{t}": f"T{t} cards, animated PD's way, fast capture" for t in (3, 4)},
}
NOTES = {
    "e2e": "render, verify, upload to S3, ledger, write-back",
    "e2e-before": "the same, from the code given as --before",
    "bare-tiled": "a tile of cards a capture, cut and re-encoded as the pipeline does",
    "bare": "one card a capture + the same lossless re-encode",
    "bare-chromium": "pixels the same, bigger than ours",
    "bare-fast": "pixels the same, ~30% bigger",
    "naive": "Playwright launch + set_content + screenshot",
    **{f"still-t{t}": "the same cards' static PNGs through the pool" for t in (3, 4)},
    **{
        f"anim-t{t}": "frame 0 whole, then the region of each frame, a tile of cards a capture"
        for t in (3, 4)
    },
    **{
        f"pd-t{t}": "Playwright's screenshot of the whole card per frame, frames stored whole "
        "(warm pages)"
        for t in (3, 4)
    },
    **{
        f"pdfast-t{t}": "the same with a CDP capture and Chromium's fast PNG: PD's way at its best"
        for t in (3, 4)
    },
}


def fresh_copy(source: Path, target: Path) -> None:
    """Copy an SQLite database, leaving no write-ahead log of an earlier copy beside it."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)


def run_phase(phase: str, config: dict, work: Path, env: dict | None = None) -> dict:
    """Run one phase in a child process; its result plus the tree's peak RSS."""
    config_path = work / f"{phase}-config.json"
    result_path = work / f"{phase}-result.json"
    config_path.write_text(json.dumps(config))
    result_path.unlink(missing_ok=True)
    # `code`: run the pipeline from another checkout (say, before a change): its folder goes
    # first on the path, this one's second (for `bench` itself).
    code = Path(config.get("code") or ROOT)
    path = os.pathsep.join(p for p in (str(code), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.phase", phase, str(config_path), str(result_path)],
        cwd=code,
        env={**os.environ, **(env or {}), "PYTHONPATH": path},
    )
    watcher = TreeWatcher(child.pid)
    watcher.start()
    exit_code = child.wait()
    peak = watcher.stop()
    if exit_code != 0 or not result_path.exists():
        raise RuntimeError(f"bench phase {phase} failed (exit {exit_code})")
    result = json.loads(result_path.read_text())
    result["cpu_s"] = watcher.cpu_between(result["clock"][0], result["clock"][1])
    result["cpu_by_kind_s"] = watcher.cpu_by_kind()  # whole run, imports and teardown included
    return {**result, "peak_rss": peak}


def run(
    cards: int,
    *,
    naive_cards: int,
    pages: int,
    animated_cards: int = 40,
    tile: int,
    repeat: int,
    phases: tuple[str, ...],
    work: Path,
    chromium: str,
    code: str | None = None,
    before: str | None = None,
) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("*.png"):  # PNGs an earlier run saved, perhaps of other templates
        stale.unlink()
    seeded = work / "seed.db"
    seeded.unlink(missing_ok=True)
    started = time.monotonic()
    per_type = seed_cards(f"sqlite:///{seeded}", cards)
    print(f"seeded {cards} cards {per_type} in {time.monotonic() - started:.0f}s", flush=True)
    s3 = S3Server().start()  # on loopback, outside the measured process trees
    runs: dict[str, list[dict]] = {phase: [] for phase in phases}
    try:
        for turn in range(repeat):
            for phase in phases:
                database = work / f"{phase}.db"
                fresh_copy(seeded, database)  # each run starts with every card pending
                config = {
                    "database_url": f"sqlite:///{database}",
                    "pages": pages,
                    "tile": tile,
                    "naive_cards": naive_cards,
                    "animated_cards": animated_cards,
                    "chromium": chromium,
                    "work_dir": str(work),
                    "code": before if phase == "e2e-before" else code,
                }
                env = {
                    "PD_DATABASE_URL": config["database_url"],
                    **s3.settings(),
                    "PD_CHROMIUM_PATH": chromium,
                    "PD_RENDER_PAGES": str(pages),
                    "PD_RENDER_TILE": str(tile),
                    "DAGSTER_HOME": str(work / "dagster"),
                    # The pipeline's own CPU by phase (markup, encode, store, ...).
                    "PD_PROFILE_FILE": str(work / f"{phase}-profile.json"),
                }
                (work / "dagster").mkdir(exist_ok=True)
                s3_cpu = cpu_seconds([s3.process.pid])
                result = run_phase(phase, config, work, env)
                result["s3_cpu_s"] = cpu_seconds([s3.process.pid]) - s3_cpu
                runs[phase].append(result)
                print(
                    f"  turn {turn + 1}/{repeat} {phase}: {_rate(result):.1f} cards/s", flush=True
                )
    finally:
        s3.stop()
    summary = summarise(cards, per_type, pages, runs, work)
    summary["tile"] = tile
    if code or before:
        summary["code"] = {"e2e": code or str(ROOT), "e2e-before": before}
    return summary


def _rate(result: dict) -> float:
    return result["cards"] / result["wall_s"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(cards, per_type, pages, runs, work) -> dict:
    rows = {}
    for phase, results in runs.items():
        rates = [_rate(r) for r in results]
        median = sorted(results, key=_rate)[len(results) // 2]
        sizes = [size for _, size in median["png"].values()]
        rows[phase] = {
            "label": LABELS[phase],
            "note": NOTES[phase],
            "cards": median["cards"],
            "cards_per_s": statistics.median(rates),
            "cards_per_s_runs": rates,
            "ms_p50": 1000 * _percentile(median["latencies_s"], 0.5),
            "ms_p95": 1000 * _percentile(median["latencies_s"], 0.95),
            "cpu_ms_per_card": 1000 * (median["cpu_s"] + median["s3_cpu_s"]) / median["cards"],
            "png_kb_mean": statistics.mean(sizes) / 1000 if sizes else 0,
            "peak_rss_mb": max(r["peak_rss"] for r in results) / 2**20,
            "wall_s": median["wall_s"],
            # Whole child run (imports, launch and teardown too), per card: where CPU goes.
            "cpu_ms_per_card_by_process": {
                **{
                    kind: round(1000 * seconds / median["cards"], 1)
                    for kind, seconds in sorted(median["cpu_by_kind_s"].items())
                },
                **(
                    {"s3 server": round(1000 * median["s3_cpu_s"] / median["cards"], 1)}
                    if median["s3_cpu_s"]
                    else {}
                ),
            },
        }
        if median.get("pipeline_cpu_ms"):
            rows[phase]["pipeline_cpu_ms_per_card"] = {
                k: round(v / median["cards"], 2) for k, v in median["pipeline_cpu_ms"].items()
            }
        if phase.startswith("e2e"):
            rows[phase]["all_written"] = all(
                r["success"] and r["urls_written"] == cards for r in results
            )
    checks = _checks(runs, work)
    if any(phase in runs for phase in ANIMATED):
        from bench.animated import checks as animated_checks

        checks.update(animated_checks(work))
    e2e = rows.get("e2e", {}).get("cards_per_s")
    ratios = {
        f"e2e_vs_{phase}": e2e / row["cards_per_s"]
        for phase, row in rows.items()
        if e2e and phase != "e2e"
    }
    return {
        "machine": machine(),
        "animated": _animated(rows, runs),
        "cards": cards,
        "cards_per_type": per_type,
        "pages": pages,
        "repeat": len(next(iter(runs.values()))),
        "rows": rows,
        "ratios": ratios,
        "checks": checks,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _animated(rows: dict, runs: dict) -> dict:
    """Each animated tier against its static cards, e2e's static cards and PD's way: CPU a card,
    cards/s, and the APNGs' bytes against PD's frames stored whole (per card, then the mean)."""
    found = {}
    for tier in (3, 4):
        ours, still = rows.get(f"anim-t{tier}"), rows.get(f"still-t{tier}")
        if not ours:
            continue
        cpu = ours["cpu_ms_per_card"]
        figures = {"cpu_ms_per_card": cpu, "cards_per_s": ours["cards_per_s"]}
        if still:
            figures["cpu_vs_static_card"] = cpu / still["cpu_ms_per_card"]
        if "e2e" in rows:
            figures["cpu_vs_e2e_card"] = cpu / rows["e2e"]["cpu_ms_per_card"]
        for kind in ("pd", "pdfast"):
            if f"{kind}-t{tier}" not in rows:
                continue
            pd = rows[f"{kind}-t{tier}"]
            figures[f"{kind}_cpu_over_ours"] = pd["cpu_ms_per_card"] / cpu
            figures[f"ours_cards_per_s_over_{kind}"] = ours["cards_per_s"] / pd["cards_per_s"]
            mine, theirs = runs[f"anim-t{tier}"][0]["png"], runs[f"{kind}-t{tier}"][0]["png"]
            ratios = [mine[label][1] / size for label, (_, size) in theirs.items() if label in mine]
            figures["bytes_over_whole"] = {"mean": statistics.mean(ratios), "max": max(ratios)}
        found[f"T{tier}"] = figures
    return found


def _checks(runs: dict, work: Path) -> dict:
    """Same bytes as the bare loop, same pixels as Chromium's PNGs, sizes against its default."""
    from PIL import Image, ImageChops

    checks: dict = {}
    e2e = runs.get("e2e", [{}])[0].get("png")
    default = runs.get("bare-chromium", [{}])[0].get("png")
    # Against the tiled loop: the pipeline adds nothing to the pixels; against the one-card
    # loop: a card captured in a tile is the card captured alone.
    for other in ("bare-tiled", "bare"):
        theirs = runs.get(other, [{}])[0].get("png")
        if e2e and theirs:
            same = sum(1 for label, (sha, _) in theirs.items() if e2e.get(label, [None])[0] == sha)
            checks[f"identical_bytes_e2e_vs_{other}"] = f"{same}/{len(theirs)}"
    if e2e and default:
        ratios = [e2e[label][1] / size for label, (_, size) in default.items() if label in e2e]
        checks["size_vs_chromium_default"] = {
            "mean": statistics.mean(ratios),
            "max": max(ratios),
            "cards_larger": sum(1 for r in ratios if r > 1),
        }
    compared = differing = 0
    for index in range(64):
        ours = work / f"bare-{index}.png"
        for other in ("bare-chromium", "bare-fast", "naive"):
            theirs = work / f"{other}-{index}.png"
            if ours.exists() and theirs.exists():
                with Image.open(ours) as a, Image.open(theirs) as b:
                    compared += 1
                    differing += ImageChops.difference(a, b).getbbox() is not None
    checks["pixels_identical"] = f"{compared - differing}/{compared}"
    return checks


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "chromium": chromium_version(),
        "load_average_at_end": [round(x, 2) for x in load],
    }


def chromium_version() -> str:
    from pd_pipeline.render.chromium import find_chromium

    try:
        out = subprocess.run(
            [find_chromium(), "--version"], capture_output=True, text=True, timeout=30
        )
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def table(summary: dict) -> str:
    m = summary["machine"]
    lines = [
        f"pd_pipeline render bench: {summary['cards']} cards "
        f"({', '.join(f'{n} {t}s' for t, n in summary['cards_per_type'].items())}), "
        f"{summary['pages']} pages, {summary['tile']} cards a capture (the tiled runs), median "
        f"of {summary['repeat']} run(s), {summary['when']}",
        f"machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, {m['os']}, "
        f"Python {m['python']}, {m['chromium']}; load average at the end "
        f"{', '.join(map(str, m['load_average_at_end']))}",
        "",
        "| run | cards | cards/s | e2e is | ms/card p50 | p95 | CPU ms/card | PNG KB | "
        "peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for phase, row in summary["rows"].items():
        ratio = summary["ratios"].get(f"e2e_vs_{phase}")
        lines.append(
            f"| {row['label']} | {row['cards']} | {row['cards_per_s']:.1f} | "
            f"{'' if ratio is None else f'{ratio:.2f}x'} | {row['ms_p50']:.0f} | "
            f"{row['ms_p95']:.0f} | {row['cpu_ms_per_card']:.0f} | {row['png_kb_mean']:.0f} | "
            f"{row['peak_rss_mb']:.0f} |"
        )
    lines.append("")
    for row in summary["rows"].values():
        lines.append(f"- {row['label']}: {row['note']}")
    checks = summary["checks"]
    for other, what in (("bare-tiled", "the tiled loop's"), ("bare", "each card's alone")):
        if f"identical_bytes_e2e_vs_{other}" in checks:
            found = checks[f"identical_bytes_e2e_vs_{other}"]
            lines.append(f"- e2e PNGs byte-identical to {what}: {found}")
    if "size_vs_chromium_default" in checks:
        s = checks["size_vs_chromium_default"]
        lines.append(
            f"- e2e PNG size / Chromium default PNG size: mean {s['mean']:.3f}, max "
            f"{s['max']:.3f} ({s['cards_larger']} cards larger)"
        )
    lines.append(f"- pixels identical to Chromium's own PNGs: {checks['pixels_identical']}")
    for tier, f in summary.get("animated", {}).items():
        parts = [f"{f['cpu_ms_per_card']:.0f} ms CPU a card, {f['cards_per_s']:.2f} cards/s"]
        if "cpu_vs_static_card" in f:
            parts.append(f"{f['cpu_vs_static_card']:.2f}x a static card's CPU")
        if "cpu_vs_e2e_card" in f:
            parts.append(f"{f['cpu_vs_e2e_card']:.2f}x an e2e card's")
        for kind, what in (("pd", "PD's way"), ("pdfast", "PD's way at its best")):
            if f"{kind}_cpu_over_ours" in f:
                parts.append(
                    f"{what} costs {f[f'{kind}_cpu_over_ours']:.2f}x the CPU "
                    f"(ours {f[f'ours_cards_per_s_over_{kind}']:.2f}x its cards/s)"
                )
        if "bytes_over_whole" in f:
            b = f["bytes_over_whole"]
            parts.append(f"APNG / frames stored whole: mean {b['mean']:.3f}, max {b['max']:.3f}")
        lines.append(f"- {tier} animated: " + "; ".join(parts))
    for key, value in checks.items():
        if key.endswith("_identical_to_pd"):
            lines.append(f"- {key[:2].upper()} frames identical to PD's way's: {value}")
    if "e2e" in summary["rows"]:
        lines.append(
            "- e2e wrote every card's URL: "
            + ("yes" if summary["rows"]["e2e"].get("all_written") else "NO")
        )
    lines.append(
        "- CPU ms/card: the whole process tree (Python, Playwright's driver, Chromium), plus "
        "the S3 server's for e2e"
    )
    for row in summary["rows"].values():
        if "pipeline_cpu_ms_per_card" in row:
            by_phase = row["pipeline_cpu_ms_per_card"]
            lines.append(
                f"- {row['label']}, the pipeline's own CPU ms/card by phase: "
                + ", ".join(f"{k} {v:.1f}" for k, v in by_phase.items())
                + f" (sum {sum(by_phase.values()):.1f}; by process: "
                + ", ".join(f"{k} {v}" for k, v in row["cpu_ms_per_card_by_process"].items())
                + ")"
            )
    return "\n".join(lines)
