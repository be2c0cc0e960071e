"""A snapshot of the code location: an accidental change to a name others rely on shows up here."""

import subprocess
import sys

import dagster as dg

from pd_pipeline import settings
from pd_pipeline.definitions import build_defs


def test_definitions_load_and_keep_their_names():
    defs = build_defs()
    dg.Definitions.validate_loadable(defs)  # what a code server checks when it loads them
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "battingcard_pngs",
        "pitchingcard_pngs",
        "battingcard_image_urls",
        "pitchingcard_image_urls",
        "design_preview",
    }
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    names = ("all_cards_rendered", "urls_present", "urls_canonical", "objects_valid")
    names += ("images_current", "backlog")
    assert checks == {
        (f"{card_type}_image_urls", name)
        for card_type in ("battingcard", "pitchingcard")
        for name in names
    }
    assert graph.get(dg.AssetKey("design_preview")).partitions_def is None
    for key in graph.get_all_asset_keys() - {dg.AssetKey("design_preview")}:
        partitions = graph.get(key).partitions_def
        assert isinstance(partitions, dg.DynamicPartitionsDefinition)
        assert partitions.name == "cardsets"
    for url_asset in ("battingcard_image_urls", "pitchingcard_image_urls"):
        card_type = url_asset.split("_")[0]
        parents = graph.get(dg.AssetKey(url_asset)).parent_keys
        assert parents == {dg.AssetKey(f"{card_type}_pngs")}
    assert defs.resolve_job_def("card_images_job").partitions_def.name == "cardsets"
    assert defs.resolve_job_def("render_pending_job").partitions_def is None
    assert set(defs.resources) == {"card_db", "card_store", "renderer"}
    sensor = defs.resolve_sensor_def("pending_images_sensor")
    assert [t.job_name for t in sensor.targets] == ["card_images_job", "design_preview_job"]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("nightly_reconcile_schedule")
    assert schedule.job_name == "card_images_job"
    for url_asset in ("battingcard_image_urls", "pitchingcard_image_urls"):
        policy = graph.get(dg.AssetKey(url_asset)).freshness_policy
        assert policy.fail_window.to_timedelta() == settings.FRESHNESS_FAIL
        assert policy.warn_window.to_timedelta() == settings.FRESHNESS_WARN
    # The CI job runs the asset job's steps, under the same names.
    ci = defs.resolve_job_def("render_pending_job")
    assert {node.name for node in ci.graph.node_defs} == {
        "register_cardsets", "cards_without_cardset",
        *(f"pending_{t}_{step}" for t in ("battingcard", "pitchingcard")
          for step in ("pngs", "image_urls", "image_checks")),
    }  # fmt: skip
    assert {j.name for j in defs.jobs} == {
        "card_images_job",
        "render_pending_job",
        "design_preview_job",
    }
    assert {s.name for s in defs.sensors} == {
        "pending_images_sensor",
        "run_failure_alert",
        "backlog_alert",
    }
    assert {s.name for s in defs.schedules} == {"nightly_reconcile_schedule"}


def test_loading_the_code_location_prints_no_warning():
    loaded = subprocess.run(
        [sys.executable, "-c", "import pd_pipeline.definitions"], capture_output=True, text=True
    )
    assert loaded.returncode == 0 and not loaded.stderr, loaded.stderr


def test_importing_the_package_or_the_cli_builds_nothing():
    """Only the code location builds the definitions; `pd-pipeline` and library users load
    what they use (no Dagster, no pandas), and `-m pd_pipeline` still finds `defs`."""
    probe = (
        "import sys, pd_pipeline, pd_pipeline.cli, pd_pipeline.images.status;"
        "print(sorted(m for m in ('dagster', 'pandas', 'pd_pipeline.definitions') "
        "if m in sys.modules)); print(type(pd_pipeline.defs).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "Definitions"]
