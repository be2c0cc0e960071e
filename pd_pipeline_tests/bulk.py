"""Card tables filled in bulk with SQL, for the scale tests and benches: a million card rows in
seconds, consistent by construction."""

import sqlalchemy as sa

from pd_pipeline.db import schema


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
