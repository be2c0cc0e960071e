"""A snapshot of the code location: assets, checks, jobs, sensors, schedules and resources, with
the names other tools rely on. A deliberate change updates it with one command:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest pd_pipeline_tests/test_definitions.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pd_pipeline.defs import build_defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def snapshot(defs: dg.Definitions) -> dict:
    """What the code location offers, as plain data."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        freshness = node.freshness_policy
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": getattr(node.partitions_def, "name", None),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(node.kinds),
            "owners": list(node.owners),
            "freshness": freshness
            and {
                "warn": str(freshness.warn_window.to_timedelta()),
                "fail": str(freshness.fail_window.to_timedelta()),
            },
            "checks": sorted(k.name for k in node.check_keys),
        }
    jobs = {}
    for job in defs.jobs or []:
        resolved = defs.resolve_job_def(job.name)
        jobs[job.name] = {
            "partitions": getattr(resolved.partitions_def, "name", None),
            "tags": dict(resolved.tags),
            "steps": sorted(node.name for node in resolved.graph.node_defs),
        }
    sensors = {
        s.name: {
            "jobs": sorted(t.job_name for t in s.targets),
            "default": s.default_status.value,
            "interval_seconds": s.minimum_interval_seconds,
        }
        for s in defs.sensors or []
    }
    schedules = {
        s.name: {"job": s.job_name, "cron": s.cron_schedule, "timezone": s.execution_timezone}
        for s in defs.schedules or []
    }
    return {
        "assets": assets,
        "jobs": jobs,
        "sensors": sensors,
        "schedules": schedules,
        "resources": sorted(defs.resources or {}),
    }


def test_the_definitions_load_and_match_their_snapshot():
    defs = build_defs()
    dg.Definitions.validate_loadable(defs)  # what a code server checks when it loads them
    made = json.loads(json.dumps(snapshot(defs)))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(made, indent=2, sort_keys=True) + "\n")
    assert made == json.loads(SNAPSHOT.read_text()), (
        "the definitions changed: if on purpose, UPDATE_SNAPSHOTS=1 pytest " + __file__
    )


def test_loading_the_code_location_prints_no_warning():
    loaded = subprocess.run(
        [sys.executable, "-c", "import pd_pipeline.definitions"], capture_output=True, text=True
    )
    assert loaded.returncode == 0 and not loaded.stderr, loaded.stderr


def test_importing_the_package_or_the_cli_builds_nothing():
    """Only the code location builds the definitions; `pd-pipeline` and library users load
    what they use (no Dagster, no pandas), and `-m pd_pipeline` still finds the location."""
    probe = (
        "import sys, pd_pipeline, pd_pipeline.cli, pd_pipeline.images.status;"
        "print(sorted(m for m in ('dagster', 'pandas', 'pd_pipeline.definitions') "
        "if m in sys.modules)); print(type(pd_pipeline.code_location).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "Definitions"]
