"""`python -m bench COMMAND ...`: render, writeback, memory, change, changes, latency, rollout
(--help)."""

import argparse
import json
import sys
import time
from pathlib import Path

from bench.render import ANIMATED, PHASES, ROOT, run, table
from pd_pipeline.render.browser import DEFAULT_TILE, default_pages

RESULTS = ROOT / "bench" / "results"


def _save(name: str, summary: dict, out: str | None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = Path(out) if out else RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(summary, indent=2))
    return path


def _save_or_fail(name: str, summary: dict) -> None:
    """Save the results, then exit non-zero naming each target not met."""
    _save(name, summary, None)
    if summary["unmet"]:
        sys.exit("not met: " + "; ".join(summary["unmet"]))


def main() -> None:
    from pd_pipeline.render.chromium import find_chromium

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    render = sub.add_parser("render", help="the pipeline end to end against its baselines")
    render.add_argument("--cards", type=int, default=1000)
    render.add_argument("--naive-cards", type=int, default=40, help="cards for the naive run")
    render.add_argument(
        "--animated-cards", type=int, default=40, help="cards for each animated phase"
    )
    render.add_argument("--pages", type=int, default=None, help="default: the pool's default")
    render.add_argument("--tile", type=int, default=DEFAULT_TILE, help="cards a capture")
    render.add_argument("--repeat", type=int, default=1, help="runs per phase (median shown)")
    render.add_argument("--phases", default=",".join(PHASES + ANIMATED))
    render.add_argument("--work", default=str(ROOT / "var" / "bench"))
    render.add_argument("--json", default=None, help="where to write the JSON")
    render.add_argument("--code", default=None, help="run the pipeline from this checkout")
    render.add_argument(
        "--before",
        default=None,
        help="also run the pipeline from this checkout, for a before/after",
    )
    writeback = sub.add_parser("writeback", help="N URLs written back; the candidate query plan")
    writeback.add_argument("--rows", type=int, default=100_000)
    writeback.add_argument(
        "--explain-rows", type=int, default=0, help="also show the candidate query's plan here"
    )
    writeback.add_argument(
        "--database-url", default=None, help="default: a fresh database on the local PostgreSQL"
    )
    memory = sub.add_parser("memory", help="peak RSS of the pipeline: small run against big run")
    memory.add_argument("--cards", type=int, nargs=2, default=[1000, 10_000])
    memory.add_argument("--work", default=str(ROOT / "var" / "bench-memory"))
    change = sub.add_parser("change", help="a one-card change in a small and a big cardset")
    change.add_argument("--cards", type=int, nargs=2, default=[10, 50_000])
    change.add_argument("--work", default=str(ROOT / "var" / "bench-change"))
    change.add_argument("--repeat", type=int, default=3, help="runs per size (median shown)")
    bulk = sub.add_parser("changes", help="change capture at scale (PostgreSQL)")
    bulk.add_argument("--players", type=int, default=500_000, help="two card rows each")
    bulk.add_argument("--rows", type=int, default=100_000, help="ratings rows the UPDATE sets")
    latency = sub.add_parser("latency", help="insert to URL with dagster dev, default settings")
    latency.add_argument("--inserts", type=int, default=20)
    latency.add_argument("--every", type=float, default=3.0, help="seconds between inserts")
    edits = sub.add_parser("edits", help="edit to URL under dagster dev on a large database")
    edits.add_argument("--card-rows", type=int, default=1_000_000)
    edits.add_argument("--edits", type=int, default=20)
    edits.add_argument("--every", type=float, default=3.0, help="seconds between edits")
    edits.add_argument("--dequeue-seconds", type=int, default=1,
                       help="seconds between drains of the run queue: deploy/dagster.yaml's 1 "
                            "(Dagster's default 5)")  # fmt: skip
    rollout = sub.add_parser("rollout", help="a design rolled out while new variants arrive")
    rollout.add_argument("--cards", type=int, default=3000)
    rollout.add_argument("--inserts", type=int, default=15)
    rollout.add_argument("--every", type=float, default=4.0, help="seconds between inserts")
    args = parser.parse_args()
    if args.command == "rollout":
        from bench import rollout as rollouts

        _save_or_fail("rollout", rollouts.run(args.cards, args.inserts, args.every))
        return
    if args.command == "edits":
        from bench import edits as edit_latency

        _save_or_fail(
            "edits", edit_latency.run(args.card_rows, args.edits, args.every, args.dequeue_seconds)
        )
        return
    if args.command == "latency":
        from bench import latency as latencies

        _save("latency", latencies.run(args.inserts, args.every), None)
        return
    if args.command == "changes":
        from bench import changes as bulk_changes

        _save_or_fail("changes", bulk_changes.run(args.players, args.rows))
        return
    if args.command == "change":
        from bench import change as changes

        _save("change", changes.run(args.cards, Path(args.work), args.repeat), None)
        return
    if args.command == "writeback":
        _writeback(args)
        return
    if args.command == "memory":
        _memory(args, find_chromium())
        return
    if args.command in (None, "render"):
        if args.command is None:
            args = render.parse_args([])
        summary = run(
            args.cards,
            naive_cards=args.naive_cards,
            animated_cards=args.animated_cards,
            pages=args.pages or default_pages(),
            tile=args.tile,
            repeat=args.repeat,
            phases=tuple(p for p in args.phases.split(",") if p)
            + (("e2e-before",) if args.before and "e2e-before" not in args.phases else ()),
            work=Path(args.work),
            chromium=find_chromium(),
            code=args.code,
            before=args.before,
        )
        path = _save("render", summary, args.json)
        print()
        print(table(summary))
        print(f"\nJSON: {path}")


def _writeback(args) -> None:
    import sqlalchemy as sa

    from bench import writeback
    from pd_pipeline.db.engine import make_engine

    def database():
        if args.database_url:
            return None, make_engine(args.database_url)
        return writeback.fresh_postgres()

    try:
        name, engine = database()
    except sa.exc.OperationalError as e:
        print(
            f"write-back bench skipped: PostgreSQL is not reachable at {writeback.PG_ADMIN_URL} "
            f"({str(e.orig).strip()}); start it, or pass --database-url"
        )
        return
    summary: dict = {}
    try:
        result = writeback.bench_write_back(engine, args.rows)
        summary["write_back"] = result
        print(
            f"write-back on {result['database']}: {result['written']:,} of {result['rows']:,} "
            f"URLs in {result['seconds']:.1f}s ({result['rows_per_s']:,.0f} rows/s; "
            f"{result['rows_with_url']:,} rows carry a URL); "
            f"bulk fill {result['fill_seconds']:.0f}s"
        )
    finally:
        engine.dispose()
        if name:
            writeback.drop_postgres(name)
    if args.explain_rows:
        name, engine = database()
        try:
            plan = writeback.explain_candidates(engine, args.explain_rows)
            summary["candidates_plan"] = plan
            print(
                f"candidate query for one cardset on {plan['rows']:,} card rows: "
                f"{plan['candidates']:,} rows in {plan['seconds'] * 1000:.0f} ms; plan:"
            )
            print("\n".join(f"    {line}" for line in plan["plan"]))
        finally:
            engine.dispose()
            if name:
                writeback.drop_postgres(name)
    print(f"JSON: {_save('writeback', summary, None)}")


def _memory(args, chromium: str) -> None:
    small, big = args.cards
    results = {}
    for cards in (small, big):
        summary = run(
            cards,
            naive_cards=0,
            pages=default_pages(),
            tile=DEFAULT_TILE,
            repeat=1,
            phases=("e2e",),
            work=Path(args.work) / str(cards),
            chromium=chromium,
        )
        row = summary["rows"]["e2e"]
        results[cards] = row
        print(
            f"{cards:,} cards: peak RSS {row['peak_rss_mb']:.0f} MB, {row['cards_per_s']:.1f} "
            f"cards/s, every URL written: {row['all_written']}",
            flush=True,
        )
    ratio = results[big]["peak_rss_mb"] / results[small]["peak_rss_mb"]
    print(f"peak RSS, {big:,} cards / {small:,} cards: {ratio:.2f}x (target <= 1.2x)")
    _save("memory", {"runs": results, "ratio": ratio}, None)


if __name__ == "__main__":
    main()
