"""The media plane's parts in-process (no server): offer checks, a camera feed handing the newest
processed frame to a viewer's track across threads, and the WHIP jitter buffer."""
from __future__ import annotations

import asyncio
import re
import threading

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from apps.live_api.webrtc import CameraFeed, FeedTrack, MarkerJitterBuffer, MediaError, check_offer
from spoton.live.tick import MEDIA_TS_STEP


async def _offer(kind: str = "video") -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    return pc.localDescription.sdp


@pytest.fixture(scope="module")
def video_offer() -> str:
    return asyncio.run(_offer())


def test_offer_checks_name_what_is_wrong(video_offer):
    check_offer(video_offer, want="send")  # a real offer passes
    cases = {
        "hello": (400, "malformed SDP"),
        asyncio.run(_offer("audio")): (400, "no video m-line"),
        re.sub(r"a=fingerprint:.*\r\n", "", video_offer): (400, "DTLS fingerprint"),
        re.sub(r" (VP8|H264)/90000", " AV1/90000", video_offer): (406, "VP8 or H264"),
    }
    for offer, (status, words) in cases.items():
        with pytest.raises(MediaError) as caught:
            check_offer(offer, want="send")
        assert caught.value.status_code == status and words in caught.value.detail, caught.value.detail


def _image(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def test_a_track_sends_the_newest_frame_once_with_its_media_timestamp():
    async def run():
        feed = CameraFeed(asyncio.get_running_loop())
        track = FeedTrack(feed)
        for value, ts in ((1, 900), (2, 1800), (3, 2700)):  # three frames before the viewer reads
            feed.put(_image(value), ts)
        first = await track.recv()
        # the next recv waits until the processing thread puts a frame (woken across threads)
        waiting = asyncio.create_task(track.recv())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        threading.Thread(target=feed.put, args=(_image(4), 2700)).start()  # a source restart: same ts
        second = await asyncio.wait_for(waiting, 5)
        track.stop()
        with pytest.raises(MediaStreamError):
            await track.recv()
        return first, second, feed
    first, second, feed = asyncio.run(run())
    assert first.pts == 2700 and int(first.to_ndarray(format="bgr24")[0, 0, 0]) == 3  # older frames skipped
    assert second.pts == 2700 + MEDIA_TS_STEP and int(second.to_ndarray(format="bgr24")[0, 0, 0]) == 4
    assert not feed.waiters  # a stopped track no longer waits on the feed


def _packets(timestamp: int, first_seq: int, count: int) -> list:
    """A video frame's RTP packets as the receiver hands them to its jitter buffer (payload depacketized)."""
    packets = []
    for i in range(count):
        packet = RtpPacket(payload_type=96, marker=int(i == count - 1), sequence_number=(first_seq + i) % 2**16,
                           timestamp=timestamp, payload=b"x")
        packet._data = bytes([first_seq + i & 0xFF])
        packets.append(packet)
    return packets


def test_the_jitter_buffer_hands_a_frame_over_with_its_marked_last_packet():
    ours, aiortcs = MarkerJitterBuffer(capacity=512, is_video=True), JitterBuffer(capacity=512, is_video=True)
    frames = [_packets(3000 * k, 65530 + 3 * k, 3) for k in range(3)]  # sequence numbers wrap in frame 2
    for k, packets in enumerate(frames):
        for buffer in (ours, aiortcs):
            handed = [buffer.add(p)[1] for p in packets]
            if buffer is ours:  # now, at the marked packet
                assert handed[:2] == [None, None] and handed[2].timestamp == 3000 * k
                assert handed[2].data == b"".join(p._data for p in packets)
            else:  # aiortc's: the frame before, at this frame's first packet
                assert (handed[0] is None) == (k == 0) and handed[1:] == [None, None]
                assert k == 0 or handed[0].timestamp == 3000 * (k - 1)
    # out of order: the frame goes when its last missing packet arrives; a gap holds it back
    first, middle, last = _packets(12000, 3, 3)  # right after frame 2 (sequence 2)
    assert ours.add(first)[1] is None and ours.add(last)[1] is None
    assert ours.add(middle)[1].data == first._data + middle._data + last._data
    lost = _packets(15000, 6, 3)
    assert ours.add(lost[0])[1] is None and ours.add(lost[2])[1] is None  # the middle one is missing

