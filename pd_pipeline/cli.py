"""`pd-pipeline`: set up a card database, seed demo cardsets, and see where card images stand."""

import argparse
import os
import sys

from pd_pipeline.db.engine import make_engine
from pd_pipeline.db.schema import create_card_tables
from pd_pipeline.resources import DEFAULT_DATABASE_URL, ready_engine
from pd_pipeline.storage.keys import partition_key


def _database_url(args: argparse.Namespace) -> str:
    return args.database_url or os.environ.get("PD_DATABASE_URL") or DEFAULT_DATABASE_URL


def init_db(args: argparse.Namespace) -> int:
    engine = make_engine(_database_url(args))
    create_card_tables(engine)
    print(f"Card tables ready in {engine.url.render_as_string(hide_password=True)}")
    return 0


def seed_demo(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from pd_pipeline.db import schema
    from pd_pipeline.db.demo import seed_demo as seed

    engine = make_engine(_database_url(args))
    create_card_tables(engine)
    with engine.connect() as conn:
        existing = conn.scalar(sa.select(sa.func.count()).select_from(schema.cardset))
    if existing:
        print(f"The database already has {existing} cardsets; not seeding again.")
        return 0
    counts = seed(engine, seasons=args.seasons, players_per_season=args.players_per_season)
    print("Seeded demo cardsets from the Lahman database: " + ", ".join(
        f"{v} {k}" for k, v in counts.items()
    ))  # fmt: skip
    return 0


def status(args: argparse.Namespace) -> int:
    from pd_pipeline.db.status import cardset_status, example_urls

    with ready_engine(_database_url(args)).connect() as conn:
        rows = cardset_status(conn)
        examples = example_urls(conn)
    print(f"{'cardset':<14}{'type':<14}{'cards':>8}{'with URL':>10}{'missing':>9}{'failed':>8}")
    for r in rows:
        print(
            f"{partition_key(r.cardset_id):<14}{r.card_type:<14}{r.total:>8}{r.with_url:>10}"
            f"{r.missing:>9}{r.failed:>8}"
        )
    total, with_url = sum(r.total for r in rows), sum(r.with_url for r in rows)
    print(f"\n{with_url} of {total} cards have the URL of their current image.")
    for url in examples:
        print(f"  e.g. {url}")
    return 0


def chromium(args: argparse.Namespace) -> int:
    from pd_pipeline.render.chromium import ChromiumNotFound, ensure_chromium, find_chromium

    try:
        print(ensure_chromium() if args.install else find_chromium())
    except ChromiumNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pd-pipeline", description=__doc__)
    parser.add_argument(
        "--database-url",
        help=f"SQLAlchemy URL (default: $PD_DATABASE_URL or {DEFAULT_DATABASE_URL})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init-db", help="create the card tables on an empty database").set_defaults(
        run=init_db
    )
    seed = commands.add_parser("seed-demo", help="fill demo cardsets from real Lahman seasons")
    seed.add_argument("--seasons", type=int, nargs="+", default=[2008, 2019])
    seed.add_argument(
        "--players-per-season", type=int, help="keep only the N best players of each season"
    )
    seed.set_defaults(run=seed_demo)
    commands.add_parser("status", help="where every cardset's card images stand").set_defaults(
        run=status
    )
    find = commands.add_parser("chromium", help="print the Chromium the renderer will use")
    find.add_argument("--install", action="store_true", help="install Debian's chromium if none")
    find.set_defaults(run=chromium)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
