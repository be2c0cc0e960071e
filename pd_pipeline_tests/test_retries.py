"""The relaunch rule: new work goes at once; work a run left waiting goes again after a backoff
that doubles, is capped, and spreads cardsets apart; the instance's own retries and operators'
cancellations are respected."""

import pytest

from pd_pipeline.defs.automation.retries import Backoff, LastRun, decide

P, SIG, NOW = "cardset-001", "abc", 1_700_000_000.0
BACKOFF = Backoff(base_seconds=30, max_seconds=900)


def last(status="FAILURE", signature=SIG, attempt=1, will_retry=False, ended=NOW - 1):
    return LastRun("run1234", signature, attempt, status, will_retry, ended)


@pytest.mark.parametrize(
    ("previous", "launch", "attempt", "key"),
    [
        (None, True, 1, f"{P}:{SIG}"),  # never launched
        (last(signature="old"), True, 1, f"{P}:{SIG}"),  # new work since the last run
        (last(), False, 2, f"{P}:{SIG}:2"),  # failed a second ago: waits
        (last(ended=NOW - 10_000), True, 2, f"{P}:{SIG}:2"),  # failed long ago: goes again
        (last(attempt=3, ended=NOW - 10_000), True, 4, f"{P}:{SIG}:4"),
        (last(status="SUCCESS", ended=NOW - 10_000), True, 2, f"{P}:{SIG}:2"),  # left work
        (last(will_retry=True, ended=NOW - 10_000), False, 1, f"{P}:{SIG}"),  # instance retries
        (last(status="CANCELED", ended=NOW - 10_000), False, 1, f"{P}:{SIG}"),  # an operator's
    ],
)
def test_decide(previous, launch, attempt, key):
    decision = decide(P, SIG, previous, NOW, BACKOFF)
    assert (decision.launch, decision.attempt, decision.run_key) == (launch, attempt, key)
    assert decision.launch or decision.why  # a tick always says why it waits


def test_a_waiting_retry_says_until_when():
    decision = decide(P, SIG, last(), NOW, BACKOFF)
    assert decision.retry_at == pytest.approx(NOW - 1 + BACKOFF.seconds(1, P))
    assert "attempt 2 is due in" in decision.why and "run run1234 failed" in decision.why


def test_backoff_doubles_is_capped_and_spreads_cardsets():
    waits = [BACKOFF.seconds(n, P) for n in range(1, 9)]
    for n, wait in enumerate(waits[:5]):
        assert 30 * 2**n <= wait <= 30 * 2**n * 1.2
    assert all(900 <= w <= 1080 for w in waits[5:])
    spread = {round(BACKOFF.seconds(1, f"cardset-{i:03d}"), 1) for i in range(20)}
    assert len(spread) > 10  # cardsets failing together come back at different ticks
    assert BACKOFF.seconds(1, P) == BACKOFF.seconds(1, P)  # every tick agrees on the due time
