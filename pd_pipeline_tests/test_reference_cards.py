"""Rendered demo cards look as reviewed: compared with reference images within a small tolerance.

After a deliberate change to the card design, look at the new cards and refresh the references:
`UPDATE_CARD_REFERENCES=1 pytest pd_pipeline_tests/test_reference_cards.py`.
"""

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from pd_pipeline.db.cards import load_cards
from pd_pipeline.render.browser import BrowserPool
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline.render.pages import CardPages
from pd_pipeline_tests.helpers import seed_small_demo

pytestmark = pytest.mark.slow
REFERENCES = Path(__file__).parent / "reference"
MAX_MEAN_DIFFERENCE = 0.5  # of 255, averaged over all pixels and channels
MAX_CHANGED_SHARE = 0.005  # pixels differing by more than a little anti-aliasing
MARKUP = REFERENCES / "markup.json"  # the design version each card's markup was reviewed under
UPDATE = os.environ.get("UPDATE_CARD_REFERENCES") == "1"


def _difference(png: bytes, reference: Path) -> tuple[float, float]:
    with Image.open(io.BytesIO(png)) as new, Image.open(reference) as old:
        diff = ImageChops.difference(new.convert("RGB"), old.convert("RGB"))
    mean = sum(ImageStat.Stat(diff).mean) / 3
    changed = sum(diff.convert("L").histogram()[25:]) / (diff.width * diff.height)
    return mean, changed


@pytest.fixture(scope="module")
def demo_cards(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'cards.db'}"
    engine = seed_small_demo(url, players=4)
    with engine.connect() as conn:
        return {t: load_cards(conn, t, cardset_id=1)[0] for t in ("battingcard", "pitchingcard")}


@pytest.mark.parametrize("card_type", ["battingcard", "pitchingcard"])
def test_demo_card_matches_its_reviewed_reference(card_type, demo_cards):
    templates = CardPages()
    with BrowserPool(find_chromium(), templates, pages=1) as pool:
        png = pool.render(templates.body(demo_cards[card_type]))
    reference = REFERENCES / f"{card_type}.png"
    if UPDATE:
        reference.write_bytes(png)
    mean, changed = _difference(png, reference)
    assert mean <= MAX_MEAN_DIFFERENCE and changed <= MAX_CHANGED_SHARE, (
        f"{card_type} differs from {reference.name}: mean {mean:.2f}/255, "
        f"{changed:.2%} of pixels changed"
    )


def test_markup_changes_only_with_the_design_version(demo_cards):
    """The design version is in every card's input hash: cards are re-rendered exactly when
    it changes. A change to the code that makes card markup (`card_view`, the chart layout)
    must come with a new VIEW_VERSION, or stored images would silently stay stale."""
    templates = CardPages()
    seen = {
        card_type: hashlib.sha256(templates.body(card).encode()).hexdigest()
        for card_type, card in demo_cards.items()
    }
    if UPDATE:
        MARKUP.write_text(json.dumps({"version": templates.version, **seen}, indent=2) + "\n")
    reviewed = json.loads(MARKUP.read_text())
    if reviewed["version"] == templates.version:
        assert {t: reviewed[t] for t in seen} == seen, (
            "card markup changed but the design version did not: bump VIEW_VERSION in "
            "render/pages.py, look at the cards, then UPDATE_CARD_REFERENCES=1"
        )
