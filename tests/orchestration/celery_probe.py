"""A code location for the fault tests (loaded by file by the tests and the Celery workers): each step
records which worker process runs it and, on its first attempt, holds on while the test breaks something."""
import os
import time
from pathlib import Path

from dagster import Definitions, asset, define_asset_job
from dagster_celery import celery_executor

from orchestration.workers import CelerySettings


def _attempt(hold_s: float) -> int:
    """Number this attempt, note the worker's main process in SPOTON_PROBE_DIR, hold the first attempt."""
    marks = Path(os.environ["SPOTON_PROBE_DIR"])
    attempt = len(list(marks.iterdir()))
    (marks / f"attempt-{attempt}").write_text(str(os.getppid()))
    if attempt == 0:
        time.sleep(hold_s)
    return attempt


@asset
def slow_probe() -> int:
    return _attempt(hold_s=300)  # the test kills this worker meanwhile


@asset
def broker_restart_probe() -> int:
    return _attempt(hold_s=30)  # the test restarts the broker meanwhile


defs = Definitions(assets=[slow_probe, broker_restart_probe],
                   jobs=[define_asset_job("probe_job", selection=[slow_probe]),
                         define_asset_job("broker_restart_job", selection=[broker_restart_probe])],
                   executor=celery_executor.configured(CelerySettings.from_env().executor_config(), name="celery"))
