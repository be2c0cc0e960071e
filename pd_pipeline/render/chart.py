"""The Strat-O-Matic chart layout of one side's 108 chances.

A side is three columns of 2d6 rows (rolls 2..12, worth 1,2,3,4,5,6,5,4,3,2,1 chances: 36 per
column). An outcome gets whole rows where its chances allow and a d20 range of a shared row for the
rest; a d20 point of a row worth `w` chances is worth w/20 of a chance. The layout counts in *units*
of 1/20 chance so that the arithmetic is exact and the side always totals 108.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from pd_pipeline.model import CHANCES_PER_SIDE

UNITS = 20  # units per chance: one d20 point of a row worth one chance
ROLLS = tuple(range(2, 13))
WEIGHTS = {roll: 6 - abs(roll - 7) for roll in ROLLS}

# Outcomes in priority order (small ones share a row with a neighbour here) and their labels.
LABELS: dict[str, dict[str, str]] = {
    "battingcard": {
        "homerun": "HOMERUN",
        "bp_homerun": "BP HOMERUN",
        "triple": "TRIPLE",
        "double_three": "DOUBLE***",
        "double_two": "DOUBLE**",
        "double_pull": "DOUBLE (PULL)",
        "single_two": "SINGLE**",
        "single_one": "SINGLE*",
        "single_center": "SINGLE (CF)",
        "bp_single": "BP SINGLE",
        "walk": "WALK",
        "hbp": "HBP",
        "strikeout": "strikeout",
        "lineout": "lineout",
        "popout": "popout",
        "flyout_a": "fly (cf) A",
        "flyout_bq": "fly (cf) B?",
        "flyout_lf_b": "fly (lf) B",
        "flyout_rf_b": "fly (rf) B",
        "groundout_a": "gb (ss) A",
        "groundout_b": "gb (2b) B",
        "groundout_c": "gb (3b) C",
    },
    "pitchingcard": {
        "homerun": "HOMERUN",
        "bp_homerun": "BP HOMERUN",
        "triple": "TRIPLE",
        "double_three": "DOUBLE***",
        "double_two": "DOUBLE**",
        "double_cf": "DOUBLE (CF)",
        "single_two": "SINGLE**",
        "single_one": "SINGLE*",
        "single_center": "SINGLE (CF)",
        "bp_single": "BP SINGLE",
        "walk": "WALK",
        "hbp": "HBP",
        "strikeout": "strikeout",
        "flyout_lf_b": "fly (lf) B",
        "flyout_cf_b": "fly (cf) B",
        "flyout_rf_b": "fly (rf) B",
        "groundout_a": "gb (ss) A",
        "groundout_b": "gb (2b) B",
        "xcheck_p": "X-CHECK P",
        "xcheck_c": "X-CHECK C",
        "xcheck_1b": "X-CHECK 1B",
        "xcheck_2b": "X-CHECK 2B",
        "xcheck_3b": "X-CHECK 3B",
        "xcheck_ss": "X-CHECK SS",
        "xcheck_lf": "X-CHECK LF",
        "xcheck_cf": "X-CHECK CF",
        "xcheck_rf": "X-CHECK RF",
    },
}
HITS = {
    "homerun", "bp_homerun", "triple", "double_three", "double_two", "double_pull", "double_cf",
    "single_two", "single_one", "single_center", "bp_single",
}  # fmt: skip
ON_BASE = {"walk", "hbp"}


@dataclass(frozen=True)
class Part:
    """An outcome's d20 range (`low`..`high`, 1..20) within one row."""

    result: str
    label: str
    kind: str  # "hit" | "onbase" | "xcheck" | "out": how the template styles it
    low: int
    high: int


@dataclass(frozen=True)
class Row:
    """One 2d6 roll of a column; `parts` cover d20 1..20 (a single part is the whole row)."""

    roll: int
    weight: int
    parts: tuple[Part, ...]

    def chances(self, part: Part) -> float:
        return self.weight * (part.high - part.low + 1) / UNITS


@dataclass(eq=False)  # slots are compared by identity: each is one row of the chart
class _Slot:
    column: int
    roll: int
    weight: int
    parts: list[tuple[str, int]]  # (result, d20 points), in d20 order

    @property
    def free_points(self) -> int:
        return UNITS - sum(points for _, points in self.parts)


def chart(results: dict[str, float], card_type: str) -> list[list[Row]]:
    """Lay one side's chances (outcome -> chances, summing to 108) out as three columns of 2d6
    rows (rolls 2..12). Hits and walks lean to the first columns, outs to the last."""
    labels = LABELS[card_type]
    slots = [_Slot(c, roll, WEIGHTS[roll], []) for c in range(3) for roll in ROLLS]
    _Layout(slots, _to_units(results, tuple(labels))).run()
    return [[_row(slot, labels) for slot in slots if slot.column == c] for c in range(3)]


def _to_units(results: dict[str, float], order: tuple[str, ...]) -> dict[str, int]:
    """Chances in whole units, rounded by largest remainder so the side still totals 108."""
    exact = {r: round(float(results.get(r) or 0) * UNITS, 9) for r in order}
    units = {r: math.floor(x) for r, x in exact.items()}
    short = CHANCES_PER_SIDE * UNITS - sum(units.values())
    fractional = [r for r in order if exact[r] > units[r]]
    by_remainder = sorted(fractional, key=lambda r: (units[r] - exact[r], order.index(r)))
    for result in by_remainder[: max(short, 0)]:
        units[result] += 1
    return units


class _Layout:
    """Assigns rows and d20 ranges to outcomes so that a row has at most two outcomes.

    An outcome takes whole rows plus at most one range of a shared row, chosen so that the next
    outcome can close that row (row boundaries fall on whole chances, so the rest is usually
    under one chance). Outcomes under one chance first each share a small row with a neighbour
    in priority order. Rounding a d20 range gives or takes a fraction of a point; `debt` hands
    that to the next outcome, so errors never pile up.
    """

    def __init__(self, slots: list[_Slot], units: dict[str, int]) -> None:
        self.free = list(slots)  # preference order: column 1 first, then by roll
        self.open: _Slot | None = None
        self.debt = 0  # units given out beyond the outcomes' chances so far (may be < 0)
        self.need = {result: n for result, n in units.items() if n > 0}  # priority order

    def run(self) -> None:
        order = list(self.need)
        for result in order:
            if self.need[result] < UNITS:
                self._pair_small(result, order)
        # Whole chances first, while no row is shared: they get whole rows. Then smallest first:
        # rare results take the small rows (2, 3, 11, 12) and common ones the middle, as on real
        # cards; the biggest comes last and can close any row left open.
        pending = sorted(
            (r for r in order if self.need[r] > 0),
            key=lambda r: (self.need[r] % UNITS != 0, self.need[r]),
        )
        while pending:
            result = pending.pop(self._next(pending))
            cover = max((self.need[r] for r in pending), default=0)
            self._place(result, cover, last=not pending)

    def _next(self, pending: list[str]) -> int:
        # An outcome that can close the open row, best one left with whole chances after it
        # (then no further row needs sharing), else the first that can.
        if self.open is None:
            return 0
        rest = self.open.free_points * self.open.weight + self.debt
        able = [i for i, result in enumerate(pending) if self.need[result] >= rest]
        even = [i for i in able if (self.need[pending[i]] - rest) % UNITS == 0]
        return (even or able or [0])[0]

    def _pair_small(self, result: str, order: list[str]) -> None:
        if not self.free:
            return
        rank = _column_rank_of(result)
        slot = min(self.free, key=lambda s: (s.weight, rank(s)))
        units = self.need[result] - self.debt
        points = min(max(round(units / slot.weight), 1), UNITS - 1)
        share = (UNITS - points) * slot.weight
        donor = self._donor(result, order, share)
        if donor is None:
            return
        self.free.remove(slot)
        slot.parts += [(result, points), (donor, UNITS - points)]
        self.debt += points * slot.weight - self.need[result]
        self.need[result] = 0
        self.need[donor] -= share

    def _donor(self, result: str, order: list[str], share: int) -> str | None:
        # The nearest outcome in priority order (a hit pairs with a hit) that keeps a chance
        # or more after giving `share`.
        at = order.index(result)
        able = [
            r
            for r in order
            if r != result and (self.need[r] - share >= UNITS or self.need[r] == share)
        ]
        return min(able, key=lambda r: abs(order.index(r) - at), default=None)

    def _place(self, result: str, cover: int, last: bool) -> None:
        target = max(self.need[result] - self.debt, 1)
        given = self._close_open(result, target, last) if self.open else 0
        if last:
            for slot in list(self.free):
                given += self._add(slot, result, UNITS)
        elif self.open is None and target > given and self.free:
            rows, tail, points = self._split(result, target - given, cover)
            for slot in rows:
                given += self._add(slot, result, UNITS)
            if tail is not None:
                given += self._add(tail, result, points)
        self.debt += given - self.need[result]

    def _add(self, slot: _Slot, result: str, points: int) -> int:
        slot.parts.append((result, points))
        if slot in self.free:
            self.free.remove(slot)
        self.open = slot if slot.free_points else None
        return points * slot.weight

    def _close_open(self, result: str, units: int, last: bool) -> int:
        points = self.open.free_points
        if not last and units < points * self.open.weight:
            # Too small to close the row (no outcome left could): a middle part.
            points = min(max(round(units / self.open.weight), 1), points)
        return self._add(self.open, result, points)

    def _split(self, result: str, units: int, cover: int) -> tuple[list[_Slot], _Slot | None, int]:
        """Whole rows and at most one tail range for `units`.

        Best: no tail; else a tail whose rest of the row a later outcome (up to `cover` units)
        can close, that rounds best to d20 points, and leaves the least rest.
        """
        free = sorted(self.free, key=_column_rank_of(result))
        rows_of = [0] * 6
        for slot in free:
            rows_of[slot.weight - 1] += 1
        counts = tuple(rows_of)
        if units % UNITS == 0 and (found := _reachable(counts).get(units // UNITS)):
            return _take(free, found[1]), None, 0
        best, choice = None, None
        for weight in (w for w, n in enumerate(counts, 1) if n):
            without = tuple(n - (w == weight) for w, n in enumerate(counts, 1))
            reachable = _reachable(without)
            # Only totals leaving a tail of 0 < tail < one row of this weight: a few at most.
            # (Ties go to the total found first, as the layout has always placed them.)
            for total in range((units - 1) // UNITS, (units - weight * UNITS) // UNITS, -1):
                if (found := reachable.get(total)) is None:
                    continue
                rank, use = found
                tail = units - total * UNITS
                points = min(max(round(tail / weight), 1), UNITS - 1)
                rest = (UNITS - points) * weight
                key = (rest > cover, abs(points * weight - tail), rest, weight, rank)
                if best is None or key < best:
                    best, choice = key, (weight, use, points)
        if choice is None:  # more than the rows left can hold: only the last outcome gets here
            return free, None, 0
        weight, use, points = choice
        slot = next(s for s in free if s.weight == weight)
        return _take([s for s in free if s is not slot], use), slot, points


def _column_rank_of(result: str) -> Callable[[_Slot], int]:
    # Hits and walks favour the first columns, outs the last, as on real cards.
    if _kind(result) in ("hit", "onbase"):
        return lambda slot: slot.column
    return lambda slot: 2 - slot.column


@functools.lru_cache(maxsize=4096)
def _reachable(counts: tuple[int, ...]) -> dict[int, tuple[int, tuple[int, ...]]]:
    """Every total of whole rows that `counts` (rows of weight 1..6) can make: `(rank, use)`,
    how many rows of each weight make it (bigger rows first) and the order it was found in.
    Cached: charts share these states."""
    return {total: (rank, use) for rank, (total, use) in enumerate(_totals(counts).items())}


@functools.lru_cache(maxsize=16384)
def _totals(counts: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """Totals of rows of the weights `counts` covers (its last entry is weight 6's), bigger rows
    first. Cached by suffix: the bigger weights' part is shared by most states."""
    if not counts:
        return {0: (0,) * 6}
    weight = 7 - len(counts)
    found: dict[int, tuple[int, ...]] = {}
    for total, use in _totals(counts[1:]).items():
        for n in range(counts[0], -1, -1):
            if total + n * weight not in found:
                found[total + n * weight] = (*use[: weight - 1], n, *use[weight:])
    return found


def _take(slots: list[_Slot], use: tuple[int, ...]) -> list[_Slot]:
    # The first rows of each weight, in the given (preference) order.
    left = list(use)
    taken = []
    for slot in slots:
        if left[slot.weight - 1] > 0:
            taken.append(slot)
            left[slot.weight - 1] -= 1
    return taken


def _row(slot: _Slot, labels: dict[str, str]) -> Row:
    parts, low = [], 1
    for result, points in slot.parts:
        parts.append(Part(result, labels[result], _kind(result), low, low + points - 1))
        low += points
    return Row(slot.roll, slot.weight, tuple(parts))


def _kind(result: str) -> str:
    if result in HITS:
        return "hit"
    if result in ON_BASE:
        return "onbase"
    return "xcheck" if result.startswith("xcheck") else "out"
