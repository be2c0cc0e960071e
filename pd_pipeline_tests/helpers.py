"""Shared test steps: seed a small demo, run the Dagster jobs for real, read back the results."""

import functools
import hashlib
import random
import time
from urllib.parse import urlparse

import dagster as dg
import sqlalchemy as sa

from pd_pipeline import settings
from pd_pipeline.db import schema
from pd_pipeline.db.engine import make_engine
from pd_pipeline.defs import build_defs
from pd_pipeline.demo import seed_demo
from pd_pipeline.images.audit import audit_cardset
from pd_pipeline.model import CARD_TYPES
from pd_pipeline.render.png import verify_png
from pd_pipeline.storage.keys import TOKEN_LENGTH


def memory_instance() -> dg.DagsterInstance:
    """A Dagster instance kept in memory (runs, events, partitions), for runs executed in the
    test's process: the same instance API without an SQLite event log (~1 s less a run).
    Tests of the daemon, the CLI and the webserver use instances on disk."""
    return dg.DagsterInstance.ephemeral()


def seed_small_demo(url: str, players: int = 12, seasons=(2008,)) -> sa.Engine:
    engine = make_engine(url)
    schema.create_card_tables(engine)
    seed_demo(engine, seasons=seasons, players_per_season=players, extra_variant_share=0.3)
    return engine


def sensor_tick(instance: dg.DagsterInstance, cursor: str | None = None, log=None):
    """One evaluation of pending_images_sensor as the daemon runs it, with resources from the
    environment; the cardsets it registers are registered. Returns the result and its cursor."""
    defs = build_defs()
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources
    ) as context:
        if log:
            context.log.addHandler(log)  # what the UI shows as the tick's log
        result = defs.resolve_sensor_def("pending_images_sensor")(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result, result.cursor


def run_keys(result: dg.SensorResult) -> dict[str, str]:
    """Partition -> run key of a tick's run requests."""
    return {r.partition_key: r.run_key for r in result.run_requests}


def run_partition(
    instance: dg.DagsterInstance, partition: str = "cardset-001", tags=None, **run_config
):
    """card_images_job for one cardset, on `instance`, with resources from the environment."""
    instance.add_dynamic_partitions("cardsets", [partition])
    job = build_defs().resolve_job_def("card_images_job")
    return job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                  run_config=run_config, tags=tags)  # fmt: skip


def materialize(
    instance: dg.DagsterInstance, *assets: str, partition: str = "cardset-001", run_config=None
):
    """Some of card_images_job's assets, without their checks, for one cardset."""
    instance.add_dynamic_partitions("cardsets", [partition])
    job = build_defs().resolve_job_def("card_images_job")
    subset = job.get_subset(
        asset_selection={dg.AssetKey(a) for a in assets}, asset_check_selection=set()
    )
    return subset.execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False, run_config=run_config
    )


def open_store():
    """The object store the environment names, as `pd-pipeline` opens it (once per settings:
    tests check many URLs)."""
    return _opened(settings.load())


@functools.cache
def _opened(of: settings.Settings):
    return of.open_store()


def card_policy():
    """The policy runs in this environment hold cards to (design, public base URL, adoption)."""
    return settings.load().card_policy(open_store())


def ledger_failures(engine: sa.Engine, card_type: str) -> dict[int, str]:
    """The ledger's failed cards of a type: id -> error."""
    entry = schema.card_render
    query = sa.select(entry.c.card_id, entry.c.error).where(
        entry.c.card_type == card_type, entry.c.status == "failed"
    )
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def stored_count(engine: sa.Engine) -> int:
    """Cards whose object the ledger has confirmed in the store."""
    entry = schema.card_render
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(entry.c.status == "stored")
        return conn.scalar(query.select_from(entry))


def assert_every_card_correct(engine: sa.Engine, cardset_ids=(1,), opened: int = 50) -> int:
    """Every card of the cardsets passes the audit (its URL canonical, current, its object
    valid), and `opened` URLs of each type, at random, open their PNG; returns the cards."""
    store, policy = open_store(), card_policy()
    cards = 0
    for card_type in CARD_TYPES:
        urls = list(image_urls(engine, card_type).values())
        assert all(urls), f"a {card_type} was left without a URL"
        for url in random.Random(7).sample(urls, min(opened, len(urls))):
            assert_url_opens_its_png(url)
        for cardset_id in cardset_ids:
            audit = audit_cardset(engine, store, policy, card_type, cardset_id)
            problems = [p.reason for found in audit.findings.values() for p in found]
            problems += [p.reason for p in audit.bad_objects]
            assert not audit.waiting and not problems, f"{card_type} {cardset_id}: {problems}"
            cards += audit.cards
    return cards


def materializations(result, asset: str) -> dict:
    """The metadata of the run's materialization of `asset` (one per partition, all alike)."""
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)
    ]
    assert events, f"{asset} was not materialized"
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def every_url_written(engine: sa.Engine) -> bool:
    return all(all(image_urls(engine, t).values()) for t in schema.CARD_TABLES)


def wait_for(condition, what: str, timeout: float, every: float = 1.0) -> float:
    """Poll `condition` until it holds; the seconds that took. Fails naming `what` after
    `timeout` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def image_urls(engine: sa.Engine, card_type: str = "battingcard") -> dict[int, str | None]:
    table = schema.CARD_TABLES[card_type]
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.image_url)).all())


def assert_url_opens_its_png(url: str) -> None:
    """The URL's key holds a valid 1200x600 PNG whose bytes match the URL's token."""
    opened = open_store()
    parsed = urlparse(url)
    assert url.startswith(opened.public_base_url + "/"), url
    key = url[len(opened.public_base_url) + 1 :].split("?")[0]
    png = opened.get(key)
    verify_png(png)
    assert parsed.query == f"d={hashlib.sha256(png).hexdigest()[:TOKEN_LENGTH]}"


def add_variant(
    engine: sa.Engine, card_type: str = "battingcard", *, variant: int, shift: float = 0.0
) -> int:
    """Copy the first card of `card_type` as a new variant; `shift` moves chances from
    strikeout to homerun on both sides (a sum other than 108 if it is not moved back)."""
    card, ratings = schema.CARD_TABLES[card_type], schema.RATINGS_TABLES[card_type]
    fk = f"{card_type}_id"
    with engine.begin() as conn:
        base = conn.execute(sa.select(card).order_by(card.c.id).limit(1)).mappings().one()
        row = {k: v for k, v in base.items() if k not in ("id", "image_url")} | {"variant": variant}
        new_id = conn.execute(sa.insert(card).values(row).returning(card.c.id)).scalar_one()
        for side in conn.execute(sa.select(ratings).where(ratings.c[fk] == base["id"])).mappings():
            values = {k: v for k, v in side.items() if k != "id"} | {fk: new_id}
            values["homerun"] += shift
            conn.execute(sa.insert(ratings).values(values))
    return new_id


def move_chances(engine: sa.Engine, card_id: int, amount: float = 1.0) -> None:
    """Edit a batting card's ratings as a designer would: strikeouts become homeruns (sum 108)."""
    t = schema.battingcardratings
    with engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.battingcard_id == card_id)
            .values(homerun=t.c.homerun + amount, strikeout=t.c.strikeout - amount)
        )


def add_cardset(engine: sa.Engine, cardset_id: int) -> int:
    """A new cardset with one player whose batting card copies the first one's; returns its id."""
    card, ratings, player = schema.battingcard, schema.battingcardratings, schema.player
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.cardset).values(id=cardset_id, name=f"Set {cardset_id}"))
        base = conn.execute(sa.select(card).order_by(card.c.id).limit(1)).mappings().one()
        person = (
            conn.execute(sa.select(player).where(player.c.player_id == base["player_id"]))
            .mappings()
            .one()
        )
        values = {k: v for k, v in person.items() if k != "player_id"} | {"cardset_id": cardset_id}
        player_id = conn.execute(
            sa.insert(player).values(values).returning(player.c.player_id)
        ).scalar_one()
        row = {k: v for k, v in base.items() if k not in ("id", "image_url")}
        new_id = conn.execute(
            sa.insert(card).values(row | {"player_id": player_id}).returning(card.c.id)
        ).scalar_one()
        for side in conn.execute(sa.select(ratings).where(ratings.c.battingcard_id == base["id"])):
            values = {k: v for k, v in side._mapping.items() if k != "id"}
            conn.execute(sa.insert(ratings).values(values | {"battingcard_id": new_id}))
    return new_id
