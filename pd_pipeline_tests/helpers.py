"""Shared test steps: seed a small demo, run the Dagster jobs for real, read back the results."""

import hashlib
from urllib.parse import urlparse

import dagster as dg
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.db.demo import seed_demo
from pd_pipeline.db.engine import make_engine
from pd_pipeline.definitions import build_defs
from pd_pipeline.render.png import verify_png
from pd_pipeline.resources import store_from_env
from pd_pipeline.storage.keys import TOKEN_LENGTH


def seed_small_demo(url: str, players: int = 12, seasons=(2008,)) -> sa.Engine:
    engine = make_engine(url)
    schema.create_card_tables(engine)
    seed_demo(engine, seasons=seasons, players_per_season=players, extra_variant_share=0.3)
    return engine


def run_partition(instance: dg.DagsterInstance, partition: str = "cardset-001", **run_config):
    """card_images_job for one cardset, on `instance`, with resources from the environment."""
    instance.add_dynamic_partitions("cardsets", [partition])
    job = build_defs().resolve_job_def("card_images_job")
    return job.execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False, run_config=run_config
    )


def materialize(instance: dg.DagsterInstance, *assets: str, partition: str = "cardset-001"):
    """Some of card_images_job's assets (with their checks) for one cardset."""
    instance.add_dynamic_partitions("cardsets", [partition])
    return (
        build_defs()
        .resolve_job_def("card_images_job")
        .execute_in_process(
            instance=instance,
            partition_key=partition,
            asset_selection=[dg.AssetKey(a) for a in assets],
            raise_on_error=False,
        )
    )


def materializations(result, asset: str) -> dict:
    """The metadata of the run's materialization of `asset` (one per partition, all alike)."""
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)
    ]
    assert events, f"{asset} was not materialized"
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def image_urls(engine: sa.Engine, card_type: str = "battingcard") -> dict[int, str | None]:
    table = schema.CARD_TABLES[card_type]
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.image_url)).all())


def assert_url_opens_its_png(url: str) -> None:
    """The URL's key holds a valid 1200x600 PNG whose bytes match the URL's token."""
    store = store_from_env()
    parsed = urlparse(url)
    assert url.startswith(store.public_base_url + "/"), url
    key = url[len(store.public_base_url) + 1 :].split("?")[0]
    png = store.get(key)
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
