"""CPU time by phase of the pipeline's own work (markup, encode, store, ...), for the bench.

Off unless `enable(path)` was called (the code location does when PD_PROFILE_FILE is set): then
each `phase(name)` block adds the CPU time its thread spent in it, and the totals, in
milliseconds, are written to `path` as JSON when the process exits. Off, a phase costs one check.
"""

import atexit
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_totals: Counter = Counter()
_lock = threading.Lock()
_path: Path | None = None


def enable(path: str) -> None:
    global _path
    if _path is None:
        atexit.register(_write)
    _path = Path(path)


@contextmanager
def phase(name: str) -> Iterator[None]:
    if _path is None:
        yield
        return
    started = time.thread_time()
    try:
        yield
    finally:
        spent = time.thread_time() - started
        with _lock:
            _totals[name] += spent


def totals_ms() -> dict[str, float]:
    """CPU milliseconds by phase so far."""
    with _lock:
        return {name: round(1000 * seconds, 1) for name, seconds in sorted(_totals.items())}


def _write() -> None:
    _path.write_text(json.dumps(totals_ms()))
