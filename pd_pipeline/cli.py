"""`pd-pipeline`: set up a card database, seed demo cardsets, and see where card images stand.

Each command imports what it uses when it runs, so `--help` and `status` start fast and
never build the Dagster code location.
"""

import argparse
import sys

from pd_pipeline import config

DEFAULT_DATABASE_URL = config.SETTINGS["database_url"].default


def _engine(args: argparse.Namespace):
    from pd_pipeline.db.engine import ready_engine

    return ready_engine(args.database_url or config.value("database_url"))


def init_db(args: argparse.Namespace) -> int:
    from pd_pipeline.db.indexes import add_indexes as create_indexes
    from pd_pipeline.db.schema import create_card_tables

    engine = _engine(args)
    create_card_tables(engine)
    create_indexes(engine)
    print(f"Card tables ready in {engine.url.render_as_string(hide_password=True)}")
    return 0


def seed_demo(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from pd_pipeline.db import schema

    try:
        from pd_pipeline.demo import seed_demo as seed
    except ImportError as e:
        print(f"error: the demo needs pip install 'pd_pipeline[demo]' ({e})", file=sys.stderr)
        return 1
    init_db(args)
    engine = _engine(args)
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
    from pd_pipeline.images.plan import homeless_cards
    from pd_pipeline.images.status import cardset_status, example_urls
    from pd_pipeline.storage.keys import partition_key

    engine = _engine(args)
    rows = cardset_status(engine, config.card_context(config.store()))
    columns = ("cards", "valid", "adopted", "waiting", "stale", "old design", "failed")
    print(f"{'cardset':<14}{'type':<14}" + "".join(f"{c:>11}" for c in columns) + "  oldest wait")
    for r in rows:
        counts = (r.total, r.valid, r.adopted, r.waiting, r.stale, r.old_design, r.failed)
        print(
            f"{partition_key(r.cardset_id):<14}{r.card_type:<14}"
            + "".join(f"{n:>11}" for n in counts)
            + f"  {_wait(r.oldest_wait)}"
        )
    homeless = homeless_cards(engine)
    if homeless:
        print(f"\n{len(homeless)} cards belong to no cardset, so no run renders them:")
        for _, error in homeless[:20]:
            print(f"  - {error}")
    total = sum(r.total for r in rows) + len(homeless)
    good = sum(r.total - r.lacking for r in rows)
    print(
        f"\n{good} of {total} cards have a valid URL of their current data "
        f"({sum(r.adopted for r in rows)} adopted, {sum(r.old_design for r in rows)} in an "
        "older design)."
    )
    with engine.connect() as conn:
        for url in example_urls(conn):
            print(f"  e.g. {url}")
    return _over_threshold(rows, len(homeless), args)


def _wait(wait) -> str:
    return "-" if wait is None else f"{wait.total_seconds() / 60:.0f} min"


def _over_threshold(rows, homeless: int, args: argparse.Namespace) -> int:
    """1 (for cron or CI) when the backlog is larger or older than allowed."""
    backlog = sum(r.lacking for r in rows) + homeless
    waits = [r.oldest_wait.total_seconds() / 60 for r in rows if r.oldest_wait is not None]
    problems = []
    if args.max_backlog is not None and backlog > args.max_backlog:
        problems.append(f"{backlog} cards lack a valid URL (allowed: {args.max_backlog})")
    if waits and max(waits) > args.max_wait_minutes:
        problems.append(
            f"a card has waited {max(waits):.0f} min (allowed: {args.max_wait_minutes} min)"
        )
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def add_indexes(args: argparse.Namespace) -> int:
    from pd_pipeline.db.indexes import add_indexes as create

    for sql in create(_engine(args)):
        print(sql)
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
    from pd_pipeline import settings

    parser = argparse.ArgumentParser(prog="pd-pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        help=f"SQLAlchemy URL (default: $PD_DATABASE_URL or {DEFAULT_DATABASE_URL})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "init-db", help="create the card tables and indexes on an empty database"
    ).set_defaults(run=init_db)
    seed = commands.add_parser("seed-demo", help="fill demo cardsets from real Lahman seasons")
    seed.add_argument("--seasons", type=int, nargs="+", default=[2008, 2019])
    seed.add_argument(
        "--players-per-season", type=int, help="keep only the N best players of each season"
    )
    seed.set_defaults(run=seed_demo)
    report = commands.add_parser("status", help="where every cardset's card images stand")
    report.add_argument(
        "--max-backlog", type=int, help="exit 1 when more cards than this lack a valid URL"
    )
    report.add_argument(
        "--max-wait-minutes",
        type=float,
        default=settings.BACKLOG_MAX_WAIT.total_seconds() / 60,
        help="exit 1 when a card has waited longer (default: $PD_BACKLOG_MAX_WAIT_MINUTES or 60)",
    )
    report.set_defaults(run=status)
    commands.add_parser(
        "add-indexes",
        help="add the indexes the sensor needs to stay cheap on large card tables (idempotent; "
        "CONCURRENTLY on PostgreSQL)",
    ).set_defaults(run=add_indexes)
    find = commands.add_parser("chromium", help="print the Chromium the renderer will use")
    find.add_argument("--install", action="store_true", help="install Debian's chromium if none")
    find.set_defaults(run=chromium)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
