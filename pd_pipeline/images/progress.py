"""Progress lines for long renders: done/total, cards/s and ETA every few seconds."""

import time
from typing import Any

PROGRESS_EVERY_S = 5.0


class Progress:
    def __init__(self, what: str, total: int, logger: Any):
        self.what, self.total, self.logger = what, total, logger
        self.done = 0
        self.started = self.last = time.monotonic()

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else float("inf")
        return f"{self.what}: {self.done}/{self.total} rendered, {rate:.1f} cards/s, ETA {eta:.0f}s"

    def tick(self) -> None:
        self.done += 1
        if time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.last = time.monotonic()
            self.logger.info(self._line())

    def finish(self) -> None:
        self.logger.info(self._line().replace(", ETA 0s", ""))
