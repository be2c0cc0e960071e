"""`pd-pipeline`: set up a card database, seed demo cardsets, and see where card images stand.

Each command imports what it uses when it runs, so `--help` and `status` start fast and
never build the Dagster code location.
"""

import argparse
import sys

from pd_pipeline import __version__
from pd_pipeline import settings as settings_model
from pd_pipeline.db.migrations import SchemaTooNew
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.settings import Settings

DEFAULT_DATABASE_URL = Settings.model_fields["database_url"].default


def _engine(args: argparse.Namespace):
    from pd_pipeline.db.engine import ready_engine

    return ready_engine(_database_url(args))


def _database_url(args: argparse.Namespace) -> str:
    return args.database_url or args.settings.database_url


def init_db(args: argparse.Namespace) -> int:
    from pd_pipeline.db import changes
    from pd_pipeline.db.indexes import add_indexes as create_indexes
    from pd_pipeline.db.schema import create_card_tables

    engine = _engine(args)
    create_card_tables(engine)
    create_indexes(engine)
    changes.install(engine)
    print(f"Card tables ready in {engine.url.render_as_string(hide_password=True)}, their "
          "changes tracked")  # fmt: skip
    return 0


def track_changes(args: argparse.Namespace) -> int:
    from pd_pipeline.db import changes
    from pd_pipeline.images.first_look import first_look

    engine = _engine(args)
    if args.remove:
        for what in changes.remove(engine):
            print(f"dropped {what}")
        print("Changes are no longer tracked: the sensor's sweep looks for them again.")
        return 0
    for what in changes.install(engine):
        print(f"created {what}")
    look = first_look(engine)
    print(f"First look: {look.noted} cards new to the ledger in {len(look.cardsets)} cardsets.")
    print(
        "Changes to what cards are made from are tracked: the sensor finds them in a tick or two."
    )
    return 0


def migrate(args: argparse.Namespace) -> int:
    from pd_pipeline.db.engine import make_engine
    from pd_pipeline.db.migrations import LATEST
    from pd_pipeline.db.migrations import migrate as bring_up_to_date

    engine = make_engine(_database_url(args))
    done = bring_up_to_date(engine)
    for line in done:
        print(f"card_render migrated to {line}")
    if not done:
        print(f"card_render is at version {LATEST}, this release's: nothing to do")
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
    from pd_pipeline.images.first_look import unseen_cards
    from pd_pipeline.images.plan import homeless_cards
    from pd_pipeline.images.status import (
        cardset_status,
        example_urls,
        tables_without_animated_url,
    )
    from pd_pipeline.model import Image
    from pd_pipeline.storage.keys import partition_key

    engine = _engine(args)
    rows = cardset_status(engine, args.settings.card_policy(args.settings.open_store()))
    columns = ("cards", "valid", "adopted", "waiting", "stale", "old design", "failed")
    print(f"{'cardset':<14}{'type':<20}" + "".join(f"{c:>11}" for c in columns) + "  oldest wait")
    for r in rows:
        counts = (r.total, r.valid, r.adopted, r.waiting, r.stale, r.old_design, r.failed)
        kind = r.card_type if r.image is Image.STATIC else f"{r.card_type} APNG"
        print(
            f"{partition_key(r.cardset_id):<14}{kind:<20}"
            + "".join(f"{n:>11}" for n in counts)
            + f"  {_wait(r.oldest_wait)}"
        )
    homeless = homeless_cards(engine)
    if homeless:
        print(f"\n{len(homeless)} cards belong to no cardset, so no run renders them:")
        for _, error in homeless[:20]:
            print(f"  - {error}")
    static = [r for r in rows if r.image is Image.STATIC]
    total = sum(r.total for r in static) + len(homeless)
    good = sum(r.total - r.lacking for r in static)
    print(
        f"\n{good} of {total} cards have a valid URL of their current data "
        f"({sum(r.adopted for r in static)} adopted, {sum(r.old_design for r in static)} in an "
        "older design)."
    )
    animated = [r for r in rows if r.image is Image.ANIMATED]
    if animated:
        current = sum(r.valid + r.adopted for r in animated)
        older = sum(r.old_design for r in animated)
        line = (f"{current} of {sum(r.total for r in animated)} animated cards have the animated "
                "URL of their current data")  # fmt: skip
        if older:
            line += f"; {older} more have one of an older design or await the rollout"
        print(line + ".")
    with engine.connect() as conn:
        for url in example_urls(conn):
            print(f"  e.g. {url}")
        unseen = unseen_cards(conn)
        watching = _watching(conn, args.settings)
        lacking = tables_without_animated_url(conn)
        print(f"\n{watching[0].upper()}{watching[1:]}.")
    if lacking:
        print(f"Animated URLs cannot be written: {', '.join(lacking)} lack the column "
              "animated_url (pd-pipeline add-animated-column adds it); the APNGs are made and "
              "stored meanwhile.")  # fmt: skip
    if unseen:
        print(f"First look: {unseen} cards not seen by the pipeline yet (the sensor's first ticks, "
              "or pd-pipeline track-changes, look at them).")  # fmt: skip
    # Animated URLs waiting for their column are said above, not counted: the operator's call.
    counted = [r for r in rows if r.image is Image.STATIC or not lacking]
    return _over_threshold(counted, len(homeless), args)


def _watching(conn, settings: Settings) -> str:
    from pd_pipeline.images.status import how_changes_are_found

    return how_changes_are_found(conn, settings.sensor_sweep_cards,
                                 settings.sensor_sweep_pass_minutes,
                                 settings.sensor_interval_seconds)  # fmt: skip


def _wait(wait) -> str:
    return "-" if wait is None else f"{wait.total_seconds() / 60:.0f} min"


def _over_threshold(rows, homeless: int, args: argparse.Namespace) -> int:
    """1 (for cron or CI) when the backlog is larger or older than allowed."""
    backlog = sum(r.lacking for r in rows) + homeless
    waits = [r.oldest_wait.total_seconds() / 60 for r in rows if r.oldest_wait is not None]
    problems = []
    if args.max_backlog is not None and backlog > args.max_backlog:
        problems.append(f"{backlog} card images lack a valid URL (allowed: {args.max_backlog})")
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


def add_animated_column(args: argparse.Namespace) -> int:
    from pd_pipeline.db.animated import add_column

    done = add_column(_engine(args))
    for sql in done:
        print(sql)
    print("Every card table has animated_url: the next runs write the animated cards' URLs."
          if done else "Every card table already has animated_url: nothing to do.")  # fmt: skip
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

    from pd_pipeline.images.picks import preview as make_preview
    from pd_pipeline.render.chromium import ChromiumNotFound, find_chromium
    from pd_pipeline.render.pages import DesignError, pages_for
    from pd_pipeline.render.preview import summary_lines

    try:
        design = pages_for(args.templates or args.settings.templates_dir)
        chromium = find_chromium(args.settings.chromium_path)
    except (DesignError, ChromiumNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = make_preview(
        design, chromium, Path(args.out), database_url=_database_url(args),
        store=args.settings.open_store(), cards=args.cards, player_ids=args.player or (),
    )  # fmt: skip
    print(f"Design {design.design_dir} (version {result.version}), {len(result.cards)} cards:")
    for line in summary_lines(result):
        print(line)
    failed = [card.error for card in result.cards if card.error] + result.animation_errors
    if failed:
        print(f"error: {len(failed)} cards failed", file=sys.stderr)
    if not result.cards:
        print(f"error: no cards of players {args.player}", file=sys.stderr)
    return 1 if failed or not result.cards else 0


def why(args: argparse.Namespace) -> int:
    import json

    from pd_pipeline.images.explain import CardNotFound, Timing, explain, find_card
    from pd_pipeline.images.inventory import StoreUnavailable

    if (args.card_type is None) != (args.card_id is None) or (
        args.card_id is None and (args.player is None or args.variant is None)
    ):
        print("error: name a card: CARD_TYPE CARD_ID, or --player N --variant N", file=sys.stderr)
        return 2
    engine, store = _engine(args), args.settings.open_store()
    current = args.settings
    timing = Timing(current.sensor_interval_seconds, current.reconcile_cron, "UTC",
                    current.sensor_sweep_cards, current.sensor_sweep_pass_minutes)  # fmt: skip
    try:
        card_type, card_id = (args.card_type, args.card_id)
        if card_id is None:
            card_type, card_id = find_card(engine, args.player, args.variant, args.type)
        found = explain(engine, store, args.settings.card_policy(store), card_type, card_id,
                        timing=timing, dagster_ui_url=args.settings.dagster_ui_url)  # fmt: skip
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
    rows += _image_rows(e)
    rows.append(("changes", e.changes))
    if e.animated is not None:
        rows.append(("animated", "the design animates its tier (APNG)"))
        url = e.animated.url or "none (NULL)"
        if not e.animated_column:
            url = "cannot be written: the card table has no animated_url column yet " \
                  "(pd-pipeline add-animated-column)"  # fmt: skip
        rows += [("  url", url)] + [(f"  {name}", text) for name, text in _image_rows(e.animated)]
    for name, text in rows:
        print(f"  {name + ':':<15}{text}")


def _image_rows(e) -> list[tuple[str, str]]:
    """What `why` says of one image: its ledger entry, object, last run, state and next step."""
    rows = []
    if e.ledger is None:
        rows.append(("ledger", "no entry: no run or sweep has read this row"))
    else:
        led = e.ledger
        inputs = "current" if led.inputs_current else (
            f"changed since (ledger {_short(led.input_hash)}, now {_short(led.current_input_hash)})"
        )  # fmt: skip
        rows.append(("ledger", f"{led.status}, inputs {inputs}"))
        if led.found_by:
            rows.append(("found by", led.found_by))
        if led.error:
            rows.append(("error", led.error))
        times = {"first pending": led.first_pending_at, "rendered": led.rendered_at,
                 "written": led.written_at}  # fmt: skip
        for name, moment in times.items():
            rows.append((name, f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "-"))
        rows.append(("made by", f"pd_pipeline {led.release}" if led.release else
                     "a release before 0.2.0 (which recorded none)"))  # fmt: skip
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
    return rows + [("state", f"{e.state}: {e.reason_text}"), ("next", e.next), ("when", e.when)]


def _short(digest: str | None) -> str:
    return f"{digest[:12]}…" if digest else "none"


def orphans(args: argparse.Namespace) -> int:
    import datetime as dt

    from pd_pipeline.images.inventory import StoreUnavailable
    from pd_pipeline.images.orphans import delete_old, find_orphans
    from pd_pipeline.storage.keys import cardset_id_of

    try:
        ids = [int(c) if c.isdigit() else cardset_id_of(c) for c in args.cardsets]
        grace = dt.timedelta(hours=args.grace_hours)
        store = args.settings.open_store()
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
    try:
        settings = settings_model.load()
    except settings_model.SettingsError as e:
        print(f"pd-pipeline: {e}", file=sys.stderr)
        return 2
    for note in settings_model.misspelt():
        print(f"warning: {note}", file=sys.stderr)
    args = _parser(settings).parse_args(argv)
    args.settings = settings
    try:
        return args.run(args)
    except SchemaTooNew as e:
        print(f"pd-pipeline: {e}", file=sys.stderr)
        return 1


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pd-pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--database-url",
        help=f"SQLAlchemy URL (default: $PD_DATABASE_URL or {DEFAULT_DATABASE_URL})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "init-db", help="create the card tables and indexes on an empty database"
    ).set_defaults(run=init_db)
    commands.add_parser(
        "migrate",
        help="bring the pipeline's own tables to this release (every run does it first too)",
    ).set_defaults(run=migrate)
    seed = commands.add_parser("seed-demo", help="fill demo cardsets from real Lahman seasons")
    seed.add_argument("--seasons", type=int, nargs="+", default=[2008, 2019])
    seed.add_argument(
        "--players-per-season", type=int, help="keep only the N best players of each season"
    )
    seed.set_defaults(run=seed_demo)
    status_command = commands.add_parser("status", help="where every cardset's card images stand")
    status_command.add_argument(
        "--max-backlog",
        type=int,
        help="exit 1 when more card images than this (a still, an animation) lack a valid URL",
    )
    status_command.add_argument(
        "--max-wait-minutes",
        type=float,
        default=settings.backlog_max_wait_minutes,
        help="exit 1 when a card has waited longer (default: $PD_BACKLOG_MAX_WAIT_MINUTES or 60)",
    )
    status_command.set_defaults(run=status)
    track = commands.add_parser(
        "track-changes",
        help="install triggers that record which cards changed (idempotent; the card tables' "
        "rows are never altered), then look once at every card the pipeline has not seen",
    )
    track.add_argument("--remove", action="store_true", help="drop the triggers and their queue")
    track.set_defaults(run=track_changes)
    commands.add_parser(
        "add-indexes",
        help="add the indexes the sensor needs to stay cheap on large card tables (idempotent; "
        "CONCURRENTLY on PostgreSQL)",
    ).set_defaults(run=add_indexes)
    commands.add_parser(
        "add-animated-column",
        help="add the nullable column animated_url, where the URLs of animated cards (APNGs) "
        "are written, to card tables lacking it (idempotent; no row is rewritten)",
    ).set_defaults(run=add_animated_column)
    chromium_command = commands.add_parser("chromium", help="print the Chromium the renderer uses")
    chromium_command.add_argument(
        "--install", action="store_true", help="install Debian's chromium if none"
    )
    chromium_command.set_defaults(run=chromium)
    why_command = commands.add_parser(
        "why", help="why a card has no image, or this one, and what happens next"
    )
    why_command.add_argument(
        "card_type", nargs="?", metavar="CARD_TYPE", help="battingcard or pitchingcard"
    )
    why_command.add_argument("card_id", nargs="?", type=int, metavar="CARD_ID")
    why_command.add_argument("--player", type=int, help="the card's player id (with --variant)")
    why_command.add_argument("--variant", type=int, help="the card's variant (with --player)")
    why_command.add_argument("--type", choices=CARD_TYPES, help="with --player")
    why_command.add_argument("--json", action="store_true", help="print it as one JSON object")
    why_command.set_defaults(run=why)
    orphans_command = commands.add_parser(
        "orphans", help="list (or --delete) objects under cards/ that no card row uses"
    )
    orphans_command.add_argument(
        "cardsets", nargs="*", metavar="CARDSET", help="e.g. cardset-001 (default: all)"
    )
    orphans_command.add_argument(
        "--delete", action="store_true", help="delete them (default: a dry run)"
    )
    orphans_command.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="never delete an object written less than this long ago (default: 24)",
    )
    orphans_command.set_defaults(run=orphans)
    preview_command = commands.add_parser(
        "preview",
        help="render sample cards in a design (default: $PD_TEMPLATES_DIR or the shipped one) "
        "into a contact sheet, and compare them with the current images; writes nothing else",
    )
    preview_command.add_argument(
        "--templates", metavar="DIR", help="the design folder (default: $PD_TEMPLATES_DIR)"
    )
    which = preview_command.add_mutually_exclusive_group()
    which.add_argument("--cards", metavar="N", type=int, default=16, help="cards to pick (16)")
    which.add_argument(
        "--player", metavar="ID", type=int, nargs="+", help="every card of these players"
    )
    preview_command.add_argument(
        "--out", metavar="DIR", default="var/preview", help="where to write"
    )
    preview_command.set_defaults(run=preview)
    return parser


if __name__ == "__main__":
    sys.exit(main())
