"""The media plane's parts in-process (no server): offer checks, and a camera feed handing the newest
processed frame to a viewer's track across threads."""
from __future__ import annotations

import asyncio
import re
import threading

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from apps.live_api.webrtc import CameraFeed, FeedTrack, MediaError, check_offer
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
