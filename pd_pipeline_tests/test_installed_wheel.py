"""pd_pipeline as an operator installs it: the wheel from the wheelhouse (`make wheelhouse`) in a
fresh virtualenv, no source tree on the path, run from an empty folder: `pd-pipeline init-db`,
`pd-pipeline preview` and the CI job on a few cards write every URL."""

import os
import subprocess
from pathlib import Path

import pytest

from pd_pipeline import __version__
from pd_pipeline_tests.helpers import every_url_written, seed_small_demo
from pd_pipeline_tests.services import build_wheelhouse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtualenv holding pd_pipeline and its dependencies from the wheelhouse; its bin/."""
    tmp = tmp_path_factory.mktemp("installed")
    wheelhouse = build_wheelhouse(tmp / "wheelhouse.log")
    venv = tmp / "venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links",
         str(wheelhouse), f"pd_pipeline=={__version__}"],
        check=True, timeout=600,
    )  # fmt: skip
    return venv / "bin"


def test_the_installed_wheel_sets_up_previews_and_renders(installed, s3_env, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    database = f"sqlite:///{folder / 'cards.db'}"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env |= {"PD_DATABASE_URL": database, "DAGSTER_HOME": str(folder), **s3_env}

    def run(*command: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(installed / command[0]), *command[1:]], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done

    where = run("python", "-c", "import pd_pipeline; print(pd_pipeline.__file__)").stdout
    assert where.startswith(str(installed.parent)), f"pd_pipeline came from {where}"
    assert run("pd-pipeline", "--version").stdout.strip() == f"pd-pipeline {__version__}"
    run("pd-pipeline", "init-db")
    engine = seed_small_demo(database, players=3)  # cards, as other tools insert them
    previewed = run("pd-pipeline", "preview", "--cards", "4", "--out", "preview")
    assert "FAILED" not in previewed.stdout
    assert len(list((folder / "preview" / "cards").glob("*.png"))) == 4
    assert (folder / "preview" / "contact-sheet.png").is_file()
    run("dagster", "job", "execute", "-m", "pd_pipeline", "-j", "render_pending_job")
    assert every_url_written(engine)
