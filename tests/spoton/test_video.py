"""spoton.video on the real sample video, on H.264 files it writes itself, and on broken files."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from spoton import video
from spoton.errors import VideoError
from spoton.video import (H264Writer, VideoFrame, VideoInfo, codec_name, encode_h264, iter_frames,
                          probe, sample_indices)

# vtest.avi as the Debian opencv-doc package ships it: MS-MPEG4 v3 ("DIV3") in AVI, and the
# container declares 10 fps (PETS 2009 itself was recorded at about 7 fps).
VTEST_SIZE = (768, 576)
VTEST_FRAMES = 795
VTEST_FPS = 10.0


@pytest.fixture(scope="module")
def vtest_head(sample_video) -> list[np.ndarray]:
    return [frame.image for frame in iter_frames(sample_video, stop=20)]


@pytest.fixture(scope="module")
def h264_clip(tmp_path_factory, vtest_head) -> Path:
    """20 real frames encoded by H264Writer at 7 fps (shared by the round-trip tests)."""
    path = tmp_path_factory.mktemp("h264") / "clip.mp4"
    with H264Writer(path, 7.0, VTEST_SIZE) as writer:
        for image in vtest_head:
            writer.write(image)
    return path


def decode_all(path) -> list[np.ndarray]:
    return [frame.image for frame in iter_frames(path)]


# --------------------------------------------------------------------------- probe
def test_probe_sample_video(sample_video):
    info = probe(sample_video)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height) == VTEST_SIZE
    assert info.frame_count == VTEST_FRAMES
    assert info.fps == pytest.approx(VTEST_FPS)
    assert info.codec == "msmpeg4v3"
    assert info.duration_s == pytest.approx(VTEST_FRAMES / VTEST_FPS)
    assert info.size_bytes == Path(sample_video).stat().st_size
    assert info.path == str(sample_video)


@pytest.mark.parametrize("tag, name", [
    ("avc1", "h264"), ("h264", "h264"), ("H264", "h264"), ("MJPG", "mjpeg"), ("mp4v", "mpeg4"),
    ("FMP4", "mpeg4"), ("MP43", "msmpeg4v3"), ("VP90", "vp9"), ("hvc1", "hevc"), ("av01", "av1"),
    ("ABCD", "abcd"),
])
def test_codec_name_from_fourcc(tag, name):
    assert codec_name(int.from_bytes(tag.encode(), "little")) == name


def test_codec_name_unknown():
    assert codec_name(0) == "unknown"
    assert codec_name(-1) == "unknown"


# --------------------------------------------------------------------------- iter_frames
def test_iter_frames_slice_every_frame(sample_video, frame_100):
    frames = list(iter_frames(sample_video, start=100, stop=130))
    assert [f.index for f in frames] == list(range(100, 130))
    assert [f.ts for f in frames] == pytest.approx([i / VTEST_FPS for i in range(100, 130)])
    for frame in frames:
        assert isinstance(frame, VideoFrame)
        assert frame.image.shape == (576, 768, 3) and frame.image.dtype == np.uint8
    np.testing.assert_array_equal(frames[0].image, frame_100)


def test_iter_frames_start_seeks_to_the_same_pixels(sample_video, vtest_head):
    """Seeking to ``start`` gives the frames a sequential decode gives (the AVI source)."""
    frames = list(iter_frames(sample_video, start=13, stop=17))
    assert [f.index for f in frames] == [13, 14, 15, 16]
    for frame in frames:
        np.testing.assert_array_equal(frame.image, vtest_head[frame.index])


def test_iter_frames_sampled_whole_video(sample_video):
    """fps=5 on the 10 fps source: every second frame, 398 of 795, timestamps from the index."""
    frames = list(iter_frames(sample_video, fps=5))
    indices = [f.index for f in frames]
    assert len(frames) == 398
    assert indices == list(range(0, VTEST_FRAMES, 2))
    assert frames[-1].ts == pytest.approx(794 / VTEST_FPS)
    np.testing.assert_array_equal(indices, sample_indices(VTEST_FRAMES, VTEST_FPS, 5))


@pytest.mark.parametrize("fps, start, stop", [(3.0, 101, 200), (3.5, 0, 60), (4.2, 333, 400)])
def test_iter_frames_sampled_slice_matches_sample_indices(sample_video, fps, start, stop):
    """A slice samples exactly the frames the whole video would (anchored at frame 0)."""
    got = [f.index for f in iter_frames(sample_video, fps=fps, start=start, stop=stop)]
    everything = sample_indices(VTEST_FRAMES, VTEST_FPS, fps)
    assert got == [int(i) for i in everything if start <= i < stop]
    assert len(got) > 0


def test_iter_frames_fps_at_or_above_native_keeps_all(sample_video):
    got = [f.index for f in iter_frames(sample_video, fps=30, start=5, stop=12)]
    assert got == list(range(5, 12))


def test_iter_frames_empty_range_and_bad_arguments(sample_video):
    assert list(iter_frames(sample_video, start=10, stop=10)) == []
    assert list(iter_frames(sample_video, start=VTEST_FRAMES + 10)) == []
    with pytest.raises(ValueError, match="start"):
        iter_frames(sample_video, start=-1)
    with pytest.raises(ValueError, match="start"):
        iter_frames(sample_video, start=10, stop=5)
    with pytest.raises(ValueError, match="fps"):
        iter_frames(sample_video, fps=0)


# --------------------------------------------------------------------------- sample_indices
@pytest.mark.parametrize("count, native, target", [
    (795, 10.0, 5.0), (795, 10.0, 3.0), (795, 7.0, 3.5), (1000, 29.97, 1.0), (1000, 30.0, 7.3),
    (500, 25.0, 24.0), (3, 30.0, 1.0), (1, 10.0, 0.5),
])
def test_sample_indices_properties(count, native, target):
    indices = sample_indices(count, native, target)
    assert indices.dtype == np.int64
    assert indices[0] == 0 and indices[-1] < count
    assert np.all(np.diff(indices) > 0)  # monotonic and unique
    expected = count * target / native
    assert abs(len(indices) - expected) <= 1.0  # rate close to the target
    ratio = native / target
    k = np.arange(len(indices))
    assert np.all(np.abs(indices - k * ratio) <= 0.5 + 1e-9)  # the frame nearest each target time
    np.testing.assert_array_equal(indices, sample_indices(count, native, target))  # deterministic


@pytest.mark.parametrize("target", [None, 10.0, 25.0])
def test_sample_indices_keeps_all_at_or_above_native(target):
    np.testing.assert_array_equal(sample_indices(50, 10.0, target), np.arange(50))


def test_sample_indices_edge_cases():
    assert len(sample_indices(0, 10.0, 5.0)) == 0
    np.testing.assert_array_equal(sample_indices(7, 7.0, 3.5), [0, 2, 4, 6])
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            sample_indices(10, 10.0, bad)
        with pytest.raises(ValueError):
            sample_indices(10, bad, 5.0)


# --------------------------------------------------------------------------- H264Writer
def test_h264_round_trip(h264_clip, vtest_head):
    info = probe(h264_clip)
    assert info.codec == "h264"
    assert (info.width, info.height) == VTEST_SIZE
    assert info.frame_count == 20
    assert info.fps == pytest.approx(7.0)
    decoded = decode_all(h264_clip)
    assert len(decoded) == 20
    for original, copy in zip(vtest_head, decoded):
        assert np.abs(original.astype(np.int16) - copy).mean() < 10
    assert [p.name for p in h264_clip.parent.iterdir()] == ["clip.mp4"]  # no temp file left


def test_h264_is_browser_playable(h264_clip):
    """yuv420p H.264 with the moov atom before the media data (+faststart)."""
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(h264_clip)],
                            capture_output=True, text=True)
    stream = next(line for line in result.stderr.splitlines() if "Video:" in line)
    assert "h264" in stream and "yuv420p" in stream
    data = h264_clip.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_h264_seek_start_matches_sequential_decode(h264_clip):
    """Seeking inside an H.264 file with B-frames lands on the right frames."""
    everything = decode_all(h264_clip)
    for frame in iter_frames(h264_clip, start=11, stop=16):
        np.testing.assert_array_equal(frame.image, everything[frame.index])
    sampled = [f.index for f in iter_frames(h264_clip, fps=3.0)]
    np.testing.assert_array_equal(sampled, sample_indices(20, 7.0, 3.0))


def test_encode_h264_odd_size_is_padded(tmp_path):
    frames = [np.full((75, 101, 3), 40 * i, np.uint8) for i in range(3)]
    path = encode_h264(frames, tmp_path / "odd.mp4", fps=5)
    info = probe(path)
    assert (info.width, info.height) == (102, 76) and info.frame_count == 3


def test_wrong_frame_size_raises_value_error_and_leaves_nothing(tmp_path, vtest_head):
    target = tmp_path / "out.mp4"
    with pytest.raises(ValueError) as excinfo:
        with H264Writer(target, 7.0, (640, 480)) as writer:
            writer.write(vtest_head[0])
    assert "768x576" in str(excinfo.value) and "640x480" in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


def test_failure_inside_with_leaves_no_file_and_keeps_the_old_one(tmp_path, vtest_head):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous good video")
    with pytest.raises(RuntimeError):
        with H264Writer(target, 7.0, VTEST_SIZE) as writer:
            for image in vtest_head[:5]:
                writer.write(image)
            raise RuntimeError("detector crashed")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert target.read_bytes() == b"previous good video"


def test_ffmpeg_failure_raises_video_error_with_its_stderr(tmp_path, vtest_head):
    with pytest.raises(VideoError) as excinfo:
        with H264Writer(tmp_path / "out.mp4", 7.0, VTEST_SIZE, preset="no-such-preset") as writer:
            for image in vtest_head:
                writer.write(image)
    message = str(excinfo.value)
    assert "ffmpeg" in message and "no-such-preset" in message
    assert list(tmp_path.iterdir()) == []


def test_writer_without_frames_or_with_bad_arguments(tmp_path):
    with pytest.raises(VideoError, match="no frames"):
        with H264Writer(tmp_path / "none.mp4", 7.0, (64, 48)):
            pass
    with pytest.raises(VideoError, match="no frames"):
        encode_h264([], tmp_path / "none.mp4", 7.0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="fps"):
        H264Writer(tmp_path / "x.mp4", 0, (64, 48))
    with pytest.raises(ValueError, match="size"):
        H264Writer(tmp_path / "x.mp4", 7.0, (0, 48))
    with H264Writer(tmp_path / "x.mp4", 7.0, (64, 48)) as writer:
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((48, 64, 3), np.float32))
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert probe(tmp_path / "x.mp4").frame_count == 1


# --------------------------------------------------------------------------- bad inputs
def test_missing_file(tmp_path):
    for call in (probe, iter_frames):
        with pytest.raises(VideoError, match=r"no such file: .*nope\.mp4 – check the path"):
            call(tmp_path / "nope.mp4")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    for call in (probe, iter_frames):
        with pytest.raises(VideoError, match=r"empty file \(0 bytes\)"):
            call(path)


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(VideoError, match="is a folder"):
        probe(tmp_path)


@pytest.mark.parametrize("content", [
    np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes(),
    b"this is a text file with a video's name\n" * 50,
], ids=["random-bytes", "text"])
def test_not_a_video(tmp_path, content):
    path = tmp_path / "movie.mp4"
    path.write_bytes(content)
    for call in (probe, iter_frames):
        with pytest.raises(VideoError) as excinfo:
            call(path)
        assert "not a readable video" in str(excinfo.value)
        assert "re-export" in str(excinfo.value)


@pytest.mark.parametrize("fraction", [0.5, 0.85])
def test_truncated_mp4_yields_readable_frames_then_stops(tmp_path, h264_clip, caplog, fraction):
    """An MP4 cut short (index intact thanks to +faststart): either the first frame is lost and
    both probe and iter_frames raise VideoError, or probe trusts the header and iter_frames
    yields the decodable frames, logs a warning and stops. Never a hang, never a bad shape."""
    data = h264_clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    try:
        info = probe(cut)
    except VideoError as exc:  # in this short clip the first (key) frame is most of the data
        assert fraction < 0.85, "most of the clip is there: its first frames must decode"
        assert "no decodable frames" in str(exc) and "truncated" in str(exc)
        with pytest.raises(VideoError, match="no decodable frames"):
            list(iter_frames(cut))
        return
    assert info.frame_count == 20  # what the header declares
    with caplog.at_level(logging.WARNING, logger="spoton.video"):
        frames = list(iter_frames(cut))
    assert 0 < len(frames) < 20
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(f.image.shape == (576, 768, 3) for f in frames)
    assert "truncated" in caplog.text
    assert probe(cut, exact_count=True).frame_count == len(frames)


def test_truncated_mp4_without_frames_or_index(tmp_path, h264_clip):
    head = tmp_path / "head.mp4"
    head.write_bytes(h264_clip.read_bytes()[:2000])  # header only: no frame data
    with pytest.raises(VideoError, match="no decodable frames .*truncated or corrupt"):
        probe(head)
    with pytest.raises(VideoError, match="no decodable frames"):
        list(iter_frames(head))
    # an MP4 whose index (moov atom) is at the end, cut in half: nothing to open
    moov_last = tmp_path / "moov_last.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(h264_clip),
                    "-c", "copy", str(moov_last)], check=True)
    data = moov_last.read_bytes()
    assert data.find(b"mdat") < data.find(b"moov")
    moov_last.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="not a readable video"):
        probe(moov_last)


def test_frame_count_fallback_counts_frames(tmp_path):
    """A JPEG named .mp4 opens as a 1-frame MJPEG stream whose container has no frame count."""
    import cv2

    path = tmp_path / "photo.mp4"
    ok, encoded = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    path.write_bytes(encoded.tobytes())
    info = probe(path)
    assert (info.codec, info.width, info.height, info.frame_count) == ("mjpeg", 64, 48, 1)


class FakeCapture:
    """Stands in for cv2.VideoCapture where no real file has the defect."""

    def __init__(self, fps: float, frame_count: float):
        import cv2

        self.props = {cv2.CAP_PROP_FPS: fps, cv2.CAP_PROP_FRAME_COUNT: frame_count,
                      cv2.CAP_PROP_FOURCC: float(int.from_bytes(b"avc1", "little"))}

    def get(self, prop):
        return self.props.get(prop, 0.0)

    def read(self):
        return False, None

    def grab(self):
        return False

    def release(self):
        pass


@pytest.mark.parametrize("fps", [0.0, float("nan"), 90000.0])
def test_unknown_fps(tmp_path, monkeypatch, fps):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x")
    monkeypatch.setattr(video, "_open", lambda p: FakeCapture(fps, 10))
    for call in (probe, iter_frames):
        with pytest.raises(VideoError, match="unknown frame rate .*constant frame rate"):
            call(path)


def test_zero_frames(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x")
    monkeypatch.setattr(video, "_open", lambda p: FakeCapture(25.0, 0))
    with pytest.raises(VideoError, match="no decodable frames"):
        probe(path)
    with pytest.raises(VideoError, match="no decodable frames"):
        list(iter_frames(path))
