"""Contact sheets and the summary table: what a PNG materialization shows in the Dagster UI."""

import base64
import io
import os
import re

from PIL import Image

from pd_pipeline.defs.cards.metadata import image_metadata, preview_markdown
from pd_pipeline.images.produce import ImageReport
from pd_pipeline.render.sheet import MAX_BYTES, contact_sheet, pick_samples

COLOURS = [(200, 30, 30), (30, 160, 60), (40, 60, 200), (220, 180, 20), (150, 40, 160), (0, 0, 0)]


def _card(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 600), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _noise_card() -> bytes:
    buffer = io.BytesIO()
    noise = Image.frombytes("RGB", (1200, 600), os.urandom(1200 * 600 * 3))
    noise.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def _open(sheet: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(sheet))
    assert image.format == "WEBP"
    return image.convert("RGB")


def test_a_contact_sheet_lays_out_the_first_six_cards_in_order():
    sheet, shown = contact_sheet([_card(c) for c in COLOURS] + [_card((255, 255, 255))])
    image = _open(sheet)
    assert shown == 6 and image.size == (3 * 308 + 8, 2 * 158 + 8)
    for index, colour in enumerate(COLOURS):
        row, column = divmod(index, 3)
        centre = (8 + column * 308 + 150, 8 + row * 158 + 75)
        assert all(abs(a - b) < 16 for a, b in zip(image.getpixel(centre), colour, strict=True))


def test_a_few_cards_make_a_narrower_sheet():
    sheet, shown = contact_sheet([_card(c) for c in COLOURS[:2]])
    assert shown == 2 and _open(sheet).size == (2 * 308 + 8, 158 + 8)


def test_even_cards_of_pure_noise_stay_within_the_byte_budget():
    sheet, _ = contact_sheet([_noise_card()] * 6)
    assert len(sheet) <= MAX_BYTES


def test_broken_samples_are_left_out_and_none_at_all_gives_no_sheet():
    _, shown = contact_sheet([b"not a png", _card(COLOURS[0])])
    assert shown == 1
    assert contact_sheet([b"not a png"]) is None
    assert "No card was rendered" in preview_markdown([], rendered=0)


def test_the_preview_is_an_inline_image_the_ui_can_show():
    markdown = preview_markdown([_card(c) for c in COLOURS], rendered=40)
    data = re.fullmatch(
        r"!\[contact sheet: 6 of 40 cards rendered\]\(data:image/webp;base64,([A-Za-z0-9+/=]+)\)"
        r"\n\n6 of the 40 cards rendered in this run\.",
        markdown,
    )
    assert data, markdown[:200]
    _open(base64.b64decode(data.group(1)))


def test_samples_come_from_every_cardset_of_a_run_in_turn():
    assert pick_samples([[b"a1", b"a2"], [b"b1"], [b"c1", b"c2"]], limit=6) == [
        b"a1",
        b"b1",
        b"c1",
        b"a2",
        b"c2",
    ]


def test_many_samples_are_thinned_evenly_not_cut_off():
    samples = [f"card{i}".encode() for i in range(12)]
    assert pick_samples([samples], limit=6) == [samples[i] for i in (0, 2, 4, 6, 8, 10)]


def test_image_metadata_adds_the_preview_and_a_summary_to_the_figures():
    first = ImageReport("battingcard", 1, cards=10, current=2, reused=3, rendered=5, uploaded=4)
    first.png_bytes, first.render_seconds = 1_234_567, 2.5
    first.samples = [_card(c) for c in COLOURS[:3]]
    second = ImageReport("battingcard", 2, cards=4, rendered=3, failed=1, png_bytes=800)
    second.render_seconds, second.failures = 1.5, [("battingcard #9", "ratings sum to 104")]
    second.samples = [_card(c) for c in COLOURS[3:5]]

    metadata = image_metadata([first, second])

    assert metadata["cards"] == 14 and metadata["rendered"] == 8 and metadata["failed"] == 1
    assert "battingcard #9" in metadata["failures"].md_str
    assert "5 of the 8 cards rendered" in metadata["preview"].md_str
    summary = metadata["summary"].md_str.splitlines()
    assert summary[0] == "| | cardset-001 | cardset-002 | total |"
    rows = {line.split(" | ")[0].strip("| "): line for line in summary[2:]}
    assert rows["rendered"] == "| rendered | 5 | 3 | 8 |"
    # No-break spaces keep figures and units on one line in the UI.
    assert rows["PNG\u00a0bytes"] == "| PNG\u00a0bytes | 1.2\u00a0MB | 800\u00a0B | 1.2\u00a0MB |"
    assert rows["render\u00a0time"] == "| render\u00a0time | 2.5\u00a0s | 1.5\u00a0s | 4.0\u00a0s |"
    assert rows["cards/s"] == "| cards/s | 2.0 | 2.0 | 2.0 |"
