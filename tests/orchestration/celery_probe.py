"""A code location for the worker-loss test (loaded by file by the test and the Celery workers): its one
step records which worker process runs it and, on its first attempt, waits until that worker is killed."""
import os
import time
from pathlib import Path

from dagster import Definitions, asset, define_asset_job
from dagster_celery import celery_executor

from orchestration.workers import CelerySettings


@asset
def slow_probe() -> int:
    marks = Path(os.environ["SPOTON_PROBE_DIR"])
    attempt = len(list(marks.iterdir()))
    (marks / f"attempt-{attempt}").write_text(str(os.getppid()))  # the worker's main process
    if attempt == 0:
        time.sleep(300)  # the test kills this worker here
    return attempt


probe_job = define_asset_job("probe_job", selection=[slow_probe])
defs = Definitions(assets=[slow_probe], jobs=[probe_job],
                   executor=celery_executor.configured(CelerySettings.from_env().executor_config(), name="celery"))
