"""The card database's locks (`db.locks`), on SQLite and PostgreSQL: one holder at a time, waits
that end, and a lock that dies with the process holding it; and how a PNG step over several
cardsets takes them (`images.exclusive`)."""

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pd_pipeline.db.engine import make_engine
from pd_pipeline.db.locks import LockTimeout, held, lock_for
from pd_pipeline.images.exclusive import CardsetBusy, in_turn, rendering

HOLD_UNTIL_KILLED = textwrap.dedent(
    """
    import sys, time
    from pd_pipeline.db.engine import make_engine
    from pd_pipeline.db.locks import lock_for
    lock = lock_for(make_engine(sys.argv[1]), "battingcard_pngs", 1, "run doomed")
    assert lock.try_acquire()
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_one_holder_at_a_time_and_a_wait_that_ends(db_url):
    engine = make_engine(db_url)
    first = lock_for(engine, "battingcard_pngs", 1, "run first")
    second = lock_for(engine, "battingcard_pngs", 1, "run second")
    assert first.try_acquire()
    try:
        assert not second.try_acquire()
        assert second.holder() == "run first"
        # Another cardset, another card type: other locks.
        for scope, number in (("battingcard_pngs", 2), ("pitchingcard_pngs", 1)):
            other = lock_for(engine, scope, number, "run other")
            with held(other, wait=0):
                pass
        told = []
        started = time.monotonic()
        waiting = held(second, wait=2.2, every=0.5, waiting=lambda s, h: told.append((s, h)))
        with pytest.raises(LockTimeout, match="held by run first") as timeout, waiting:
            pytest.fail("the lock was taken twice")
        assert 2.2 <= time.monotonic() - started < 7 and timeout.value.holder == "run first"
        # Told every 0.5 s while it waits (fewer times on a loaded machine), naming the holder.
        assert len(told) >= 2 and {holder for _, holder in told} == {"run first"}
    finally:
        assert first.release()
    with held(second, wait=0) as holding:
        assert second.holder() == "run second" and not holding.lost
    assert not holding.lost and first.holder() is None


def test_a_lock_dies_with_the_process_holding_it(db_url):
    engine = make_engine(db_url)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_UNTIL_KILLED, db_url],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        waiting = lock_for(engine, "battingcard_pngs", 1, "run survivor")
        assert not waiting.try_acquire() and waiting.holder() == "run doomed"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # Nobody releases it: the server ends the session (PostgreSQL), the kernel the flock (SQLite).
    with held(waiting, wait=10) as holding:
        assert holding.waited < 10


def test_a_step_over_several_cardsets_does_the_free_ones_first(sqlite_url, caplog):
    engine = make_engine(sqlite_url)
    other_run = lock_for(engine, "battingcard_pngs", 1, "run other")
    assert other_run.try_acquire()
    threading.Timer(1.0, other_run.release).start()

    def make(cardset_id: int, wait: float) -> int:
        with rendering(engine, "battingcard", cardset_id, run_id="mine", wait=wait):
            return cardset_id

    with caplog.at_level(logging.INFO, logger="pd_pipeline.images.exclusive"):
        assert list(in_turn([1, 2, 3], make)) == [2, 3, 1]
    said = caplog.text
    assert (
        "battingcard cardset-001: run other is making its PNGs; back to it after the others" in said
    )
    assert "battingcard cardset-001: its turn after" in said


def test_a_step_that_waits_too_long_names_the_cardset_and_the_run(sqlite_url):
    engine = make_engine(sqlite_url)
    other_run = lock_for(engine, "pitchingcard_pngs", 12, "run other")
    said = r"pitchingcard cardset-012: gave up after waiting \ds for run other, which is making"
    with (
        held(other_run, wait=0),
        pytest.raises(CardsetBusy, match=said),
        rendering(engine, "pitchingcard", 12, run_id="mine", wait=1),
    ):
        pytest.fail("the lock was taken twice")
