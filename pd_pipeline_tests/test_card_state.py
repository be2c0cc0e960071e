"""Every rule of `images.state`, pinned without a browser or a database: one row per situation a
card can be in, its state and what happens next; then the ledger transitions."""

import dataclasses
import datetime as dt

import pytest

from pd_pipeline.db.ledger import Entry
from pd_pipeline.images import state
from pd_pipeline.images.state import Context, Next, Reason, State
from pd_pipeline.model import Card

CTX = Context(template_version="design-2", public_base_url="https://cdn.example")
SHA, OLD_SHA = "a" * 64, "b" * 64
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def card(url=None, homeruns=3.0) -> Card:
    return Card("battingcard", 7, 42, 0, 1, url, {"player": {"name": "X"}, "hr": homeruns})


BASE = card()
CANONICAL = CTX.canonical_url(BASE, SHA)
OLD_URL = CTX.canonical_url(BASE, OLD_SHA)
ELSEWHERE = "https://old-renderer.example/cards/7.png"
OLD_BASE = Context("design-2", "https://old-cdn.example").canonical_url(BASE, SHA)


def entry(status="stored", design="design-2", homeruns=3.0, **values) -> Entry:
    made = card(homeruns=homeruns)
    defaults = {
        "input_hash": made.input_hash(design),
        "data_hash": made.data_hash,
        "png_sha256": SHA,
        "url": CANONICAL,
        "seen_url": None,
    }
    return Entry("battingcard", 7, status, **{**defaults, **values})


# (name, row URL, the card's data (homeruns), ledger entry, context, reason, next)
CASES = [
    ("never seen, no URL", None, 3.0, None, CTX, Reason.NEW, Next.RENDER),
    ("never seen, someone's URL", ELSEWHERE, 3.0, None, CTX, Reason.UNSEEN_URL, Next.ADOPT),
    ("never seen, URL replaced on request", ELSEWHERE, 3.0, None,
     dataclasses.replace(CTX, adopt="replace"), Reason.UNSEEN_URL, Next.RENDER),
    ("taken by a run, not made yet", None, 3.0,
     entry("pending", input_hash=None, png_sha256=None, url=None, run_id="r1"), CTX,
     Reason.WAITING, Next.RENDER),
    ("noted by the sweep, no run took it yet", None, 3.0,
     entry("pending", input_hash=None, png_sha256=None, url=None), CTX, Reason.NEW, Next.RENDER),
    ("settled", CANONICAL, 3.0, entry(seen_url=CANONICAL), CTX, Reason.SETTLED, Next.NOTHING),
    ("stored, URL not written (NULL row)", None, 3.0, entry(), CTX, Reason.URL_NOT_WRITTEN,
     Next.WRITE_URL),
    ("written, then cleared by someone", None, 3.0, entry(seen_url=CANONICAL), CTX,
     Reason.URL_CLEARED, Next.RENDER),
    ("stored, replacing our older image", OLD_URL, 3.0, entry(seen_url=OLD_URL), CTX,
     Reason.URL_NOT_WRITTEN, Next.WRITE_URL),
    ("its own key, a wrong token", CANONICAL[:-3] + "xyz", 3.0, entry(seen_url=CANONICAL), CTX,
     Reason.URL_NOT_CANONICAL, Next.RENDER),
    ("stored, public base changed since", OLD_BASE, 3.0, entry(url=OLD_BASE, seen_url=OLD_BASE),
     CTX, Reason.URL_NOT_CANONICAL, Next.RENDER),
    ("URL set by someone else since", ELSEWHERE, 3.0, entry(seen_url=CANONICAL), CTX,
     Reason.OTHER_WRITER, Next.ADOPT),
    ("URL set by someone else while rendering", ELSEWHERE, 3.0, entry(seen_url=None), CTX,
     Reason.OTHER_WRITER, Next.ADOPT),
    ("data changed since its image", CANONICAL, 4.0, entry(seen_url=CANONICAL), CTX,
     Reason.DATA_CHANGED, Next.RENDER),
    ("data changed while rendering", None, 4.0, entry(), CTX, Reason.DATA_CHANGED, Next.RENDER),
    ("design changed since its image", CANONICAL, 3.0, entry(design="design-1"), CTX,
     Reason.DESIGN_CHANGED, Next.ROLL_OUT),
    ("design and data changed", CANONICAL, 4.0, entry(design="design-1"), CTX,
     Reason.DATA_CHANGED, Next.RENDER),
    ("changed, ledger of an older version (no data hash)", CANONICAL, 3.0,
     entry(design="design-1", data_hash=None), CTX, Reason.DATA_CHANGED, Next.RENDER),
    ("failed, unchanged", None, 3.0, entry("failed", png_sha256=None, url=None, error="boom"),
     CTX, Reason.FAILED, Next.WAIT),
    ("failed, changed since", None, 4.0, entry("failed", png_sha256=None, url=None), CTX,
     Reason.CHANGED_SINCE_FAILURE, Next.RENDER),
    ("failed, design changed since", None, 3.0,
     entry("failed", design="design-1", png_sha256=None, url=None), CTX,
     Reason.CHANGED_SINCE_FAILURE, Next.RENDER),
    ("adopted, kept", ELSEWHERE, 3.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE), CTX,
     Reason.ADOPTED, Next.NOTHING),
    ("adopted, design changed: kept", ELSEWHERE, 3.0,
     entry("adopted", design="design-1", png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE),
     CTX, Reason.ADOPTED, Next.NOTHING),
    ("adopted, data changed", ELSEWHERE, 4.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE), CTX,
     Reason.ADOPTED_CHANGED, Next.RENDER),
    ("adopted, URL cleared", None, 3.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE), CTX,
     Reason.ADOPTED_CLEARED, Next.RENDER),
    ("adopted, to be replaced", ELSEWHERE, 3.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE),
     dataclasses.replace(CTX, adopt="replace"), Reason.REPLACE_ADOPTED, Next.ROLL_OUT),
]  # fmt: skip


@pytest.mark.parametrize(
    "url, homeruns, made, ctx, reason, action", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_situation_has_one_rule(url, homeruns, made, ctx, reason, action):
    verdict = state.assess(card(url, homeruns), made, ctx)
    assert (verdict.reason, verdict.next) == (reason, action)
    assert verdict.state is reason.state


def test_every_rule_is_pinned_by_a_case():
    assert {c[5] for c in CASES} == set(Reason)


def test_states_follow_the_rules():
    assert {r.state for r in Reason} == set(State)
    assert Reason.SETTLED.state is State.SETTLED and Reason.ADOPTED.state is State.ADOPTED
    assert Reason.DESIGN_CHANGED.state is State.STALE_BY_DESIGN
    assert Reason.URL_NOT_WRITTEN.state is State.STORED


def test_taking_a_card_notes_its_url_and_first_wait_but_keeps_what_was_made():
    row = state.taken(card(ELSEWHERE), NOW, "run-1")
    assert (row["seen_url"], row["first_pending_at"], row["run_id"]) == (ELSEWHERE, NOW, "run-1")
    assert "status" in state.WAITING_UPSERT["insert_only"]
    assert "first_pending_at" in state.WAITING_UPSERT["keep"]


def test_a_stored_object_gives_the_canonical_url_and_both_hashes():
    row = state.stored(BASE, CTX, sha256=SHA, md5="m" * 32, size=10, now=NOW, run_id="r")
    assert row["status"] == "stored" and row["url"] == CANONICAL
    assert row["input_hash"] == BASE.input_hash("design-2") and row["data_hash"] == BASE.data_hash
    assert row["template_version"] == "design-2" and row["object_key"] in CANONICAL
    made = entry(**{k: row[k] for k in ("input_hash", "data_hash", "png_sha256", "url")})
    assert state.assess(BASE, made, CTX).reason is Reason.URL_NOT_WRITTEN


def test_a_failure_keeps_its_inputs_so_the_card_waits_for_new_data():
    row = state.failed(BASE, CTX, "x" * 5000, "r")
    assert row["status"] == "failed" and len(row["error"]) == state.ERROR_MAX
    made = entry("failed", input_hash=row["input_hash"], png_sha256=None, url=None)
    assert state.assess(BASE, made, CTX).next is Next.WAIT


def test_adoption_keeps_the_rows_url_for_its_current_data():
    row = state.adopted(card(ELSEWHERE), size=123, now=NOW, run_id="r")
    assert (row["status"], row["url"], row["seen_url"]) == ("adopted", ELSEWHERE, ELSEWHERE)
    made = entry("adopted", **{k: row[k] for k in ("input_hash", "data_hash", "url", "seen_url",
                                                     "png_sha256")})  # fmt: skip
    assert state.assess(card(ELSEWHERE), made, CTX).reason is Reason.ADOPTED


def test_writing_a_url_clears_the_wait_and_the_flag():
    values = state.written(NOW, "r")
    assert values["flag"] is None and values["first_pending_at"] is None
    assert values["written_at"] == NOW
    flag = state.flagged(BASE, Reason.DATA_CHANGED, NOW)
    assert flag["flag"] == "data_changed" and flag["first_pending_at"] == NOW
