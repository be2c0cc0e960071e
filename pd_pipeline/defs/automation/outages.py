"""The rule `outage_alert` follows: when to post that the card database or the store cannot be
reached, and when it is back. A pure function of what the tick's probes found, the sensor's
cursor and the time, so it is tested without waiting out an outage.

A target is down from the first probe that failed (the outage may have begun up to one probe
interval earlier). Down for `after_s` seconds: one post naming it and its error. Reachable again
after that post: one post saying for how long it was down. Nothing else: a short blip that ends
before `after_s` is never posted, and a long outage is posted once.
"""

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

# Dagster's sensor daemon looks at its sensors every 5 s, so no probe comes sooner; and a sensor
# whose interval is the full 5 s misses every other look (a look comes a little under 5 s after
# the last tick as often as not), so the least interval is a little under it.
MIN_INTERVAL_S = 4
MAX_INTERVAL_S = 30


@dataclass(frozen=True)
class Probe:
    """What one probe found."""

    target: str  # what it is: "card database", "store"
    where: str  # which one, with no credential: the URL, the store's describe()
    error: str | None = None  # the error's first line; None: it answered


@dataclass(frozen=True)
class Outcome:
    posts: list[str]  # what to post now, in order
    cursor: str  # the sensor's next cursor
    said: str  # the tick's skip reason: what it saw


def probe_interval(after_s: int) -> int:
    """Seconds between probes: a quarter of the outage setting, so a post comes at most about a
    quarter late; at least the daemon's pace, at most 30 s (a long setting wants no slower
    probes: the back post would lag)."""
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, after_s // 4))


def judge(probes: Sequence[Probe], cursor: str | None, now: float, after_s: int) -> Outcome:
    """What to post, as of `now` (epoch seconds), given the probes and the cursor of the last
    tick: which targets were down since when, and whether that was posted."""
    down = json.loads(cursor) if cursor else {}
    posts: list[str] = []
    said: list[str] = []
    still: dict[str, dict] = {}
    for probe in probes:
        name = f"the {probe.target} ({probe.where})"
        was = down.get(probe.target)
        if probe.error is None:
            if was and was["posted"]:
                lasted = _duration(now - was["since"])
                posts.append(f"pd_pipeline: {name} is reachable again, after about {lasted} "
                             f"unreachable (since {_clock(was['since'])}).")  # fmt: skip
            said.append(f"{probe.target} reachable")
            continue
        since = was["since"] if was else now
        posted = bool(was and was["posted"])
        if not posted and now - since >= after_s:
            posts.append(
                f"pd_pipeline: {name} has been unreachable for {_duration(now - since)} (since "
                f"{_clock(since)}): {probe.error}\nRuns and the sensor wait for it; one more "
                "post follows when it is back."
            )
            posted = True
        still[probe.target] = {"since": since, "posted": posted}
        state = "posted" if posted else f"posted if still down at {_duration(after_s)}"
        said.append(
            f"{name} unreachable since {_clock(since)} ({_duration(now - since)}; {state}): "
            f"{probe.error}"
        )
    if not still:
        said = ["Both reachable: " + ", ".join(f"the {p.target} ({p.where})" for p in probes)]
    return Outcome(posts, json.dumps(still, sort_keys=True), "; ".join(said) + ".")


def _clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
