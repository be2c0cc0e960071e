"""The Dagster UI in a real browser, used as a person would: `dagster dev` on a fresh DAGSTER_HOME,
Playwright driving Chromium to find the card assets and their checks, backfill the cardsets from
the materialize dialog, and see the new materialization with its preview.

On failure, a screenshot of the page it was on is saved and its path printed, with the end of
the `dagster dev` log.
`UPDATE_UI_SCREENSHOT=1` also copies the asset page with the preview to docs/ for docs/operating.md.
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from pd_pipeline.db.engine import make_engine
from pd_pipeline.render.chromium import find_chromium
from pd_pipeline_tests.helpers import image_urls, seed_small_demo
from pd_pipeline_tests.services import dagster_dev_command, dagster_env, free_port, process_group

expect.set_options(timeout=20_000)  # the UI on a busy 2-core machine: pages take seconds

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
DOCS_SCREENSHOT = Path(__file__).parents[1] / "docs" / "ui-asset-preview.png"
CARDSETS = ["cardset-001", "cardset-002"]
ASSETS = [f"{t}_{a}" for t in ("battingcard", "pitchingcard") for a in ("pngs", "image_urls")]
CHECKS = ["all_cards_rendered", "urls_present", "urls_canonical", "objects_valid"]
CHECKS += ["images_current", "backlog"]
RUN_TIMEOUT_S = 150
BACKFILL_RUNS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { runs(limit: 10) { runId status tags { key value } } }
  }
}"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class DagsterDev:
    url: str
    log: Path

    def graphql(self, query: str, **variables) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def dagster_dev(tmp_path, s3_env) -> Iterator[DagsterDev]:
    """`dagster dev` (webserver and daemon) on a new DAGSTER_HOME, with two small cardsets."""
    database_url = f"sqlite:///{tmp_path / 'cards.db'}"
    seed_small_demo(database_url, players=4, seasons=(2008, 2019))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("cardsets", CARDSETS)
    # The sensor may register cardsets but launches nothing: the backfill is what is tested.
    env = dagster_env(database_url, home, PD_SENSOR_MAX_RUNS_PER_TICK="0")
    port = free_port()
    log = tmp_path / "dagster-dev.log"
    command = dagster_dev_command(port)
    # cwd: no stray .env file can override the settings above.
    with process_group(command, log, env, cwd=tmp_path) as process:
        server = DagsterDev(f"http://127.0.0.1:{port}", log)
        _wait_until_serving(server, process)
        yield server


def _wait_until_serving(server: DagsterDev, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster dev did not serve {server.url} within 60 s:\n{server.log_tail()}")


@contextmanager
def _browser(shots: Path, server: DagsterDev) -> Iterator[Page]:
    """A Chromium page; when the test fails, a screenshot of where it was is kept."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(None))
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            yield page
        except BaseException:
            shots.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=shots / "failure.png", full_page=True)
            except Exception as e:  # the page may be what broke; the first error is the story
                print(f"\n(no screenshot of the failure: {e})")
            print(f"\nUI test failed on {page.url}; screenshots in {shots}")
            print(f"dagster dev log ({server.log}):\n{server.log_tail()}")
            raise
        finally:
            browser.close()


def _sees_the_assets(page: Page, url: str) -> None:
    page.goto(f"{url}/locations/pd_pipeline/asset-groups/card_images")
    for asset in ASSETS:
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()


def _sees_the_checks(page: Page, url: str) -> None:
    for card_type in ("battingcard", "pitchingcard"):
        page.goto(f"{url}/assets/{card_type}_image_urls?view=checks")
        for check in CHECKS:
            expect(page.get_by_text(check, exact=True).first).to_be_visible()


def _launches_a_backfill(page: Page) -> str:
    """Materialize all, every cardset: the dialog sends launchPartitionBackfill. Its backfill id."""
    page.get_by_role("button", name=re.compile("Materialize all")).click()
    dialog = page.locator(".dagster-dialog")
    dialog.get_by_role("button", name="All", exact=True).click()
    expect(dialog.get_by_text(f"{len(CARDSETS)} partitions")).to_be_visible()

    def is_backfill(response) -> bool:
        return "LaunchPartitionBackfill" in (response.request.post_data or "")

    with page.expect_response(is_backfill) as launched:
        dialog.get_by_role("button", name="Launch backfill").click()
    result = launched.value.json()["data"]["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def _runs_of(server: DagsterDev, backfill_id: str) -> list[dict]:
    """The backfill's runs once all have finished. (The daemon marks the backfill itself complete
    up to 30 s later; the runs are what matter here.)"""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = server.graphql(BACKFILL_RUNS, id=backfill_id)["partitionBackfillOrError"]["runs"]
        if runs and all(run["status"] in FINISHED for run in runs):
            return runs
        time.sleep(2)
    pytest.fail(f"backfill {backfill_id}: runs not finished after {RUN_TIMEOUT_S} s")


def _sees_the_preview(page: Page, url: str, shots: Path) -> None:
    page.goto(f"{url}/assets/battingcard_pngs")
    summary = page.locator("tr", has=page.get_by_text("summary", exact=True))
    for column in (*CARDSETS, "total"):
        expect(summary.get_by_text(column, exact=True)).to_be_visible()
    preview = page.locator("tr", has=page.get_by_text("preview", exact=True))
    preview.get_by_text("[Show Markdown]").click()
    image = page.locator(".dagster-dialog img")
    expect(image).to_have_attribute("src", re.compile(r"^data:image/webp;base64,"))
    expect(page.locator(".dagster-dialog")).to_contain_text("cards rendered in this run")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 600
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shots / "asset-preview.png", animations="disabled")  # no half fade-in
    if os.environ.get("UPDATE_UI_SCREENSHOT") == "1":
        shutil.copy(shots / "asset-preview.png", DOCS_SCREENSHOT)


def test_a_backfill_from_the_ui_renders_the_cards_and_shows_their_preview(dagster_dev, tmp_path):
    shots = tmp_path / "screenshots"
    with _browser(shots, dagster_dev) as page:
        _sees_the_assets(page, dagster_dev.url)
        backfill_id = _launches_a_backfill(page)
        _sees_the_checks(page, dagster_dev.url)  # while the daemon picks the backfill up
        (run,) = _runs_of(dagster_dev, backfill_id)
        assert run["status"] == "SUCCESS", dagster_dev.log_tail()
        # The backfill policy put both cardsets in one run: one warm browser for all.
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert tags["dagster/asset_partition_range_start"] == CARDSETS[0]
        assert tags["dagster/asset_partition_range_end"] == CARDSETS[-1]
        _sees_the_preview(page, dagster_dev.url, shots)
    engine = make_engine(f"sqlite:///{tmp_path / 'cards.db'}")
    for card_type in ("battingcard", "pitchingcard"):
        assert all(image_urls(engine, card_type).values())
