"""Watching a process tree from outside: peak RSS and CPU time of a process and its descendants."""

import os
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Chromium's zygotes and renderers, Playwright's driver, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _summed(pids: list[int], name: str, value) -> int:
    """The sum over `pids` of `value(text of /proc/PID/name)`, skipping processes that exited."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{name}") as f:
                total += value(f.read())
        except (OSError, IndexError, ValueError):
            pass  # exited meanwhile
    return total


def rss_bytes(pids: list[int]) -> int:
    return _summed(pids, "statm", lambda text: int(text.split()[1]) * PAGE)


def cpu_seconds(pids: list[int]) -> float:
    def utime_stime(text: str) -> int:
        fields = text.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    return _summed(pids, "stat", utime_stime) / TICKS


def process_kind(pid: int) -> str:
    """'playwright driver', 'chromium renderer', 'chromium gpu-process', ... from the command."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            # Chromium rewrites its command line into one space-separated string.
            argv = f.read().decode(errors="replace").replace("\0", " ").split()
    except OSError:
        return "other"
    if not argv:
        return "other"
    if "node" in os.path.basename(argv[0]):
        return "playwright driver"
    if "chrom" in argv[0]:
        types = [a.split("=", 1)[1] for a in argv if a.startswith("--type=")]
        return f"chromium {types[0] if types else 'browser'}"
    return os.path.basename(argv[0]) or "other"


class TreeWatcher(threading.Thread):
    """Samples `pid` and all its descendants every `interval` seconds: the sum of their RSS
    (shared pages count once per process, so this over-counts a little, never under), and the
    CPU time the tree has used, counting each process's last sample even after it exits (its
    CPU would otherwise vanish with it: Chromium's children are not reaped by our tree)."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True, name="tree-watcher")
        self.pid, self.interval = pid, interval
        self.peak_rss = 0
        self.cpu_by_pid: dict[int, float] = {}
        self.kind_of: dict[int, str] = {}
        self.cpu_samples: list[tuple[float, float]] = []  # (time.time(), CPU seconds so far)
        self._done = threading.Event()

    def run(self) -> None:
        # A sample scans /proc (~3 ms of CPU): 10 a second costs the machine ~1.5% of a core.
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)
        self.sample()

    def sample(self) -> None:
        pids = [self.pid, *descendants(self.pid)]
        self.peak_rss = max(self.peak_rss, rss_bytes(pids))
        for pid in pids:
            self.cpu_by_pid[pid] = max(self.cpu_by_pid.get(pid, 0.0), cpu_seconds([pid]))
            if pid not in self.kind_of:
                self.kind_of[pid] = "python" if pid == self.pid else process_kind(pid)
        self.cpu_samples.append((time.time(), sum(self.cpu_by_pid.values())))

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds the tree used between two `time.time()` instants (nearest samples)."""

        def at(instant: float) -> float:
            return min(self.cpu_samples, key=lambda sample: abs(sample[0] - instant))[1]

        return at(end) - at(start)

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds per kind of process, over the whole run."""
        kinds: dict[str, float] = {}
        for pid, cpu in self.cpu_by_pid.items():
            kind = self.kind_of.get(pid, "other")
            kinds[kind] = kinds.get(kind, 0.0) + cpu
        return kinds

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_rss
