"""Card pages: escaping, what a card shows, tiers and the design's version. Fast, no browser."""

import re
import shutil

import pytest

from pd_pipeline.model import tier_of
from pd_pipeline.render.fonts import FONTS, ORIGIN
from pd_pipeline.render.pages import DESIGN_DIR, CardPages, DesignError
from pd_pipeline_tests.sample_cards import make_card, with_inputs


@pytest.fixture(scope="module")
def templates() -> CardPages:
    return CardPages()


# ---- escaping and page safety ----


def test_hostile_text_is_escaped(templates):
    def hostile(inputs):
        inputs["player"]["name"] = "<script>alert(1)</script><img src=http://x onerror=alert(2)>"
        inputs["player"]["mlbclub"] = '"><b onclick="x()">Team</b>'
        inputs["cardset"]["name"] = "</style><style>body{display:none}</style>"
        inputs["rarity"] = {"name": "<i>MVP</i>", "color": "red;background:url(http://x)"}
        inputs["player"]["positions"] = ["<svg onload=alert(3)>"]

    body = templates.body(with_inputs(make_card(), hostile))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=http://x" in body
    assert "&lt;/style&gt;" in body and "&lt;i&gt;MVP&lt;/i&gt;" in body
    assert not re.search(r"<(script|img|svg|style|b|i)\b", body, re.I)
    assert not re.search(r"\son\w+\s*=\s*['\"]", body, re.I)
    assert "url(" not in body  # a bad rarity colour falls back to the default
    assert "--rarity: #8d99ae" in body


def test_the_shell_has_frames_and_fonts_and_no_script_or_outside_url(templates):
    shell = templates.shell(4)
    assert shell.startswith("<!doctype html>")
    assert [f'<div class="pd-frame" id="pd-frame-{i}"></div>' in shell for i in range(5)] == [
        True, True, True, True, False,
    ]  # fmt: skip
    assert shell.count("@font-face") == len(FONTS) and shell.count(f"{ORIGIN}/fonts/") == len(FONTS)
    assert "base64," not in shell  # the fonts are fetched when first used, not parsed up front
    urls = re.findall(r"https?://[^\s\"')]+", shell)
    assert urls and all(url.startswith(ORIGIN) for url in urls)
    assert not re.search(r"<script|javascript:|\son\w+\s*=", shell, re.I)


def test_document_is_the_shell_with_the_body_swapped_in(templates):
    card = make_card("pitchingcard", variant=415156387)
    body = templates.body(card)
    frame = '<div class="pd-frame" id="pd-frame-0">'
    expected = templates.shell().replace(f"{frame}</div>", f"{frame}{body}</div>")
    assert templates.document(card) == expected


def test_body_shows_what_the_card_says(templates):
    body = templates.body(make_card())
    for text in ("Roger Maris", "New York Yankees", "1961 Season", "MVP", "Bats L", "vs LHP",
                 "vs RHP", ".281", "8-12 (*) .75", "1-14", "RF-2 (-2) e6",
                 "C-3 (+1) e9 T-7 pb-4", "HOMERUN", "base card"):  # fmt: skip
        assert text in body, text
    pitching = templates.body(make_card("pitchingcard"))
    for text in ("Throws L", "vs LHB", "vs RHB", "X-CHECK 2B", "-2", "1W", ">4<"):
        assert text in pitching, text


def test_missing_optional_fields_render_a_dash(templates):
    def blank(inputs):
        inputs["card"] = dict.fromkeys(inputs["card"])
        inputs["ratings"]["L"].update(avg=None, obp=None, slg=None)
        inputs["player"]["mlbclub"] = None
        inputs["cardset"]["name"] = None
        inputs["rarity"] = {"name": None, "color": None, "value": None}
        inputs["fielding"] = []

    body = templates.body(with_inputs(make_card(), blank))
    assert body.count("\u2014") >= 10


def test_long_and_unicode_names_shrink_and_stay_on_one_line(templates):
    long_name = ("Bartholomew Maximilian " * 10)[:200]
    body = templates.body(make_card(name=long_name))
    assert long_name in body and 'style="font-size: 30px"' in body
    short = templates.body(make_card(name="Ott"))
    assert 'style="font-size: 78px"' in short
    rtl = templates.body(make_card(name="محمد عبد الرحمن 大谷翔平 ⚾"))
    assert 'dir="auto"' in rtl and "大谷翔平" in rtl


# ---- tiers and version ----


def test_tier_of_is_deterministic_and_covers_all_tiers():
    assert tier_of(0) == 0
    tiers = [tier_of(v) for v in range(1, 400)]
    assert set(tiers) == {1, 2, 3, 4}
    assert tiers == [tier_of(v) for v in range(1, 400)]
    assert tier_of(415156387) == tier_of(415156387) in {1, 2, 3, 4}
    assert tier_of(2**62 + 1) in {1, 2, 3, 4}


def test_tier_shows_on_the_card(templates):
    variant = next(v for v in range(1, 100) if tier_of(v) == 3)
    body = templates.body(make_card(variant=variant))
    assert "tier-3" in body and ">T3<" in body and f"variant {variant}" in body
    assert "tier-0" in templates.body(make_card()) and ">T0<" not in templates.body(make_card())


def test_version_changes_when_a_template_changes(tmp_path, templates):
    copied = tmp_path / "templates"
    shutil.copytree(DESIGN_DIR, copied)
    assert CardPages(copied).version == templates.version
    css = copied / "card.css"
    css.write_text(css.read_text() + "\n.card { outline: 0; }\n")
    changed = CardPages(copied)
    assert changed.version != templates.version and len(changed.version) == 12
    assert ".card { outline: 0; }" in changed.shell()


# ---- a design folder of one's own ----


@pytest.fixture
def design(tmp_path):
    """A copy of the shipped design, to change."""
    copied = tmp_path / "design"
    shutil.copytree(DESIGN_DIR, copied)
    return copied


@pytest.mark.parametrize(
    ("file", "line", "text", "error"),
    [
        ("battingcard.html", 2, "{% if card.name %}", r"battingcard\.html:\d+: .*endif"),
        ("_chart.html", 3, "{{ side.title | nosuchfilter }}", r"_chart\.html:\d+: .*nosuchfilter"),
        ("card.css", 5, "@import url(https://fonts.example/x.css);",
         r"card\.css:5: asks for https://fonts\.example/x\.css, but card pages reach no "
         r"network: put the file in the design folder"),
        ("_card.html", 4, '<img src="//cdn.example/logo.png">',
         r"_card\.html:4: asks for //cdn\.example/logo\.png"),
    ],
)  # fmt: skip
def test_a_broken_design_fails_naming_the_file_and_line(design, file, line, text, error):
    path = design / file
    lines = path.read_text().splitlines()
    lines.insert(line - 1, text)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DesignError, match=error):
        CardPages(design)


def test_a_comment_may_name_a_url_and_a_missing_file_is_named(design):
    css = design / "card.css"
    css.write_text("/* after https://example.com/guide */\n" + css.read_text())
    CardPages(design)
    (design / "pitchingcard.html").unlink()
    with pytest.raises(DesignError, match="has no pitchingcard.html"):
        CardPages(design)


def test_a_template_error_while_rendering_names_the_template_and_line(design):
    path = design / "_card.html"
    path.write_text(path.read_text().replace("{{ card.team }}", "{{ card.no_such_field }}"))
    with pytest.raises(DesignError, match=r"_card\.html:\d+: .*no_such_field"):
        CardPages(design).body(make_card())


def test_the_renderer_serves_the_designs_files_and_the_fonts_and_nothing_else(design):
    (design / "images").mkdir()
    (design / "images" / "logo.png").write_bytes(b"\x89PNG logo")
    pages = CardPages(design)
    assert pages.resource("/design/images/logo.png") == (b"\x89PNG logo", "image/png")
    body, kind = pages.resource("/fonts/Inter-Regular.woff2")
    assert kind == "font/woff2" and len(body) > 10_000
    for outside in ("/design/../pyproject.toml", "/fonts/../pages.py", "/etc/passwd", "/x"):
        assert pages.resource(outside) is None, outside
