"""Per-stage timestamps and CPU times of a live API's frames, for ``bench/glass_to_glass.py --stages``.

Runs the live API (``python -m bench.stage_probe``, same environment as ``python -m apps.live_api``)
with the media plane's and the session's steps wrapped, so every frame's way through the server is
timed on the monotonic clock, with the CPU time of its thread for the steps that compute:

- WHIP ingest (webcam): the frame's first and last (marker) RTP packet, the VP8/H.264 decode (in
  aiortc's decoder thread), the decoded frame handed to the event loop, its conversion to BGR
  there and its publication into the camera's one-frame slot;
- file cameras: the reader thread's CPU between two published frames (decoding the file);
- both: the slot wait (published -> taken by the session), ``process()`` (detection, tracking),
  the tick that carries the frame's ``media_ts``, and each viewer's encode of the frame (WHEP).

The records go to ``$SPOTON_STAGE_PROBE`` (JSON) when the API exits. Nothing here changes what the
API does; the wrappers only read clocks.
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import signal
import sys
import threading
import time
from collections import defaultdict

RECORDS: dict[str, list] = defaultdict(list)
_LOCK = threading.Lock()
_SOURCES: dict[int, tuple[str, str]] = {}  # id(LiveSource) -> (session id, camera)
_READER_CPU: dict[int, float] = {}  # id(LiveSource) -> its reader thread's CPU at the last publish
_LOOP_RECV: dict[int, tuple[int, float, float]] = {}  # id(LiveSource) -> (rtp pts, monotonic, loop CPU)


def _note(record: str, **fields) -> None:
    with _LOCK:
        RECORDS[record].append(fields)


def install() -> None:
    import aiortc.codecs.h264 as h264
    import aiortc.codecs.vpx as vpx
    from aiortc.rtcrtpreceiver import RTCRtpReceiver, TimestampMapper

    import apps.live_api.webrtc as webrtc
    from apps.live_api.sessions import LiveSession
    from spoton.live.sources import LiveSource

    # --- RTP arrival of a WHIP frame's packets (raw RTP timestamps) ---
    handle = RTCRtpReceiver._handle_rtp_packet

    async def handle_rtp(self, packet, arrival_time_ms):
        _note("rtp", ts=packet.timestamp, marker=bool(packet.marker), t=time.monotonic())
        return await handle(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = handle_rtp
    map_timestamp = TimestampMapper.map

    def map_wrapped(self, timestamp):
        mapped = map_timestamp(self, timestamp)
        _note("tsmap", raw=timestamp, mapped=mapped, t=time.monotonic())
        return mapped

    TimestampMapper.map = map_wrapped

    # --- decoders (aiortc's decoder thread) and encoders (the loop's executor) ---
    for cls in (vpx.Vp8Decoder, h264.H264Decoder):
        def decode(self, encoded_frame, _orig=cls.decode):
            t0, c0 = time.monotonic(), time.thread_time()
            frames = _orig(self, encoded_frame)
            _note("decode", ts=encoded_frame.timestamp, t0=t0, t1=time.monotonic(), cpu=time.thread_time() - c0,
                  size=[frames[0].width, frames[0].height] if frames else None)
            return frames
        cls.decode = decode
    for cls in (vpx.Vp8Encoder, h264.H264Encoder):
        def encode(self, frame, force_keyframe=False, _orig=cls.encode):
            t0, c0 = time.monotonic(), time.thread_time()
            result = _orig(self, frame, force_keyframe)
            _note("encode", pts=int(frame.pts), t0=t0, t1=time.monotonic(), cpu=time.thread_time() - c0,
                  size=[frame.width, frame.height])
            return result
        cls.encode = encode

    # --- the WHIP track read on the event loop: which RTP frame each published frame is ---
    publish_frames = webrtc._publish_frames

    class _Track:
        def __init__(self, track, source):
            self.track, self.source = track, source

        async def recv(self):
            frame = await self.track.recv()
            _LOOP_RECV[id(self.source)] = (int(frame.pts), time.monotonic(), time.thread_time())
            return frame

    webrtc._publish_frames = lambda track, source: publish_frames(_Track(track, source), source)

    # --- the sources' slot ---
    session_init = LiveSession.__init__

    def init(self, session_id, environment, sources, *args, **kwargs):
        session_init(self, session_id, environment, sources, *args, **kwargs)
        for name, source in self.sources.items():
            _SOURCES[id(source)] = (session_id, name)

    LiveSession.__init__ = init
    publish = LiveSource.publish

    def publish_wrapped(self, frame, *, wait_taken=False):
        now, cpu = time.monotonic(), time.thread_time()
        session, camera = _SOURCES.get(id(self), ("?", "?"))
        extra = {}
        if self.spec.kind == "webrtc" and id(self) in _LOOP_RECV:
            pts, t_recv, c_recv = _LOOP_RECV.pop(id(self))
            extra = {"rtp": pts, "t_recv": t_recv, "convert_cpu": cpu - c_recv}
        elif self.spec.kind != "webrtc":
            last = _READER_CPU.get(id(self))
            extra = {"read_cpu": None if last is None else cpu - last}
        publish(self, frame, wait_taken=wait_taken)
        if self.spec.kind != "webrtc":
            _READER_CPU[id(self)] = time.thread_time()
        _note("publish", session=session, camera=camera, kind=self.spec.kind, index=frame.index, t=now,
              size=[int(frame.image.shape[1]), int(frame.image.shape[0])], **extra)

    LiveSource.publish = publish_wrapped
    latest = LiveSource.latest

    def latest_wrapped(self):
        frame = latest(self)
        if frame is not None:
            session, camera = _SOURCES.get(id(self), ("?", "?"))
            _note("taken", session=session, camera=camera, index=frame.index, t=time.monotonic())
        return frame

    LiveSource.latest = latest_wrapped

    # --- processing and ticks (the session's thread) ---
    process = LiveSession._process

    def process_wrapped(self, frames, arrivals):
        t0, c0 = time.monotonic(), time.thread_time()
        process(self, frames, arrivals)
        _note("process", session=self.id, t0=t0, t1=time.monotonic(), cpu=time.thread_time() - c0,
              frames={name: [frame.index, int(self._media_ts[name])] for name, frame in frames.items()})

    LiveSession._process = process_wrapped
    publish_tick = LiveSession._publish_tick

    def publish_tick_wrapped(self):
        pending = list(self._pending)
        media = {name: int(self._media_ts[name]) for name in pending}
        publish_tick(self)
        _note("tick", session=self.id, t=time.monotonic(), media=media)

    LiveSession._publish_tick = publish_tick_wrapped


def _dump() -> None:
    path = os.environ.get("SPOTON_STAGE_PROBE")
    if path:
        with _LOCK, open(path, "w") as handle:
            json.dump(RECORDS, handle)


if __name__ == "__main__":
    install()
    atexit.register(_dump)
    # uvicorn re-raises the SIGTERM it handled once it has shut down: exit through atexit then
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    runpy.run_module("apps.live_api", run_name="__main__")
