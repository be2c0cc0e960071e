"""Faults injected mid-run into the real services lose nothing, and the run (or the rerun)
completes: a locked SQLite database, a killed or frozen Chromium, a killed PostgreSQL connection,
an S3 server that goes away, and one that throttles, errs and drops connections."""

import contextlib
import itertools
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from moto.server import ThreadedMotoServer

from pd_pipeline.db.cards import load_cards
from pd_pipeline.images.writeback import write_back
from pd_pipeline.render.browser import CLOSE_TIMEOUT_S, BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import pages_for
from pd_pipeline.storage.keys import object_key
from pd_pipeline_tests.helpers import (
    assert_url_opens_its_png,
    card_policy,
    image_urls,
    ledger_failures,
    materializations,
    materialize,
    memory_instance,
    run_partition,
    seed_small_demo,
    stored_count,
)
from pd_pipeline_tests.services import FlakyS3, free_port, s3_settings

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
# Enough cards (12 players: 15 cards) that a fault injected at the fifth lands mid-run.
PLAYERS = 12


def chromium_pids() -> list[int]:
    """The headless Chromium processes this test process started (never anyone else's)."""
    ours, found = {os.getpid()}, True
    while found:  # walk down the process tree: python -> Playwright driver -> Chromium
        out = subprocess.run(["pgrep", "-P", ",".join(map(str, ours))], capture_output=True)
        children = {int(pid) for pid in out.stdout.split()}
        found = bool(children - ours)
        ours |= children
    return [pid for pid in ours if b"--headless" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # it has exited meanwhile


def when(condition, then, timeout: float = 120) -> threading.Thread:
    """Run `then` in a thread as soon as `condition` holds: a fault injected mid-run."""

    def watch():
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def demo(sqlite_url, s3_env, monkeypatch):
    monkeypatch.setenv("PD_DATABASE_URL", sqlite_url)
    engine = seed_small_demo(sqlite_url, players=PLAYERS)
    with memory_instance() as instance:
        yield engine, instance


def test_a_killed_chromium_is_relaunched_and_the_run_completes(demo):
    engine, instance = demo
    killed = []

    def kill():
        for pid in chromium_pids():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    fault = when(lambda: stored_count(engine) >= 5, kill)
    result = run_partition(instance)
    fault.join()
    assert killed, "the fault was not injected"
    assert result.success
    assert all(image_urls(engine).values()) and all(image_urls(engine, "pitchingcard").values())


def test_a_frozen_chromium_times_out_and_the_run_completes(demo, monkeypatch):
    """SIGSTOP makes every page hang past its timeout; the pool throws the browser away."""
    engine, instance = demo
    monkeypatch.setenv("PD_RENDER_TIMEOUT_SECONDS", "2")
    frozen = []

    def freeze():
        frozen.extend(chromium_pids())
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)

    fault = when(lambda: stored_count(engine) >= 5, freeze)
    result = run_partition(instance)
    fault.join()
    for pid in frozen:  # whatever the pool did not reap
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert frozen, "the fault was not injected"
    assert result.success
    assert all(image_urls(engine).values()) and all(image_urls(engine, "pitchingcard").values())


def test_a_frozen_browser_is_killed_not_waited_for():
    """A browser that stops answering costs a page timeout and CLOSE_TIMEOUT_S, then is killed;
    waiting for it to close would take Playwright ~30 s."""
    templates = pages_for()
    with BrowserPool(find_chromium(), templates, pages=2, timeout_s=2) as pool:
        assert pool.render("<b>warm</b>")
        frozen = chromium_pids()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        results = list(pool.render_many((i, "<b>card</b>") for i in range(4)))
        took = time.monotonic() - started
        for pid in frozen:  # its renderers, stopped too, are not the pool's to reap
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert all(r.png for r in results), [r.error for r in results]
    assert pool.launches == 2
    assert took < 2 * 2 + CLOSE_TIMEOUT_S + 10, f"recovering from a frozen browser took {took:.0f}s"


def test_sqlite_locked_by_another_writer_is_waited_out(demo, sqlite_url):
    engine, instance = demo
    assert materialize(instance, "battingcard_pngs").success
    path = sa.make_url(sqlite_url).database
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another client holds the write lock ...
    threading.Timer(3.0, other.execute, ["COMMIT"]).start()  # ... for three seconds
    started = time.monotonic()
    report = write_back(engine, card_policy(), "battingcard", 1)
    assert time.monotonic() - started >= 2.5, "the lock was not held"
    assert report.written == report.candidates > 0
    assert all(image_urls(engine).values())


def test_a_killed_postgres_connection_mid_write_back_is_retried(pg_url, s3_env, monkeypatch):
    monkeypatch.setenv("PD_DATABASE_URL", pg_url)
    engine = seed_small_demo(pg_url, players=PLAYERS)
    with memory_instance() as instance:
        assert materialize(instance, "battingcard_pngs").success
        with engine.begin() as conn:
            # Slow each row's update down so the kill lands mid write-back.
            conn.exec_driver_sql(
                "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(0.25); "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER slow BEFORE UPDATE ON battingcard "
                "FOR EACH ROW EXECUTE FUNCTION slow()"
            )
        admin = sa.create_engine(pg_url)
        writer = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query ILIKE 'UPDATE battingcard%%'"
        )
        killed = []

        def writing() -> bool:
            with admin.connect() as conn:
                return conn.exec_driver_sql(writer).first() is not None

        def kill() -> None:
            with admin.connect() as conn:
                for (pid,) in conn.exec_driver_sql(writer).all():
                    conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
                    killed.append(pid)

        fault = when(writing, kill)
        result = materialize(instance, "battingcard_image_urls")
        fault.join()
        assert killed, "the fault was not injected"
        assert result.success, "a killed connection is retried"
        assert all(image_urls(engine).values())


def test_s3_going_away_mid_run_fails_clearly_and_the_rerun_completes(sqlite_url, monkeypatch):
    """The S3 server goes away during the PNG steps: the run stops with a clear error, every URL
    written opens its object, and once S3 is back the rerun completes the partition. (moto's
    threaded server keeps its objects in this process, so they outlive the server's restart.)"""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # An outage past the run's own retries: PD_STEP_RETRIES=0 stands for them having run out.
    env = {"PD_DATABASE_URL": sqlite_url, **s3_settings(endpoint, "cards-outage"),
           "PD_STEP_RETRIES": "0"}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="cards-outage")
    engine = seed_small_demo(sqlite_url, players=PLAYERS)
    with memory_instance() as instance:
        fault = when(lambda: stored_count(engine) >= 5, server.stop)
        started = time.monotonic()
        failed = run_partition(instance)
        fault.join()
        assert not failed.success
        assert time.monotonic() - started < 180, "a dead store must fail the run fast"
        errors = [
            e.step_failure_data.error.to_string() for e in failed.all_events if e.is_step_failure
        ]
        assert any("is unavailable" in error for error in errors), errors

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        server.start()  # back, with what it held
        try:
            for url in filter(None, image_urls(engine).values()):
                assert_url_opens_its_png(url)  # nothing written for an unconfirmed object
            assert run_partition(instance).success
            for card_type in ("battingcard", "pitchingcard"):
                for url in image_urls(engine, card_type).values():
                    assert_url_opens_its_png(url)
        finally:
            server.stop()


def test_a_short_store_outage_is_ridden_out_by_the_steps_own_retries(sqlite_url, monkeypatch):
    """The S3 server goes away mid-render for a few seconds: the step fails, is tried again in
    the run after a backoff (PD_STEP_RETRIES), and the run completes with every URL right."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"PD_DATABASE_URL": sqlite_url, **s3_settings(endpoint, "cards-blip"),
           "AWS_MAX_ATTEMPTS": "1", "PD_STEP_RETRY_DELAY_SECONDS": "3"}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="cards-blip")
    engine = seed_small_demo(sqlite_url, players=PLAYERS)
    back = []

    def blip() -> None:
        server.stop()
        time.sleep(2)
        back.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port))
        back[0].start()  # with what it held: moto keeps objects in this process

    try:
        with memory_instance() as instance:
            fault = when(lambda: stored_count(engine) >= 5, blip)
            result = run_partition(instance)
            fault.join()
        assert back, "the fault was not injected"
        retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert retried and result.success
        for card_type in ("battingcard", "pitchingcard"):
            for url in image_urls(engine, card_type).values():
                assert_url_opens_its_png(url)
    finally:
        for running in back or [server]:
            running.stop()


def test_transient_s3_errors_are_retried_and_a_lasting_one_fails_only_its_card(
    sqlite_url, s3_server, monkeypatch
):
    """Throttling (503 SlowDown), server errors (500) and dropped connections on the way to a
    real S3 server are retried, with backoff, by the S3 client; a key that keeps failing fails
    only its card, after a bounded number of attempts, and the rest of the partition is done."""
    engine = seed_small_demo(sqlite_url, players=8)
    bucket = s3_server.new_bucket()
    with engine.connect() as conn:
        victim = load_cards(conn, "battingcard", cardset_id=1)[0]
    lasting = f"/{bucket}/{object_key('battingcard', 1, victim.player_id, victim.variant)}"
    kinds, faults = ("SlowDown", "InternalError", "drop"), itertools.count()

    def fault(method: str, path: str, before: int) -> str | None:
        if path == lasting and method == "PUT":
            return "SlowDown"
        if "/cards/" in path and method in ("HEAD", "PUT") and before == 0:
            n = next(faults)  # every other card request fails its first attempt
            return kinds[n // 2 % 3] if n % 2 == 0 else None
        return None

    flaky = FlakyS3(s3_server.endpoint_url, fault)
    for key, value in {"PD_DATABASE_URL": sqlite_url,
                       **s3_settings(flaky.endpoint_url, bucket)}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    try:
        with memory_instance() as instance:
            result = run_partition(instance)
        assert {kind for kind, _, _ in flaky.injected} == set(kinds)
        # Bounded: the first try and S3Resource's max_attempts (5) retries, then the card fails.
        assert flaky.seen["PUT", lasting] == 6
        assert not result.success  # the card that never stored fails the run, naming it
        failures = materializations(result, "battingcard_pngs")["failures"]
        # The store refused it, not its data: reported, and left waiting for the next run, not
        # recorded as failed until its data changes.
        assert victim.label in failures and "SlowDown" in failures
        assert not ledger_failures(engine, "battingcard")
        assert image_urls(engine)[victim.card_id] is None
        for card_type in ("battingcard", "pitchingcard"):
            for card_id, url in image_urls(engine, card_type).items():
                if (card_type, card_id) != ("battingcard", victim.card_id):
                    assert_url_opens_its_png(url)  # every fault but the lasting one was retried
    finally:
        flaky.stop()  # after the URLs are opened: they point at it
