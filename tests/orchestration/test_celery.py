"""The prod profile's Celery execution with real parts: SeaweedFS, a private vhost on the machine's RabbitMQ,
a private PostgreSQL database and two `python -m orchestration.workers` processes."""
import io
import json
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

from orchestration.definitions import executor_for
from orchestration.resources import REPO_ROOT
from orchestration.scale import steps_per_worker
from orchestration.services import ServiceError, run_launcher, s3_store, scale_cluster
from orchestration.workers import BROKER_ENV, CelerySettings
from spoton.store import LocalStore


def test_prod_profile_runs_steps_on_celery_and_keeps_the_broker_url_out_of_run_config(monkeypatch):
    monkeypatch.setenv(BROKER_ENV, "pyamqp://spoton:s3cret@mq.example:5672/spoton")
    executor = executor_for("prod")
    assert executor.name == "celery"
    config = CelerySettings.from_env().executor_config()
    assert config["broker"] == {"env": BROKER_ENV} and "s3cret" not in json.dumps(config)
    assert config["config_source"]["task_acks_late"] and config["config_source"]["task_reject_on_worker_lost"]
    assert executor_for("local").name == "multiprocess"
    with pytest.raises(ValueError, match="SPOTON_CELERY_BROKER must be an amqp://"):
        CelerySettings(broker="http://127.0.0.1:5672")


@pytest.fixture
def cluster(tmp_path, pipeline_var):
    """Two workers (a, b) on the prod profile, with the in-process build's store uploaded to S3."""
    try:
        with scale_cluster(tmp_path / "cluster", ["a", "b"], pipeline_var / "store") as started:
            yield started
    except ServiceError as error:
        pytest.skip(str(error))


@pytest.mark.integration
def test_celery_build_on_two_workers_equals_the_in_process_build(cluster, pipeline_var):
    launcher = run_launcher(cluster.env, "--json", capture=True)
    assert launcher.returncode == 0, launcher.stdout[-3000:] + launcher.stderr[-3000:]
    report = json.loads(launcher.stdout.strip().splitlines()[-1])
    assert report["success"] and len(report["runs"]) == 5  # 4 segments, then the environment
    assert set(report["steps_per_worker"]) == {"a", "b"} and all(n > 0 for n in report["steps_per_worker"].values())

    local, remote = LocalStore(pipeline_var / "lake"), s3_store(cluster.env, "lake")
    keys = sorted(k for k in local.list_keys() if k.endswith(".parquet"))
    assert keys and sorted(k for k in remote.list_keys() if k.endswith(".parquet")) == keys
    for key in keys:
        ours, theirs = (pq.read_table(io.BytesIO(store.read_bytes(key))) for store in (local, remote))
        assert theirs.equals(ours), f"{key} differs between the Celery and the in-process build"


PROBE = Path(__file__).resolve().parent / "celery_probe.py"


@pytest.fixture
def probe_cluster(tmp_path, monkeypatch):
    """Two workers (a, b) that can load tests/orchestration/celery_probe.py, and this process set up to launch it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("SPOTON_PROBE_DIR", str(marks))
    try:
        with scale_cluster(tmp_path / "cluster", ["a", "b"], tmp_path / "store") as started:
            for key in (BROKER_ENV, "DAGSTER_HOME", "SPOTON_PG_HOST", "SPOTON_PG_USER", "SPOTON_PG_PASSWORD",
                        "SPOTON_PG_DB"):
                monkeypatch.setenv(key, started.env[key])
            yield started, marks
    except ServiceError as error:
        pytest.skip(str(error))


@pytest.mark.integration
def test_a_worker_killed_in_the_middle_of_a_step_hands_the_step_to_the_other(probe_cluster):
    cluster, marks = probe_cluster
    job = ReconstructableRepository.for_file(str(PROBE), "defs", str(REPO_ROOT)).get_reconstructable_job("probe_job")
    with DagsterInstance.get() as instance:
        outcome = {}
        launcher = threading.Thread(target=lambda: outcome.update(result=execute_job(job, instance)))
        launcher.start()
        first = marks / "attempt-0"
        deadline = time.time() + 180
        while not first.exists() and time.time() < deadline and launcher.is_alive():
            time.sleep(0.2)
        assert first.exists(), "the probe step never started on a worker"
        time.sleep(0.5)  # the pid is written
        (victim,) = [w for w in cluster.workers.values() if w.process.pid == int(first.read_text())]
        (survivor,) = [w for w in cluster.workers.values() if w is not victim]
        victim.kill()
        launcher.join(timeout=300)
        assert not launcher.is_alive(), "the run did not finish after the worker was killed"
        result = outcome["result"]
        assert result.success
        assert int((marks / "attempt-1").read_text()) == survivor.process.pid  # the step ran again, on the other
        assert not (marks / "attempt-2").exists()
        assert steps_per_worker(instance, [result.run_id]) == {victim.name: 1, survivor.name: 1}
