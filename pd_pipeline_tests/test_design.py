"""A design of one's own: broken designs, `pd-pipeline preview`, and the example design rolled
out."""

import re
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from PIL import Image

from pd_pipeline import cli
from pd_pipeline.db import schema
from pd_pipeline.db.cards import load_cards
from pd_pipeline.defs import build_defs
from pd_pipeline.images.picks import open_existing
from pd_pipeline.model import CARD_TYPES, tier_of
from pd_pipeline.render.apng import verify_apng
from pd_pipeline.render.pages import pages_for
from pd_pipeline.render.png import CARD_SIZE, decode_png
from pd_pipeline.render.preview import changed_share
from pd_pipeline.render.samples import LONGEST_NAME, builtin_samples
from pd_pipeline.storage.keys import key_of_url
from pd_pipeline_tests.helpers import (
    assert_every_card_correct,
    materializations,
    materialize,
    open_store,
)

EXAMPLE = Path(__file__).parents[1] / "examples" / "classic"
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _ledger(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(schema.card_render)).mappings()]


def _snapshot(engine: sa.Engine) -> tuple:
    """Every card row, every ledger entry and every object the store lists."""
    with engine.connect() as conn:
        rows = [
            sorted(tuple(r) for r in conn.execute(sa.select(table)))
            for table in (*schema.CARD_TABLES.values(), schema.card_render)
        ]
    return rows, sorted(open_store().list("cards/"))


@pytest.mark.slow
@SQLITE_ONLY
@pytest.mark.parametrize(
    ("line", "text", "error"),
    [
        pytest.param(  # no network for card pages: test_security's, at the browser
            5, '<img src="https://example.com/x.png">',
            r"card\.html:5: asks for https://example\.com/x\.png, but card pages reach no network",
            marks=pytest.mark.thorough),
        (3, "{{ card.name ) }}", r"card\.html:3: unexpected '\)'"),
    ],
    ids=["remote image", "syntax error"],
)  # fmt: skip
def test_a_broken_design_fails_naming_what_to_fix(
    seeded, monkeypatch, tmp_path, capsys, line, text, error
):
    design = tmp_path / "broken"
    shutil.copytree(EXAMPLE, design)
    template = design / "card.html"
    lines = template.read_text().splitlines()
    lines.insert(line - 1, text)
    template.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PD_TEMPLATES_DIR", str(design))

    result = materialize(seeded.instance, "battingcard_pngs")
    assert not result.success
    failures = [e.step_failure_data.error for e in result.all_events if e.is_step_failure]
    assert failures and re.search(error, failures[0].to_string()), failures
    retried = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert not retried, "a broken design was retried: no retry mends it"
    assert _ledger(seeded.engine) == [] and list(open_store().list("cards/")) == []

    assert cli.main(["preview", "--out", str(tmp_path / "preview")]) == 1
    assert re.search(error, capsys.readouterr().err)


def _preview(capsys, out: Path, *options: str) -> dict[str, float]:
    """`pd-pipeline preview` into `out`: caption -> changed share of every card it printed."""
    assert cli.main(["preview", *options, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    cards = re.findall(r"^  (\S.*)\n    (\S+\.png)(?:  \((\d+\.\d+)% of pixels changed\))?$",
                       printed, re.M)  # fmt: skip
    assert cards, printed
    for _, path, _ in cards:
        assert decode_png(Path(path).read_bytes()).shape[0] == CARD_SIZE[1]
    # Full-size cards: two to a row on the contact sheet, a row each before/after.
    width, height = CARD_SIZE
    for sheet, across, rows in (("contact-sheet.png", 2, (len(cards) + 1) // 2),
                                ("before-after.png", 3, len(cards))):  # fmt: skip
        assert f"wrote {out / sheet}" in printed
        with Image.open(out / sheet) as image:
            assert image.width > across * width and image.height > rows * height, sheet
    return {caption: float(share) / 100 for caption, _, share in cards}


ASSETS = ("battingcard_pngs", "pitchingcard_pngs", "battingcard_image_urls",
          "pitchingcard_image_urls")  # fmt: skip


def _objects(engine: sa.Engine) -> dict[tuple[str, int], bytes]:
    """(card type, card id) -> the PNG behind the card's URL."""
    store = open_store()
    with engine.connect() as conn:
        return {
            (t, card.card_id): store.get(key_of_url(store.public_base_url, card.image_url))
            for t in CARD_TYPES
            for card in load_cards(conn, t)
        }


@pytest.mark.slow
@SQLITE_ONLY
def test_a_design_previewed_then_rolled_out(seeded, monkeypatch, tmp_path, capsys):
    """The demo in the shipped design; the example design previewed against it (changing
    nothing), then rolled out: every card made again in it, named by its version."""
    example, shipped = pages_for(str(EXAMPLE)), pages_for(None)
    assert example.version != shipped.version
    assert materialize(seeded.instance, *ASSETS).success
    before = _snapshot(seeded.engine)
    old_pngs = _objects(seeded.engine)

    changed = _preview(capsys, tmp_path / "classic", "--templates", str(EXAMPLE))
    # Every card has a current image, and the example design changes every one of them.
    assert all(share > 0.05 for share in changed.values()), changed
    # The cards picked show both types and every tier the database has.
    with seeded.engine.connect() as conn:
        tiers = {tier_of(v) for t in CARD_TYPES for v in conn.scalars(
            sa.select(schema.CARD_TABLES[t].c.variant))}  # fmt: skip
    for card_type in CARD_TYPES:
        assert any(c.startswith(card_type) for c in changed)
    for tier in tiers:
        assert any(f" · T{tier} variant " in c for c in changed), (tier, list(changed))
    assert any("longest name" in c for c in changed)
    # The shipped design previewed against its own images: nothing changes.
    same = _preview(capsys, tmp_path / "shipped", "--cards", "4")
    assert list(same) == list(changed)[:4] and set(same.values()) == {0}, same
    assert _snapshot(seeded.engine) == before  # no row, ledger entry or object written

    monkeypatch.setenv("PD_TEMPLATES_DIR", str(EXAMPLE))
    # The UI's view of the same, the design_preview asset (the sensor launches its job once
    # per new design): the new design's cards, and beside the images they would replace.
    job = build_defs().resolve_job_def("design_preview_job")
    shown = materializations(job.execute_in_process(instance=seeded.instance), "design_preview")
    assert shown["template_version"] == example.version
    assert shown["cards_in_older_design"] == len(_ledger(seeded.engine))
    assert "(data:image/webp;base64," in shown["preview"]
    assert "(data:image/webp;base64," in shown["before_after"]
    shares = [float(s) for s in re.findall(r"\| ([\d.]+)% \|", shown["before_after"])]
    assert len(shares) == shown["sample_cards"] > 0 and min(shares) > 5, shown["before_after"]
    assert _snapshot(seeded.engine) == before

    # The operator rolls the new design out at once (docs/operating.md: Rolling out a design).
    roll_out = {
        "ops": {a: {"config": {"roll_out": 100_000}} for a in ASSETS if a.endswith("_pngs")}
    }
    assert materialize(seeded.instance, *ASSETS, run_config=roll_out).success
    # Every URL canonical and current for the example design (the audit asks the design the
    # environment names), and every ledger entry and object made in it.
    cards = assert_every_card_correct(seeded.engine)
    ledger = _ledger(seeded.engine)
    assert len(ledger) == cards == len(old_pngs)
    assert {e["template_version"] for e in ledger} == {example.version}
    store = open_store()
    for entry in ledger:
        assert store.head(entry["object_key"]).input_hash == entry["input_hash"]
    # Its pixels are the example's: every card differs from its image in the shipped design.
    for card, png in _objects(seeded.engine).items():
        assert changed_share(old_pngs[card], png) > 0.05, card


@pytest.mark.slow
@SQLITE_ONLY
def test_a_template_failing_on_some_cards_fails_those_cards_only(seeded, monkeypatch, tmp_path):
    design = tmp_path / "picky"
    shutil.copytree(EXAMPLE, design)
    template = design / "card.html"
    lines = template.read_text().splitlines()
    lines.insert(2, "{% if card.variant %}{{ card.no_such_field }}{% endif %}")
    template.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PD_TEMPLATES_DIR", str(design))

    result = materialize(seeded.instance, "battingcard_pngs")
    assert result.success  # the partition goes on past the cards the template fails on
    made = materializations(result, "battingcard_pngs")
    failed = {
        e["card_id"]: e["error"]
        for e in _ledger(seeded.engine)
        if e["status"] == "failed" and e["card_type"] == "battingcard"
    }
    with seeded.engine.connect() as conn:
        card = schema.battingcard
        cards = dict(conn.execute(sa.select(card.c.id, card.c.variant)).all())
    assert set(failed) == {i for i, variant in cards.items() if variant}
    assert made["rendered"] == sum(not variant for variant in cards.values()) > 0
    for card_id, error in failed.items():
        assert f"#{card_id}" in error and re.search(r"card\.html:3: .*no_such_field", error), error


def test_without_a_database_the_preview_has_samples_of_every_kind(tmp_path):
    missing = tmp_path / "none.db"
    assert open_existing(f"sqlite:///{missing}") is None and not missing.exists()
    samples = builtin_samples()
    kinds = {(s.card.card_type, tier_of(s.card.variant)) for s in samples}
    assert kinds == {(t, tier) for t in CARD_TYPES for tier in range(5)}
    assert any(s.card.inputs["player"]["name"] == LONGEST_NAME for s in samples)
    for design in (pages_for(None), pages_for(str(EXAMPLE))):
        for sample in samples:  # each is a valid card, and each design can draw it
            assert "<article" in design.body(sample.card), sample.label


@pytest.mark.slow
def test_the_preview_writes_animated_cards_that_play(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PD_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    out = tmp_path / "preview"
    # Two still cards (the built-in T0s): the animated ones are the samples of T3 and T4.
    assert cli.main(["preview", "--cards", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    made = sorted((out / "animated").glob("*-animated.png"))
    assert len(made) == 4, printed
    for apng in made:
        assert f"wrote {apng}" in printed
        info = verify_apng(apng.read_bytes())
        assert info.frames in (12, 24) and info.plays == 0
        frames = Path(str(apng).replace("-animated.png", "-frames.png"))
        with Image.open(frames) as sheet:  # every frame's region, one under the other
            assert sheet.height > info.frames * 112
    assert not (tmp_path / "none.db").exists()
