"""Resource sets: LOCAL (embedded defaults, a folder on this machine) and PROD (S3 through dagster-aws).

Chosen by ``SPOTON_DEPLOYMENT`` (``local`` by default). Secrets come from
environment variables only (``EnvVar``), never from code or config files.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import EnvVar
from dagster_aws.s3 import S3Resource

from resources.lake_io import ParquetLakeIOManager
from resources.perception import PerceptionResource
from resources.store import LocalStoreResource, S3StoreResource
from spoton.artifacts import cache_dir_from

REPO_ROOT = Path(__file__).resolve().parents[1]


def var_dir() -> Path:
    """Where the local deployment keeps its store, lake, catalog and Dagster instance."""
    return Path(os.environ.get("SPOTON_VAR", REPO_ROOT / "var"))


def use_local_instance() -> None:
    """Point Dagster at ``$SPOTON_VAR/dagster_home`` (unless DAGSTER_HOME is set), with the
    deployment's instance config (SQLite, two queued runs at a time) on first use."""
    os.environ.setdefault("DAGSTER_HOME", str(var_dir() / "dagster_home"))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")


def shared_dir() -> Path:
    """The shared oracle folder (the PETS annotation under pets/): ``$SPOTON_SHARED``, else ../shared."""
    return Path(os.environ.get("SPOTON_SHARED", REPO_ROOT.parent / "shared"))


def perception_from_env() -> PerceptionResource:
    fps = os.environ.get("SPOTON_PROCESSING_FPS")
    score = os.environ.get("SPOTON_SCORE_THRESHOLD")
    crossings = os.environ.get("SPOTON_CROSSINGS", "0").strip()
    if crossings not in ("0", "1"):
        raise ValueError(f"SPOTON_CROSSINGS={crossings!r}: use 1 (re-decide swaps at crossings) or 0 (off)")
    return PerceptionResource(processing_fps=float(fps) if fps else None,
                              **({"score_threshold": float(score)} if score else {}),
                              resolve_crossings=crossings == "1",
                              tracker=os.environ.get("SPOTON_TRACKER", "bytetrack"),
                              ort_threads=int(os.environ.get("SPOTON_ORT_THREADS", "1")),
                              cache_dir=str(cache_dir_from(os.environ)))


def retention_days_from_env() -> float:
    """``SPOTON_RETENTION_DAYS``: days live history and uploads are kept; unset or 0: forever."""
    text = os.environ.get("SPOTON_RETENTION_DAYS", "").strip() or "0"
    try:
        days = float(text)
    except ValueError:
        raise ValueError(f"SPOTON_RETENTION_DAYS={text!r} is not a number of days (0: keep forever)") from None
    if days < 0:
        raise ValueError(f"SPOTON_RETENTION_DAYS={text!r}: use a number of days >= 0 (0: keep forever)")
    return days


def local_resources() -> dict:
    lake = LocalStoreResource(root=str(var_dir() / "lake"))
    return {
        "store": LocalStoreResource(root=os.environ.get("SPOTON_STORE", str(var_dir() / "store"))),
        "lake_io_manager": ParquetLakeIOManager(store=lake),
        "perception": perception_from_env(),
    }


def prod_resources() -> dict:
    s3 = S3Resource(endpoint_url=EnvVar("SPOTON_S3_ENDPOINT"), region_name=os.environ.get("AWS_REGION", "us-east-1"),
                    aws_access_key_id=EnvVar("AWS_ACCESS_KEY_ID"), aws_secret_access_key=EnvVar("AWS_SECRET_ACCESS_KEY"))
    bucket = os.environ.get("SPOTON_S3_BUCKET", "spoton")
    return {
        "store": S3StoreResource(s3=s3, bucket=bucket, prefix="store"),
        "lake_io_manager": ParquetLakeIOManager(store=S3StoreResource(s3=s3, bucket=bucket, prefix="lake")),
        "perception": perception_from_env(),
    }


def deployment_name(deployment: str | None = None) -> str:
    deployment = deployment or os.environ.get("SPOTON_DEPLOYMENT", "local")
    if deployment not in ("local", "prod"):
        raise ValueError(f"SPOTON_DEPLOYMENT={deployment!r}: use 'local' or 'prod'")
    return deployment


def resources_for(deployment: str | None = None) -> dict:
    return local_resources() if deployment_name(deployment) == "local" else prod_resources()
