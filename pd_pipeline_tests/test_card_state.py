"""Every rule of `images.state`, pinned without a browser or a database: one row per situation a
card can be in, its state and what happens next; then the ledger transitions."""

import dataclasses
import datetime as dt

import pytest

from pd_pipeline.db.ledger import Entry
from pd_pipeline.images import state
from pd_pipeline.images.state import Finding as F
from pd_pipeline.images.state import Next, Policy, Reason, State
from pd_pipeline.model import Card, Image
from pd_pipeline.render.samples import first_variant

POLICY = Policy(template_version="design-2", public_base_url="https://cdn.example")
SHA, OLD_SHA = "a" * 64, "b" * 64
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def card(url=None, homeruns=3.0) -> Card:
    return Card("battingcard", 7, 42, 0, 1, url, {"player": {"name": "X"}, "hr": homeruns})


BASE = card()
CANONICAL = POLICY.canonical_url(BASE, SHA)
OLD_URL = POLICY.canonical_url(BASE, OLD_SHA)
ELSEWHERE = "https://old-renderer.example/cards/7.png"
OLD_BASE = Policy("design-2", "https://old-cdn.example").canonical_url(BASE, SHA)


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


# (name, row URL, the card's data (homeruns), ledger entry, policy, reason, next, finding)
CASES = [
    ("never seen, no URL", None, 3.0, None, POLICY, Reason.NEW, Next.RENDER, F.UNSEEN),
    ("never seen, someone's URL", ELSEWHERE, 3.0, None, POLICY, Reason.UNSEEN_URL, Next.ADOPT,
     F.TO_ADOPT),
    ("never seen, URL replaced on request", ELSEWHERE, 3.0, None,
     dataclasses.replace(POLICY, adopt="replace"), Reason.UNSEEN_URL, Next.RENDER, F.TO_ADOPT),
    ("taken by a run, not made yet", None, 3.0,
     entry("pending", input_hash=None, png_sha256=None, url=None, run_id="r1"), POLICY,
     Reason.WAITING, Next.RENDER, F.MISSING),
    ("noted by the sweep, no run took it yet", None, 3.0,
     entry("pending", input_hash=None, png_sha256=None, url=None), POLICY, Reason.NEW,
     Next.RENDER, F.UNSEEN),
    ("settled", CANONICAL, 3.0, entry(seen_url=CANONICAL), POLICY, Reason.SETTLED, Next.NOTHING,
     None),
    ("stored, URL not written (NULL row)", None, 3.0, entry(), POLICY, Reason.URL_NOT_WRITTEN,
     Next.WRITE_URL, F.MISSING),
    ("written, then cleared by someone", None, 3.0, entry(seen_url=CANONICAL), POLICY,
     Reason.URL_CLEARED, Next.RENDER, F.QUEUED),
    ("stored, replacing our older image", OLD_URL, 3.0, entry(seen_url=OLD_URL), POLICY,
     Reason.URL_NOT_WRITTEN, Next.WRITE_URL, F.NOT_CANONICAL),
    ("its own key, a wrong token", CANONICAL[:-3] + "xyz", 3.0, entry(seen_url=CANONICAL), POLICY,
     Reason.URL_NOT_CANONICAL, Next.RENDER, F.NOT_CANONICAL),
    ("stored, public base changed since", OLD_BASE, 3.0, entry(url=OLD_BASE, seen_url=OLD_BASE),
     POLICY, Reason.URL_NOT_CANONICAL, Next.RENDER, F.NOT_CANONICAL),
    ("URL set by someone else since", ELSEWHERE, 3.0, entry(seen_url=CANONICAL), POLICY,
     Reason.OTHER_WRITER, Next.ADOPT, F.TO_ADOPT),
    ("URL set by someone else while rendering", ELSEWHERE, 3.0, entry(seen_url=None), POLICY,
     Reason.OTHER_WRITER, Next.ADOPT, F.TO_ADOPT),
    ("data changed since its image", CANONICAL, 4.0, entry(seen_url=CANONICAL), POLICY,
     Reason.DATA_CHANGED, Next.RENDER, F.STALE),
    ("data changed while rendering", None, 4.0, entry(), POLICY, Reason.DATA_CHANGED,
     Next.RENDER, F.QUEUED),
    ("design changed since its image", CANONICAL, 3.0, entry(design="design-1"), POLICY,
     Reason.DESIGN_CHANGED, Next.ROLL_OUT, F.OLD_DESIGN),
    ("design and data changed", CANONICAL, 4.0, entry(design="design-1"), POLICY,
     Reason.DATA_CHANGED, Next.RENDER, F.STALE),
    ("changed, ledger of an older version (no data hash)", CANONICAL, 3.0,
     entry(design="design-1", data_hash=None), POLICY, Reason.DATA_CHANGED, Next.RENDER, F.STALE),
    ("failed, unchanged", None, 3.0, entry("failed", png_sha256=None, url=None, error="boom"),
     POLICY, Reason.FAILED, Next.WAIT, F.FAILED),
    ("failed, changed since", None, 4.0, entry("failed", png_sha256=None, url=None), POLICY,
     Reason.CHANGED_SINCE_FAILURE, Next.RENDER, F.QUEUED),
    ("failed, design changed since", None, 3.0,
     entry("failed", design="design-1", png_sha256=None, url=None), POLICY,
     Reason.CHANGED_SINCE_FAILURE, Next.RENDER, F.QUEUED),
    ("adopted, kept", ELSEWHERE, 3.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE), POLICY,
     Reason.ADOPTED, Next.NOTHING, None),
    ("adopted, design changed: kept", ELSEWHERE, 3.0,
     entry("adopted", design="design-1", png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE),
     POLICY, Reason.ADOPTED, Next.NOTHING, None),
    ("adopted, data changed", ELSEWHERE, 4.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE), POLICY,
     Reason.ADOPTED_CHANGED, Next.RENDER, F.STALE),
    ("adopted, URL cleared", None, 3.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE), POLICY,
     Reason.ADOPTED_CLEARED, Next.RENDER, F.QUEUED),
    ("adopted, to be replaced", ELSEWHERE, 3.0,
     entry("adopted", input_hash=None, png_sha256=None, url=ELSEWHERE, seen_url=ELSEWHERE),
     dataclasses.replace(POLICY, adopt="replace"), Reason.REPLACE_ADOPTED, Next.ROLL_OUT,
     F.OLD_DESIGN),
]  # fmt: skip


@pytest.mark.parametrize(
    "url, homeruns, made, policy, reason, action, finding",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_every_situation_has_one_rule(url, homeruns, made, policy, reason, action, finding):
    verdict = state.assess(card(url, homeruns), made, policy)
    assert (verdict.reason, verdict.next) == (reason, action)
    assert verdict.state is reason.state
    assert reason.finding(url is not None) == finding  # what the checks make of it


ANIMATES = dataclasses.replace(POLICY, animated_tiers=frozenset({3, 4}))
T0, T3 = 0, first_variant(3)


def animated_card(variant: int, url: str | None = None) -> Card:
    return dataclasses.replace(card(), variant=variant, animated_url=url)


def animated_entry(variant: int, **values) -> Entry:
    made = animated_card(variant)
    sha, canonical = "c" * 64, ANIMATES.canonical_url(made, "c" * 64, Image.ANIMATED)
    defaults = {"input_hash": made.input_hash("design-2"), "data_hash": made.data_hash,
                "template_version": "design-2", "png_sha256": sha, "url": canonical,
                "image": "apng"}  # fmt: skip
    return Entry("battingcard", 7, "stored", **{**defaults, **values})


def static_entry(design: str) -> Entry:
    return Entry("battingcard", 7, "stored", template_version=design)


# (name, variant, the row's animated URL, the animated entry, the static entry, reason, next)
ANIMATED_CASES = [
    ("a tier it does not animate", T0, None, None, static_entry("design-2"),
     Reason.NOT_ANIMATED, Next.NOTHING),
    ("a tier it no longer animates", T0, "https://cdn.example/x.apng", animated_entry(T0),
     static_entry("design-2"), Reason.ANIMATION_RETIRED, Next.ROLL_OUT),
    ("new to animation, its static image in an older design", T3, None, None,
     static_entry("design-1"), Reason.NEW_ANIMATION, Next.ROLL_OUT),
    ("a new card: its static image just made", T3, None, None, static_entry("design-2"),
     Reason.NEW, Next.RENDER),
    ("made, its URL not written yet", T3, None, animated_entry(T3), static_entry("design-2"),
     Reason.URL_NOT_WRITTEN, Next.WRITE_URL),
]  # fmt: skip


@pytest.mark.parametrize(
    "variant, url, made, static, reason, action",
    [c[1:] for c in ANIMATED_CASES],
    ids=[c[0] for c in ANIMATED_CASES],
)
def test_the_animated_image_has_rules_of_its_own(variant, url, made, static, reason, action):
    verdict = state.assess(animated_card(variant, url), made, ANIMATES, Image.ANIMATED, static)
    assert (verdict.reason, verdict.next) == (reason, action)


def test_every_rule_is_pinned_by_a_case():
    assert {c[5] for c in CASES} | {c[5] for c in ANIMATED_CASES} == set(Reason)


def test_states_follow_the_rules():
    assert {r.state for r in Reason} == set(State)
    assert Reason.SETTLED.state is State.SETTLED and Reason.ADOPTED.state is State.ADOPTED
    assert Reason.DESIGN_CHANGED.state is State.STALE_BY_DESIGN
    assert Reason.URL_NOT_WRITTEN.state is State.STORED


def test_taking_a_card_notes_its_url_and_first_wait_but_keeps_what_was_made():
    row = state.taken(card(ELSEWHERE), NOW, "run-1", state.FoundBy.RUN)
    assert (row["seen_url"], row["first_pending_at"], row["run_id"]) == (ELSEWHERE, NOW, "run-1")
    assert "status" in state.WAITING_UPSERT["insert_only"]
    assert "first_pending_at" in state.WAITING_UPSERT["keep"]


def test_a_stored_object_gives_the_canonical_url_and_both_hashes():
    row = state.object_confirmed(
        BASE, POLICY, sha256=SHA, md5="m" * 32, size=10, now=NOW, run_id="r"
    )
    assert row["status"] == "stored" and row["url"] == CANONICAL
    assert row["input_hash"] == BASE.input_hash("design-2") and row["data_hash"] == BASE.data_hash
    assert row["template_version"] == "design-2" and row["object_key"] in CANONICAL
    made = entry(**{k: row[k] for k in ("input_hash", "data_hash", "png_sha256", "url")})
    assert state.assess(BASE, made, POLICY).reason is Reason.URL_NOT_WRITTEN


def test_a_failure_keeps_its_inputs_so_the_card_waits_for_new_data():
    row = state.failed(BASE, POLICY, "x" * 5000, "r")
    assert row["status"] == "failed" and len(row["error"]) == state.ERROR_MAX
    made = entry("failed", input_hash=row["input_hash"], png_sha256=None, url=None)
    assert state.assess(BASE, made, POLICY).next is Next.WAIT


def test_adoption_keeps_the_rows_url_for_its_current_data():
    row = state.url_kept(card(ELSEWHERE), size=123, now=NOW, run_id="r")
    assert (row["status"], row["url"], row["seen_url"]) == ("adopted", ELSEWHERE, ELSEWHERE)
    made = entry("adopted", **{k: row[k] for k in ("input_hash", "data_hash", "url", "seen_url",
                                                     "png_sha256")})  # fmt: skip
    assert state.assess(card(ELSEWHERE), made, POLICY).reason is Reason.ADOPTED


def test_writing_a_url_clears_the_wait_and_the_flag():
    values = state.written(NOW, "r")
    assert values["flag"] is None and values["first_pending_at"] is None
    assert values["written_at"] == NOW
    flag = state.flagged(BASE, Reason.DATA_CHANGED, NOW, state.FoundBy.TRACKED_CHANGE)
    assert flag["flag"] == "data_changed" and flag["first_pending_at"] == NOW
    assert flag["found_by"] == "tracked change" and "found_by" in state.WAITING_UPSERT["keep"]
    assert values["found_by"] is None
