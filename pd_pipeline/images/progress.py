"""Progress lines for long passes (renders, adoption checks): done/total, how each ended,
cards/s and ETA every few seconds."""

import time
from typing import Any

PROGRESS_EVERY_S = 5.0


class Progress:
    def __init__(
        self, what: str, total: int, logger: Any, done: str = "rendered", outcomes: tuple = ()
    ):
        self.what, self.total, self.logger, self.verb = what, total, logger, done
        self.done = 0
        self.outcomes = dict.fromkeys(outcomes, 0)  # shown after done/total, in this order
        self.started = self.last = time.monotonic()

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else float("inf")
        counts = "".join(f", {n} {outcome}" for outcome, n in self.outcomes.items())
        return (f"{self.what}: {self.done}/{self.total} {self.verb}{counts}, {rate:.1f} cards/s, "
                f"ETA {eta:.0f}s")  # fmt: skip

    def tick(self, outcome: str | None = None) -> None:
        self.done += 1
        if outcome is not None:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.last = time.monotonic()
            self.logger.info(self._line())

    def finish(self) -> None:
        self.logger.info(self._line().replace(", ETA 0s", ""))
