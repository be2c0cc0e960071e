import dagster as dg
import pytest

from pd_pipeline.defs.resources import CardRenderer
from pd_pipeline.render.chromium import ChromiumNotFound, find_chromium


def test_pd_chromium_path_wins_and_a_bad_one_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PD_CHROMIUM_PATH", str(tmp_path / "nope"))
    with pytest.raises(ChromiumNotFound) as error:
        find_chromium()
    assert str(error.value) == f"PD_CHROMIUM_PATH={tmp_path / 'nope'} is not an executable file"


def test_no_chromium_anywhere_says_how_to_fix_it(monkeypatch):
    monkeypatch.delenv("PD_CHROMIUM_PATH", raising=False)
    monkeypatch.setattr("pd_pipeline.render.chromium.SYSTEM_CHROMIUMS", ())
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", "/nonexistent")
    with pytest.raises(ChromiumNotFound) as error:
        find_chromium()
    message = str(error.value)
    assert "\n" not in message
    assert "PD_CHROMIUM_PATH" in message and "playwright install chromium" in message


def test_a_renderer_warmed_up_without_chromium_fails_when_a_card_needs_it(tmp_path):
    renderer = CardRenderer(chromium_path=str(tmp_path / "nope"))
    renderer.warm_up()  # a run launched for cards begins the launch; nothing is raised yet
    with pytest.raises(dg.Failure, match="is not an executable file"):
        renderer.browser()
