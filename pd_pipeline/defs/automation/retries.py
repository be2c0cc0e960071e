"""When work is tried again, at three scales:

- a short blip of the store or the card database inside a run: the step is retried in the run
  (`cards.steps.step_retries`: PD_STEP_RETRIES, exponential backoff with jitter); a card's own
  bad data never is (those failures say `allow_retries=False`);
- a run that crashed (its worker lost): the instance's run retries, which deploy/dagster.yaml
  limits to crashes (`retry_on_asset_or_op_failure: false`);
- a longer outage: the sensor launches the work a failed run left again, with backoff (below).

A run key names the work (`cardset-001:<backlog signature>`), so the same work is never launched
twice, and new work always is. A run that ended and left the same work waiting (an outage of the
store or the database, a lost worker, a hung run ended by run monitoring) is launched again
under a new key, after an exponential backoff with jitter, whatever the instance's own run
retries do. Cards that fail for their own data never count as waiting work (`db/backlog.py`), so
they never make their cardset relaunch: they are tried again once their data changes.
"""

import hashlib
from dataclasses import dataclass

SIGNATURE_TAG = "pd/signature"
ATTEMPT_TAG = "pd/attempt"
WILL_RETRY_TAG = "dagster/will_retry"  # set on a failed run the instance's run retries relaunch


@dataclass(frozen=True)
class LastRun:
    """What the sensor needs of the newest run it launched for a cardset."""

    run_id: str
    signature: str | None
    attempt: int
    status: str  # "FAILURE", "SUCCESS", "CANCELED", ...
    will_retry: bool  # the instance's run retries will launch it again themselves
    ended_at: float | None  # epoch seconds


@dataclass(frozen=True)
class Decision:
    launch: bool
    attempt: int
    run_key: str
    retry_at: float | None = None  # when the next attempt is due, if it waits
    why: str = ""  # for the tick's text when it does not launch now


def tags(signature: str, decision: Decision) -> dict[str, str]:
    """The tags a launched run carries, from which `LastRun` is read back."""
    return {SIGNATURE_TAG: signature, ATTEMPT_TAG: str(decision.attempt)}


@dataclass(frozen=True)
class Backoff:
    """The sensor's wait before launching failed work again (PD_RETRY_BACKOFF_*)."""

    base_seconds: int
    max_seconds: int

    def seconds(self, attempt: int, partition: str) -> float:
        """The wait after failed attempt `attempt`: the base, doubling, capped, stretched by up
        to 20% so cardsets that failed together do not all come back in the same tick. The
        stretch is fixed per cardset and attempt, so every tick computes the same due time."""
        base = self.base_seconds * 2 ** (attempt - 1)
        digest = hashlib.sha256(f"{partition}:{attempt}".encode()).digest()
        return min(base, self.max_seconds) * (1 + 0.2 * digest[0] / 255)


def decide(
    partition: str, signature: str, last: LastRun | None, now: float, backoff: Backoff
) -> Decision:
    """Launch this cardset's waiting work now, or say why not and until when."""
    first = Decision(True, 1, f"{partition}:{signature}")
    if last is None or last.signature != signature:
        return first  # new work
    run = f"its run {last.run_id[:8]}"
    if last.status == "CANCELED":
        why = f"{run} was canceled: new work or the nightly reconcile launches it again"
        return Decision(False, last.attempt, first.run_key, why=why)
    if last.will_retry:
        return Decision(
            False, last.attempt, first.run_key, why=f"{run} failed; the instance retries it"
        )
    attempt = last.attempt + 1
    ended_at = now if last.ended_at is None else last.ended_at
    due = ended_at + backoff.seconds(last.attempt, partition)
    key = f"{partition}:{signature}:{attempt}"
    if now >= due:
        return Decision(True, attempt, key)
    ended = "failed" if last.status == "FAILURE" else "ended with the same work still waiting"
    why = f"{run} {ended}; attempt {attempt} is due in {due - now:.0f} s"
    return Decision(False, attempt, key, retry_at=due, why=why)
