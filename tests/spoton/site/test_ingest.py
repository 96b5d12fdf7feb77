"""spoton.site.ingest on real videos made from the sample: H.264 with keyframes near the segment
boundaries is cut by stream copy (the frames bit-exact), anything else is transcoded; either way the
sub-videos decode to every frame of the video, and a cancelled or failed add leaves nothing behind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spoton.site.ingest import add_video_camera, discard_orphan_videos, plan_cut
from spoton.site.onboarding import OnboardingError, create_site, delete_camera
from spoton.site.storage import current_version, load_environment
from spoton.storage.store import LocalStore
from spoton.video import iter_frames, probe

PLAN = (Path(__file__).resolve().parents[3] / "data" / "environments" / "pets_s2l1" / "floor_plan.png").read_bytes()
H264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")


@pytest.fixture
def store(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    create_site(store, "plaza", PLAN, 0.05, segment_length_s=1.0)  # the sample is 10 fps: 10-frame segments
    return store


def frames(path: Path) -> list[np.ndarray]:
    return [f.image for f in iter_frames(path)]


def test_h264_with_keyframes_near_the_boundaries_is_cut_by_stream_copy_frame_exact(store, sample_clip):
    clip = sample_clip("gop7.mp4", *H264, "-g", "7", "-keyint_min", "7")  # keyframes 0, 7, 14, 21; B-frames on
    stages = []
    added = add_video_camera(store, "plaza", "north", clip, progress=lambda s, f: stages.append((s, f)))
    assert added.path == "copy", added.why
    assert added.frame_counts == (7, 14, 4), "cut at the keyframes nearest 10 and 20 (7 and 21)"
    assert [probe(store.local_path(k), exact_count=True).frame_count for k in added.keys] == [7, 14, 4]
    decoded = [image for key in added.keys for image in frames(store.local_path(key))]
    source = frames(clip)
    assert len(decoded) == len(source) == 25
    assert all(np.array_equal(a, b) for a, b in zip(decoded, source)), "stream copy keeps every frame bit-exact"
    assert [s for s, _ in stages][0] == "checking" and "cutting" in dict(stages) and stages[-1] == ("registering", 1.0)
    assert [f for _, f in stages] == sorted(f for _, f in stages), "progress only grows"
    camera = load_environment(store, "plaza").camera("north")
    assert camera.fps == 10.0 and camera.source.uri == "plaza/north/sub_video_01.mp4"


@pytest.mark.parametrize(("name", "codec", "why"), [
    ("mjpeg.avi", ("-c:v", "mjpeg"), "mjpeg, not H.264"),
    ("gop250.mp4", (*H264, "-g", "250"), "no keyframe within 1 s"),
])
def test_other_videos_are_transcoded_into_segments_of_exactly_the_segment_length(store, sample_clip, name, codec, why):
    clip = sample_clip(name, *codec)
    stages = []
    added = add_video_camera(store, "plaza", "north", clip, progress=lambda s, f: stages.append(s))
    assert added.path == "transcode" and why in added.why
    assert "transcoding" in stages and "cutting" not in stages
    infos = [probe(store.local_path(k), exact_count=True) for k in added.keys]
    assert [i.codec for i in infos] == ["h264"] * 3 and [i.frame_count for i in infos] == [10, 10, 5]
    assert sum(len(frames(store.local_path(k))) for k in added.keys) == len(frames(clip))


def test_a_rate_override_sparse_keyframes_or_another_pixel_format_is_planned_as_transcode(sample_clip):
    clip = sample_clip("gop10.mp4", *H264, "-g", "10")
    info = probe(clip)
    assert plan_cut(clip, info, None, 1.0).path == "copy"
    assert "overridden" in plan_cut(clip, info, 5.0, 1.0).why
    assert plan_cut(clip, info, None, 0.5, max_cut_shift_s=0.0).path == "transcode", "5 and 15 are no keyframes"
    assert plan_cut(clip, info, None, 2.0, max_cut_shift_s=0.0).cuts == (20,)
    assert plan_cut(clip, info, None, 60.0).cuts == (), "shorter than a segment: one sub-video"
    yuv444 = sample_clip("yuv444.mp4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv444p", "-g", "10")
    assert plan_cut(yuv444, probe(yuv444), None, 1.0).why == "its pixel format is yuv444p, not yuv420p"


def test_a_cancelled_or_refused_add_leaves_the_site_and_the_store_as_they_were(store, sample_clip, tmp_path):
    clip = sample_clip("mjpeg.avi", "-c:v", "mjpeg")

    def cancel(stage: str, fraction: float) -> None:
        if fraction > 0.5:
            raise KeyboardInterrupt  # what a closing job service raises, in kind

    with pytest.raises(KeyboardInterrupt):
        add_video_camera(store, "plaza", "north", clip, progress=cancel)
    assert store.list_keys("plaza/north/") == [] and current_version(store, "plaza") == 1

    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    with pytest.raises(OnboardingError, match="camera 'north': not a readable video: notes.mp4") as refused:
        add_video_camera(store, "plaza", "north", text)
    assert refused.value.status == 415 and str(tmp_path) not in str(refused.value)
    with pytest.raises(OnboardingError, match="over the 1 s limit"):
        add_video_camera(store, "plaza", "north", clip, max_duration_s=1.0)
    assert current_version(store, "plaza") == 1


def test_orphan_videos_of_a_killed_add_are_discarded_but_a_deleted_cameras_are_kept(store, sample_clip):
    store.write_bytes("plaza/ghost/sub_video_01.mp4", b"half written")
    assert discard_orphan_videos(store, "plaza", "ghost") == ["plaza/ghost/sub_video_01.mp4"]
    assert store.list_keys("plaza/ghost/") == []
    add_video_camera(store, "plaza", "north", sample_clip("gop10.mp4", *H264, "-g", "10"))
    delete_camera(store, "plaza", "north")
    assert discard_orphan_videos(store, "plaza", "north") == [], "version 2 still uses them"
    assert len(store.list_keys("plaza/north/")) == 3
