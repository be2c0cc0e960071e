"""Card tables filled in bulk with SQL, for the scale tests and benches: a million card rows in
seconds, consistent by construction."""

import hashlib
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from pd_pipeline.db import changes, ledger, schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.db.engine import make_engine
from pd_pipeline.db.indexes import add_indexes
from pd_pipeline.images import state
from pd_pipeline.model import BATTING_RESULTS
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import pages_for
from pd_pipeline.storage.keys import object_key
from pd_pipeline_tests.helpers import card_policy, open_store


def _numbers(dialect: str, n: int) -> str:
    if dialect == "postgresql":
        return f"SELECT g AS n FROM generate_series(1, {n}) AS g"
    seq = f"SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {n}"
    return f"WITH RECURSIVE seq(n) AS ({seq}) SELECT n FROM seq"


def fill(engine: sa.Engine, players: int, cardsets: int = 20) -> None:
    """`players` players, each with a batting and a pitching card (every hundredth with no URL,
    the rest with a URL and a ledger entry of it), two ratings rows a card, in `cardsets`."""
    numbers = _numbers(engine.dialect.name, players)
    url = "'https://cdn.example/cards/' || n || '.png'"
    with engine.begin() as conn:

        def run(sql: str) -> None:
            conn.execute(sa.text(sql))

        if engine.dialect.name == "postgresql":
            # Rows consistent by construction: skip the foreign-key triggers (half the time).
            run("SET LOCAL session_replication_role = replica")
        run(
            "INSERT INTO cardset (id, name) SELECT n, 'Set ' || n "
            f"FROM ({_numbers(engine.dialect.name, cardsets)}) s"
        )
        run(
            "INSERT INTO player (player_id, p_name, cardset_id, pos_1) "
            f"SELECT n, 'Player ' || n, 1 + n % {cardsets}, 'SS' FROM ({numbers}) s"
        )
        for table in ("battingcard", "pitchingcard"):
            run(
                f"INSERT INTO {table} (id, player_id, variant, hand, image_url) "
                "SELECT n, n, 0, 'R', "
                f"CASE WHEN n % 100 = 0 THEN NULL ELSE {url} END FROM ({numbers}) s"
            )
            run(
                f"INSERT INTO {table}ratings ({table}_id, vs_hand, homerun, walk, strikeout) "
                f"SELECT n, h.hand, 3, 10, 20 FROM ({numbers}) s CROSS JOIN "
                f"(SELECT 'L' AS hand UNION ALL SELECT 'R') h"
            )
            run(
                "INSERT INTO card_render (card_type, card_id, cardset_id, player_id, variant, "
                f"input_hash, url, status) SELECT '{table}', n, 1 + n % {cardsets}, n, 0, "
                f"'0', {url}, 'stored' FROM ({numbers}) s WHERE n % 100 <> 0"
            )
        if engine.dialect.name == "postgresql":
            for table in ("player", "battingcard", "pitchingcard"):
                column = "player_id" if table == "player" else "id"
                run(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), {players})")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def batting_cards(engine: sa.Engine, rows: int, per_cardset: int) -> list[int]:
    """`rows` valid batting cards (one per player, 108 chances a side) in cardsets of
    `per_cardset`, without URLs; returns the cardset ids."""
    dialect = engine.dialect.name
    cardsets = -(-rows // per_cardset)
    numbers, sets = _numbers(dialect, rows), _numbers(dialect, cardsets)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(f"INSERT INTO cardset (id, name) SELECT n, 'Set ' || n FROM ({sets}) s")
        run("INSERT INTO rarity (id, value, name, color) VALUES (1, 1, 'Starter', '#8fb4dc')")
        run(
            "INSERT INTO player (player_id, p_name, cardset_id, rarity_id, mlbclub, pos_1) "
            f"SELECT n, 'Player ' || n, 1 + (n - 1) / {per_cardset}, 1, 'Club', 'SS' "
            f"FROM ({numbers}) s"
        )
        run(
            "INSERT INTO battingcard (id, player_id, variant, steal_low, steal_high, running, "
            f"hand) SELECT n, n, 0, 3, 12, 11, 'R' FROM ({numbers}) s"
        )
        # 4 chances on each of 22 results, 24 strikeouts: the 108 of a side
        results = ", ".join(BATTING_RESULTS)
        values = ", ".join("24.0" if r == "strikeout" else "4.0" for r in BATTING_RESULTS)
        run(
            f"INSERT INTO battingcardratings (battingcard_id, vs_hand, {results}) "
            f"SELECT n, h.hand, {values} FROM ({numbers}) s CROSS JOIN "
            "(SELECT 'L' AS hand UNION ALL SELECT 'R') h"
        )
        run(
            "INSERT INTO cardposition (player_id, variant, position, range, error) "
            f"SELECT n, 0, 'SS', 3, 10 FROM ({numbers}) s"
        )
    add_indexes(engine)
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return list(range(1, cardsets + 1))


def settled_cardset(url: str, cards: int) -> sa.Engine:
    """One cardset of `cards` valid batting cards, every one settled as a run leaves it, without
    rendering each: one real PNG stored under every card's key with that card's own metadata,
    the ledger recording it, the URLs written; then its changes tracked."""
    engine = make_engine(url)
    schema.create_card_tables(engine)
    batting_cards(engine, cards, per_cardset=cards)
    policy, store, design = card_policy(), open_store(), pages_for()
    with engine.connect() as conn:
        every = load_cards(conn, "battingcard", cardset_id=1)
    with BrowserPool(find_chromium(), design, pages=1) as pool:
        png = pool.render(design.body(every[0]))
    sha, now = hashlib.sha256(png).hexdigest(), ledger.utcnow()

    def put(card) -> dict:
        key = object_key("battingcard", 1, card.player_id, card.variant)
        head = store.put(key, png, sha256=sha, input_hash=card.input_hash(policy.template_version))
        return state.object_confirmed(
            card, policy, sha256=sha, md5=head.md5, size=len(png), now=now, run_id="seed"
        )

    with ThreadPoolExecutor(16) as io:
        rows = list(io.map(put, every))
    table = schema.battingcard
    with engine.begin() as conn:
        ledger.upsert(conn, rows)
        conn.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(image_url=sa.bindparam("b_url")),
            [{"b_id": row["card_id"], "b_url": row["url"]} for row in rows],
        )
        ledger.update(conn, "battingcard", [r["card_id"] for r in rows],
                      state.written(now, "seed"))  # fmt: skip
    changes.install(engine)
    return engine


def replicate(engine: sa.Engine, copies: int, cardsets: int = 20) -> int:
    """Copy every player (with its cards, ratings and positions) `copies` times into `cardsets`
    new cardsets (ids 1001 on), each card row with a URL another renderer made (outside any
    store); real, drawable cards at any size. Returns the card rows added."""
    tables = [schema.player, schema.battingcard, schema.pitchingcard, schema.battingcardratings,
              schema.pitchingcardratings, schema.cardposition]  # fmt: skip
    with engine.begin() as conn:
        strides = {t.name: 1 + (conn.scalar(sa.select(sa.func.max(_key(t)))) or 0) for t in tables}
        numbers = _numbers(engine.dialect.name, copies)
        conn.execute(sa.text(
            "INSERT INTO cardset (id, name) SELECT 1000 + n, 'Copies ' || n "
            f"FROM ({_numbers(engine.dialect.name, cardsets)}) s"
        ))  # fmt: skip
        moved = {  # column -> the table whose ids it holds
            "player_id": "player", "battingcard_id": "battingcard",
            "pitchingcard_id": "pitchingcard",
        }  # fmt: skip
        added = 0
        for table in tables:
            values = []
            for column in table.columns:
                name = column.name
                if column is _key(table):
                    values.append(f"{name} + s.n * {strides[table.name]}")
                elif name in moved:
                    values.append(f"{name} + s.n * {strides[moved[name]]}")
                elif name == "cardset_id":
                    values.append(f"1001 + s.n % {cardsets}")
                elif name == "image_url":
                    key = f"id + s.n * {strides[table.name]}"
                    values.append(f"'https://elsewhere.example/{table.name}/' || ({key}) || '.png'")
                elif name == "animated_url":
                    values.append("NULL")
                else:
                    values.append(name)
            columns = ", ".join(c.name for c in table.columns)
            result = conn.execute(sa.text(
                f"INSERT INTO {table.name} ({columns}) SELECT {', '.join(values)} "
                f"FROM {table.name} CROSS JOIN ({numbers}) s"
            ))  # fmt: skip
            if table.name in schema.CARD_TABLES:
                added += result.rowcount
        if engine.dialect.name == "postgresql":
            for table in tables:
                key, name = _key(table).name, table.name
                sequence = f"pg_get_serial_sequence('{name}', '{key}')"
                conn.execute(sa.text(f"SELECT setval({sequence}, (SELECT max({key}) FROM {name}))"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return added


def _key(table: sa.Table) -> sa.Column:
    return next(iter(table.primary_key.columns))
