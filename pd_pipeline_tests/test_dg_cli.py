"""The project through the `dg` CLI, run from the project root as a user runs it: its definitions
load and list, and `dg launch` runs both jobs, one cardset or every pending one."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pd_pipeline.db import schema
from pd_pipeline.model import CARD_TYPES
from pd_pipeline_tests.helpers import assert_every_card_correct, seed_small_demo
from pd_pipeline_tests.services import dagster_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
DG = str(Path(sys.executable).with_name("dg"))


@dataclass
class Project:
    database_url: str
    store: Path
    home: Path

    def env(self) -> dict[str, str]:
        # dg compares the active virtualenv with the project's .venv: this one is active.
        return dagster_env(
            self.database_url, self.home, PD_STORE=str(self.store), VIRTUAL_ENV=sys.prefix
        )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    """One tiny demo (two cardsets of three players) shared by every check here."""
    tmp = tmp_path_factory.mktemp("dg")
    url = f"sqlite:///{tmp / 'cards.db'}"
    seed_small_demo(url, players=3, seasons=(2008, 2019)).dispose()
    (tmp / "home").mkdir()
    return Project(url, tmp / "store", tmp / "home")


def _dg(project: Project, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [DG, *args], cwd=ROOT, env=project.env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"dg {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def _urls_by_cardset(engine: sa.Engine) -> dict[int, list[str | None]]:
    found: dict[int, list[str | None]] = {}
    with engine.connect() as conn:
        for card_type in CARD_TYPES:
            card = schema.CARD_TABLES[card_type]
            rows = conn.execute(
                sa.select(schema.player.c.cardset_id, card.c.image_url).join(schema.player)
            )
            for cardset_id, url in rows:
                found.setdefault(cardset_id, []).append(url)
    return found


def test_dg_checks_and_lists_the_definitions(project):
    _dg(project, "check", "defs")
    listed = json.loads(_dg(project, "list", "defs", "--json").stdout)
    assert {a["asset_key"] for a in listed["assets"]} == {
        f"{card_type}_{kind}"
        for card_type in CARD_TYPES
        for kind in ("pngs", "image_urls", "apngs", "animated_urls")
    } | {"design_preview"}
    assert {j["name"] for j in listed["jobs"]} == {
        "card_images_job",
        "render_pending_job",
        "design_preview_job",
    }
    assert "pending_images_sensor" in {s["name"] for s in listed["sensors"]}
    assert [s["name"] for s in listed["schedules"]] == ["nightly_reconcile_schedule"]
    # Six per *_image_urls asset, seven per *_animated_urls (animations_match too).
    assert len(listed["asset_checks"]) == 2 * (6 + 7)


# The CLI's runs are test_render_pending_cli's (`dagster job execute`); this, through `dg`.
@pytest.mark.thorough
def test_dg_launch_runs_one_cardset_then_everything_pending(project, monkeypatch):
    engine = sa.create_engine(project.database_url)
    with dg.DagsterInstance.from_config(str(project.home)) as instance:
        instance.add_dynamic_partitions("cardsets", ["cardset-001"])  # as the sensor would

    _dg(project, "launch", "--job", "card_images_job", "--partition", "cardset-001")
    urls = _urls_by_cardset(engine)
    assert all(urls[1]) and not any(urls[2]), urls

    _dg(project, "launch", "--job", "render_pending_job")
    assert all(all(found) for found in _urls_by_cardset(engine).values())
    for key, value in project.env().items():
        if key.startswith("PD_"):
            monkeypatch.setenv(key, value)
    assert assert_every_card_correct(engine, cardset_ids=(1, 2)) > 0
    engine.dispose()
