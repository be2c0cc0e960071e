"""The sdist and the wheel carry every file of the package, not only its modules: the design,
the renderer's shell page, the fonts and their licence. An editable install reads them from the
checkout and hides a gap (the wheel once shipped without `render/design/`); only a built package
shows it. Built as a release builds them: the sdist, then the wheel from the sdist."""

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
PROJECT_FILES = ["pyproject.toml", "setup.py", "README.md"]


def _package_files() -> set[str]:
    """Every file of the package in the checkout (git's view: no caches, no build leftovers)."""
    listed = subprocess.run(
        ["git", "ls-files", "pd_pipeline"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): the folder itself
        return {str(p.relative_to(ROOT)) for p in (ROOT / "pd_pipeline").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}  # fmt: skip
    return set(listed.stdout.split())


def test_sdist_and_wheel_carry_every_package_file(tmp_path):
    expected = _package_files()
    assert {"pd_pipeline/render/shell.html", "pd_pipeline/render/design/card.css",
            "pd_pipeline/render/fonts/LICENSE.txt"} <= expected  # fmt: skip
    # A copy of the project, so that the build's own folders (build/, *.egg-info) stay out of
    # the checkout, where other tests may be building at the same time.
    source = tmp_path / "src"
    source.mkdir()
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, source / name)
    for name in expected:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    out = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "-o", str(out), str(source)],
                           capture_output=True, text=True)  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        in_sdist = {n.removeprefix(top + "/") for n in archive.getnames()}
    assert not expected - in_sdist, f"missing from the sdist: {sorted(expected - in_sdist)}"

    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    assert not expected - in_wheel, f"missing from the wheel: {sorted(expected - in_wheel)}"
    strays = {n for n in in_wheel if not n.startswith(("pd_pipeline/", "pd_pipeline-"))}
    assert not strays, f"the wheel carries more than the package: {sorted(strays)[:10]}"
