"""One run at a time makes one image (PNGs, or APNGs) of a card type in a cardset, whoever launched
it: the sensor, a UI backfill's range of cardsets, the CI job, the nightly reconcile or an
operator. The image step holds the lock `(<card type>_<image>s, cardset id)` (as
`battingcard_pngs`) in the card database (`db.locks`) from its plan
to its last ledger row. A step that finds it taken waits, then plans as usual: what the other run
made is in the ledger by then, so it renders only what is left. A step covering several cardsets
does first those nobody else is rendering (`in_turn`).

Only making images is exclusive. Write-back needs no lock: each row is written by a conditional
UPDATE under row locks, so two runs write the same URL or nothing. The checks only read.
"""

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa

from pd_pipeline.db.locks import POLL_SECONDS, LockTimeout, held, lock_for
from pd_pipeline.storage.keys import partition_key

log = logging.getLogger(__name__)
# Far longer than a cardset takes (10,000 cards in about 7 minutes), and shorter than
# card_images_job's maximum runtime (1 hour): a wait behind a hung run ends with this step's
# own error naming the cardset, rather than with the run killed for its runtime.
LOCK_WAIT_SECONDS = 1800
WAIT_LOG_EVERY_S = 5.0

T = TypeVar("T")


class CardsetBusy(RuntimeError):
    """Another run is making the cardset's images, for longer than this one would wait."""


def owner(run_id: str | None) -> str:
    """How the holder of a lock is named to whoever waits for it."""
    return f"run {run_id}" if run_id else f"pid {os.getpid()} on {socket.gethostname()}"


@contextmanager
def rendering(
    engine: sa.Engine,
    card_type: str,
    cardset_id: int,
    *,
    image: str = "png",
    run_id: str | None = None,
    logger: logging.Logger | Any = log,
    wait: float = LOCK_WAIT_SECONDS,
) -> Iterator[None]:
    """Hold the lock on the cardset's `image` for the block, waiting at most `wait` seconds for
    it (0: not at all), logging every few seconds whom it waits for; then CardsetBusy."""
    what = f"{card_type} {partition_key(cardset_id)}"
    lock = lock_for(engine, f"{card_type}_{image}s", cardset_id, owner(run_id))
    making = f"making its {image.upper()}s"

    def waiting(seconds: float, holder: str | None) -> None:
        logger.info(f"{what}: waiting for {holder or 'another run'}, which is {making} "
                    f"({seconds:.0f}s so far, {wait:.0f}s at most)")  # fmt: skip

    try:
        with held(lock, wait=wait, waiting=waiting, every=WAIT_LOG_EVERY_S) as holding:
            if holding.waited >= POLL_SECONDS:
                logger.info(f"{what}: its turn after {holding.waited:.1f}s of waiting")
            yield
    except LockTimeout as e:
        holder = e.holder or "another run"
        if not wait:
            logger.info(f"{what}: {holder} is {making}; back to it after the others")
            raise CardsetBusy(f"{what}: {holder} is {making}") from e
        raise CardsetBusy(
            f"{what}: gave up after waiting {e.waited:.0f}s for {holder}, which is {making} "
            "(a hung run is ended by run monitoring; this step is then tried again)"
        ) from e
    if holding.lost:
        logger.warning(
            f"{what}: its lock was lost during the step (its database connection broke): "
            f"another run may have been {making} at the same time"
        )


def in_turn(cardset_ids: Sequence[int], make: Callable[[int, float], T]) -> Iterator[T]:
    """`make(cardset_id, wait)` for each cardset, one at a time: first each one that no other
    run is rendering (`wait` 0), then the ones that were busy, waiting for each in turn. A run
    over a range of cardsets thus never idles behind another run while it has other work."""
    if len(cardset_ids) == 1:
        yield make(cardset_ids[0], LOCK_WAIT_SECONDS)
        return
    busy = []
    for cardset_id in cardset_ids:
        try:
            made = make(cardset_id, 0)
        except CardsetBusy:
            busy.append(cardset_id)
            continue
        yield made
    for cardset_id in busy:
        yield make(cardset_id, LOCK_WAIT_SECONDS)
