"""The sub-video sensor on a store of its own: which segments it requests, and when again."""
import json

from dagster import build_sensor_context, instance_for_test

from orchestration.sensors import sub_video_sensor
from resources.store import LocalStoreResource
from spoton.storage.store import LocalStore


def test_sensor_reruns_a_segment_when_a_camera_joins_its_site(tmp_path):
    """An upload into an existing site adds a camera to segments already processed: they run again."""
    store = LocalStore(tmp_path / "store")
    for camera in ("north", "south"):
        for segment in ("01", "02"):
            store.write_bytes(f"plaza/{camera}/sub_video_{segment}.mp4", b"not read by the sensor")
    resources = {"store": LocalStoreResource(root=str(tmp_path / "store"))}
    with instance_for_test() as fresh:
        first = sub_video_sensor(build_sensor_context(instance=fresh, resources=resources))
        assert [r.run_key for r in first.run_requests] == ["plaza|01|north+south", "plaza|02|north+south"]
        store.write_bytes("plaza/east/sub_video_01.mp4", b"a camera added later, one segment so far")
        second = sub_video_sensor(build_sensor_context(instance=fresh, cursor=first.cursor, resources=resources))
        assert [r.run_key for r in second.run_requests] == ["plaza|01|east+north+south"]
        store.delete("plaza/east/sub_video_01.mp4")  # a camera gone is no reason to run again
        third = sub_video_sensor(build_sensor_context(instance=fresh, cursor=second.cursor, resources=resources))
        assert third.run_requests == []
        older = json.dumps([["plaza", "01"], ["plaza", "02"]])  # a cursor written before cameras were kept
        assert sub_video_sensor(build_sensor_context(instance=fresh, cursor=older, resources=resources)).run_requests == []
