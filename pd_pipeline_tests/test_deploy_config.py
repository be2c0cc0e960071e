"""The scale-out configuration in deploy/ loads: the Kubernetes instance, its workspace, and the
step executors for Kubernetes and Celery, each checked against the schema of the library that
reads it (dagster, dagster-k8s, dagster-celery)."""

import importlib
import shutil
from pathlib import Path

import dagster as dg
import yaml

# No public API checks these files without building what they describe (a Kubernetes run
# launcher needs a cluster, a gRPC workspace its server): Dagster's own validators, then.
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import ensure_workspace_config
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_celery.cli import get_validated_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

DEPLOY = Path(__file__).parents[1] / "deploy"


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_the_kubernetes_instance_is_the_production_one_plus_a_launcher_and_logs(tmp_path):
    kubernetes, production = _load("k8s/dagster.yaml"), _load("dagster.yaml")
    launcher, logs = kubernetes.pop("run_launcher"), kubernetes.pop("compute_logs")
    assert kubernetes == production
    for section, kind in ((launcher, K8sRunLauncher), (logs, S3ComputeLogManager)):
        assert getattr(importlib.import_module(section["module"]), section["class"]) is kind
        checked = validate_config(kind.config_type(), section["config"])
        assert checked.success, checked.errors
    shutil.copy(DEPLOY / "k8s" / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on any schema error
    assert config["run_launcher"]["class"] == "K8sRunLauncher"


def test_the_kubernetes_workspace_points_at_the_code_server():
    workspace = ensure_workspace_config(_load("k8s/workspace.yaml"), str(DEPLOY / "k8s"))
    (location,) = workspace["load_from"]
    assert location["grpc_server"]["location_name"] == "pd_pipeline"


def test_the_step_executor_configs_load(monkeypatch):
    @dg.job(executor_def=k8s_job_executor)
    def on_kubernetes():
        pass

    checked = dg.validate_run_config(on_kubernetes, _load("k8s/step-executor.yaml"))
    assert checked["execution"]["k8s"]["max_concurrent"] == 4
    monkeypatch.setenv("PD_CELERY_BROKER_URL", "pyamqp://guest@rabbitmq//")
    monkeypatch.setenv("PD_CELERY_BACKEND_URL", "rpc://")
    celery = get_validated_config(str(DEPLOY / "celery" / "executor.yaml"))
    assert celery["broker"] == "pyamqp://guest@rabbitmq//"
    assert celery["config_source"]["worker_prefetch_multiplier"] == 1
