"""Every PD_* setting is declared once and checked where the pipeline starts: a wrong value stops
`pd-pipeline`, `dagster definitions validate` and `dg check defs` with one line naming the
variable, its value and what is allowed (no traceback); the README's table is the declarations."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pd_pipeline import settings

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
# What operators got wrong, and what each must be told.
WRONG = {
    "PD_ADOPT": ("replce", "use `keep` or `replace`"),
    "PD_ADOPT_OUTSIDE": ("htpp", "use `render`, `http` or `trust`"),
    "PD_SENSOR_INTERVAL_SECONDS": ("-5", "use a whole number from 1 to 3600"),
    "PD_RENDER_TILE": ("0", "use a whole number from 1 to 16"),
    "PD_ROLLOUT": ("sometimes", "use `auto` or `manual`"),
    "PD_DATABASE_URL": ("mysql://db/cards", "a mysql database is not supported"),
    "PD_STORE": ("gs://bucket", "a gs:// store is not supported"),
    "PD_ALERT_WEBHOOK_URL": ("hooks.slack.com/x", "not an http(s) URL"),
    "PD_RECONCILE_CRON": ("at three", "not a cron schedule"),
    "PD_ADOPT_HTTP_HOSTS": ("https://cdn.example.com", "has a scheme: name the host alone"),
}


def _env(**values: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PD_")}
    return {**clean, **values}


def _said(result: subprocess.CompletedProcess) -> list[str]:
    """The lines a command printed that are its own (not Dagster's log lines)."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if "PD_" in line and " - dagster - " not in line]


@pytest.mark.parametrize("variable", sorted(WRONG))
def test_a_wrong_setting_stops_the_cli_with_one_line(variable, tmp_path):
    value, told = WRONG[variable]
    result = subprocess.run(
        [str(BIN / "pd-pipeline"), "status"],
        env=_env(**{variable: value}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{variable}={value!r}" in result.stderr and told in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["dagster", "definitions", "validate", "-m", "pd_pipeline.definitions"],
        ["dg", "check", "defs"],
    ],
    ids=["dagster definitions validate", "dg check defs"],
)
def test_a_wrong_setting_stops_validation_with_one_line(command, tmp_path):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=_env(PD_ADOPT="replce", DAGSTER_HOME=str(tmp_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    told = "pd_pipeline: PD_ADOPT='replce' is not allowed: use `keep` or `replace`"
    assert _said(result) == [told]


def test_rules_across_settings_are_checked_too():
    with pytest.raises(settings.SettingsError, match="PD_RETRY_BACKOFF_SECONDS=1000 is more than"):
        settings.load({"PD_RETRY_BACKOFF_SECONDS": "1000"})
    with pytest.raises(settings.SettingsError, match="PD_TEMPLATES_DIR='/no/such': no such folder"):
        settings.load({"PD_TEMPLATES_DIR": "/no/such"})


def test_an_empty_variable_is_unset_and_defaults_come_from_the_declarations():
    loaded = settings.load({"PD_RENDER_PAGES": "", "PD_ADOPT": "replace"})
    assert loaded.render_pages == 4 and loaded.adopt == "replace"
    assert loaded.is_set("adopt") and not loaded.is_set("render_pages")


def test_a_misspelt_variable_is_named_with_the_setting_it_resembles(tmp_path):
    result = subprocess.run(
        [str(BIN / "pd-pipeline"), "--version"],
        env=_env(PD_ADOPT_OUTSDE="http"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "PD_ADOPT_OUTSDE is not a pd_pipeline setting: did you mean PD_ADOPT_OUTSIDE?" in (
        result.stderr
    )


def test_the_readme_table_is_the_declarations():
    readme = (ROOT / "README.md").read_text()
    table = readme.split(settings.START)[1].split(settings.END)[0].strip()
    assert table == settings.markdown_table(), (
        "README's configuration table differs from pd_pipeline/settings.py: "
        "python -m pd_pipeline.settings --write README.md"
    )
