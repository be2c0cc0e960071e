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


def preview(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pd_pipeline.images.preview import preview as make_preview
    from pd_pipeline.render.chromium import ChromiumNotFound, find_chromium
    from pd_pipeline.render.pages import DesignError, pages_for
    from pd_pipeline.render.preview import summary_lines

    try:
        pages = pages_for(args.templates or config.value("templates_dir"))
        chromium = find_chromium(config.value("chromium_path"))
    except (DesignError, ChromiumNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = make_preview(
        pages, chromium, Path(args.out), database_url=args.database_url or
        config.value("database_url"), store=config.store(), cards=args.cards,
        player_ids=args.player or (),
    )  # fmt: skip
    print(f"Design {pages.design_dir} (version {result.version}), {len(result.cards)} cards:")
    for line in summary_lines(result):
        print(line)
    failed = [card for card in result.cards if card.error]
    if failed:
        print(f"error: {len(failed)} cards failed", file=sys.stderr)
    if not result.cards:
        print(f"error: no cards of players {args.player}", file=sys.stderr)
    return 1 if failed or not result.cards else 0


def why(args: argparse.Namespace) -> int:
    import json

    from pd_pipeline import settings
    from pd_pipeline.images.explain import CardNotFound, Timing, explain, find_card
    from pd_pipeline.images.stored import StoreUnavailable
    from pd_pipeline.schedules import nightly_reconcile_schedule as nightly

    if (args.card_type is None) != (args.card_id is None) or (
        args.card_id is None and (args.player is None or args.variant is None)
    ):
        print("error: name a card: CARD_TYPE CARD_ID, or --player N --variant N", file=sys.stderr)
        return 2
    engine, store = _engine(args), config.store()
    timing = Timing(settings.SENSOR_INTERVAL_SECONDS, nightly.cron_schedule,
                    nightly.execution_timezone or "UTC")  # fmt: skip
    try:
        card_type, card_id = (args.card_type, args.card_id)
        if card_id is None:
            card_type, card_id = find_card(engine, args.player, args.variant, args.type)
        found = explain(engine, store, config.card_context(store), card_type, card_id,
                        timing=timing, dagster_ui_url=config.value("dagster_ui_url"))  # fmt: skip
    except (CardNotFound, StoreUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found.as_dict(), indent=2))
    else:
        _print_why(found)
    return 0


def _print_why(e) -> None:
    print(e.label)
    rows = [("url", e.url or "none (NULL)"), ("partition", e.partition or "none: no cardset")]
    if e.ledger is None:
        rows.append(("ledger", "no entry: no run or sweep has read this row"))
    else:
        led = e.ledger
        inputs = "current" if led.inputs_current else (
            f"changed since (ledger {_short(led.input_hash)}, now {_short(led.current_input_hash)})"
        )  # fmt: skip
        rows.append(("ledger", f"{led.status}, inputs {inputs}"))
        if led.error:
            rows.append(("error", led.error))
        times = {"first pending": led.first_pending_at, "rendered": led.rendered_at,
                 "written": led.written_at}  # fmt: skip
        for name, moment in times.items():
            rows.append((name, f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "-"))
    obj = e.object
    if obj is not None:
        whose = "named by the URL" if obj.named_by_url else "the card's own key"
        if not obj.exists:
            rows.append(("object", f"{obj.key} ({whose}): does not exist"))
        else:
            match = {True: ", bytes match the URL's token", False: ", bytes do NOT match the "
                     "URL's token", None: ""}[obj.matches_token]  # fmt: skip
            rows.append(("object", f"{obj.key} ({whose}): {obj.content_type}, {obj.size:,} bytes"
                         f"{match}"))  # fmt: skip
        if obj.problem:
            rows.append(("problem", obj.problem))
    rows.append(("last run", f"{e.run_id}  {e.run_url}" if e.run_id else "none recorded"))
    rows += [("state", f"{e.state}: {e.reason_text}"), ("next", e.next), ("when", e.when)]
    for name, text in rows:
        print(f"  {name + ':':<15}{text}")


def _short(digest: str | None) -> str:
    return f"{digest[:12]}…" if digest else "none"


def orphans(args: argparse.Namespace) -> int:
    import datetime as dt

    from pd_pipeline.images.orphans import delete_old, find_orphans
    from pd_pipeline.images.stored import StoreUnavailable
    from pd_pipeline.storage.keys import cardset_id_of

    try:
        ids = [int(c) if c.isdigit() else cardset_id_of(c) for c in args.cardsets]
        grace = dt.timedelta(hours=args.grace_hours)
        store = config.store()
        found = find_orphans(_engine(args), store, grace, ids)
        hours = f"{args.grace_hours:g} h"
        for kept, listed in (("", found.old), (f"  (kept: younger than {hours})", found.young)):
            for o in listed:
                when = f"{o.last_modified:%Y-%m-%d %H:%M} UTC" if o.last_modified else "unknown"
                print(f"{o.key}  {o.size:,} bytes  written {when}{kept}")
        if args.delete:
            delete_old(store, found)
    except (ValueError, StoreUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    done = "deleted" if args.delete else "would be deleted (dry run: --delete deletes them)"
    print(
        f"{len(found.old) + len(found.young)} orphan objects in {store.describe()}; "
        f"{len(found.old)} older than {hours} {done}, freeing {found.old_bytes:,} bytes; "
        f"{len(found.young)} younger kept."
    )
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
    explain = commands.add_parser(
        "why", help="why a card has no image, or this one, and what happens next"
    )
    explain.add_argument(
        "card_type", nargs="?", metavar="CARD_TYPE", help="battingcard or pitchingcard"
    )
    explain.add_argument("card_id", nargs="?", type=int, metavar="CARD_ID")
    explain.add_argument("--player", type=int, help="the card's player id (with --variant)")
    explain.add_argument("--variant", type=int, help="the card's variant (with --player)")
    explain.add_argument("--type", choices=("battingcard", "pitchingcard"), help="with --player")
    explain.add_argument("--json", action="store_true", help="print it as one JSON object")
    explain.set_defaults(run=why)
    clean = commands.add_parser(
        "orphans", help="list (or --delete) objects under cards/ that no card row uses"
    )
    clean.add_argument(
        "cardsets", nargs="*", metavar="CARDSET", help="e.g. cardset-001 (default: all)"
    )
    clean.add_argument("--delete", action="store_true", help="delete them (default: a dry run)")
    clean.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="never delete an object written less than this long ago (default: 24)",
    )
    clean.set_defaults(run=orphans)
    look = commands.add_parser(
        "preview",
        help="render sample cards in a design (default: $PD_TEMPLATES_DIR or the shipped one) "
        "into a contact sheet, and compare them with the current images; writes nothing else",
    )
    look.add_argument(
        "--templates", metavar="DIR", help="the design folder (default: $PD_TEMPLATES_DIR)"
    )
    which = look.add_mutually_exclusive_group()
    which.add_argument("--cards", metavar="N", type=int, default=16, help="cards to pick (16)")
    which.add_argument(
        "--player", metavar="ID", type=int, nargs="+", help="every card of these players"
    )
    look.add_argument("--out", metavar="DIR", default="var/preview", help="where to write")
    look.set_defaults(run=preview)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
