"""The media plane: WebRTC egress of every camera's processed frames (WHEP) and browser ingest (WHIP).

Signalling is plain HTTP (WHEP/WHIP style): ``POST .../cameras/{camera}/whep`` with an SDP offer
(``Content-Type: application/sdp``) answers ``201`` with the SDP answer and a ``Location`` to
``DELETE`` to stop; ``GET`` on that location tells the RTP timestamp offset (see below). One
aiortc ``RTCPeerConnection`` per viewer, capped per session and per instance (429 over a cap).

The session's processing thread hands each processed frame to :meth:`MediaPlane.put` with its
media timestamp (90 kHz, the clock of the ticks' ``media_ts``). That call only swaps the camera's
latest frame and wakes the event loop, so processing never waits on a viewer; each viewer's track
sends the newest frame with ``pts = media_ts``. aiortc adds a random origin to RTP timestamps, so
every track learns it from its sender (the RTP timestamp of the frame it sent last) and the page
reads it from the peer's resource: ``media_ts = rtpTimestamp - rtp_timestamp_offset (mod 2**32)``.

``?view=ptz`` on the WHEP route watches the camera's *virtual PTZ* instead: the crop-and-zoom
viewport of :mod:`apps.live_api.follow`, rendered from the same processed frame with the viewport
the tick's ``ptz`` entry reports for it (same ``media_ts``), so its ``space: "processed"`` boxes fit
frame by frame. The session hands each frame's viewport over as a lazy render; it is rendered only
while someone watches that view, once per frame whatever the number of viewers.

WHIP (operator+) feeds a browser's video into the session's ``webrtc`` camera
(:class:`spoton.live.sources.LiveSource`, latest-frame), one publisher per camera at a time.
Its frames reach the decoder when their last RTP packet arrives (:class:`MarkerJitterBuffer`), not
one frame interval later as aiortc's own buffer hands them over.

Peers end on ``DELETE``, when ICE/DTLS fails or closes, when their session ends, or when they
have not connected within ``connect_timeout_s``; each end closes the peer connection, which frees
its sockets and tasks.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import av
import numpy as np
import aiortc.rtcrtpreceiver
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription
from fastapi import APIRouter, HTTPException, Query, Request, Response

from apps.live_api.auth import Operator, ViewerByHeaderOrQuery
from spoton.live.sources import LiveSource
from spoton.live.tick import MEDIA_CLOCK_HZ, MEDIA_TS_STEP
from spoton.video import VideoFrame

log = logging.getLogger(__name__)

TIME_BASE = fractions.Fraction(1, MEDIA_CLOCK_HZ)  # pts = the tick's media_ts
SENDABLE_CODECS = ("VP8", "H264")  # what aiortc encodes
VIEWS = ("wide", "ptz")  # a camera's tracks: its processed frames, its virtual PTZ's viewport
MAX_SDP_BYTES = 64 * 1024
API = "/api/v1"

router = APIRouter(prefix=API, tags=["media plane"])


@dataclass(frozen=True)
class MediaSettings:
    """Caps and ICE addresses of the media plane."""

    max_peers: int = 32  # peer connections on this instance (viewers and publishers)
    max_peers_per_session: int = 8
    connect_timeout_s: float = 20.0  # a peer not connected by then is closed
    ice_hosts: tuple[str, ...] | None = None  # host candidate addresses; None: every interface's

    def __post_init__(self) -> None:
        if min(self.max_peers, self.max_peers_per_session) < 1 or self.connect_timeout_s <= 0:
            raise ValueError("SPOTON_WEBRTC_MAX_PEERS and SPOTON_WEBRTC_MAX_PEERS_PER_SESSION must be >= 1 "
                             "(and the connect timeout positive)")


class LazyFrame:
    """A picture rendered on first use and kept (a virtual PTZ's viewport: only watched ones cost)."""

    def __init__(self, render: Callable[[], np.ndarray]):
        self._render = render
        self._image: np.ndarray | None = None

    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self._render()
        return self._image


class CameraFeed:
    """One camera view's newest processed frame; tracks wait on it in the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        # (version, image, media_ts): swapped whole; the image may be a LazyFrame
        self.latest: tuple[int, np.ndarray | LazyFrame, int] | None = None
        self.waiters: set[asyncio.Event] = set()

    def put(self, image: np.ndarray | LazyFrame, ts: int) -> None:
        """From any thread: replace the frame and wake the tracks (never blocks)."""
        self.latest = (self.latest[0] + 1 if self.latest else 1, image, ts)
        if self.waiters:
            try:
                self.loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed (shutdown)
                pass

    def _wake(self) -> None:
        for event in self.waiters:
            event.set()


class FeedTrack(MediaStreamTrack):
    """A viewer's video track: the feed's newest frame, ``pts = media_ts``, never a frame twice."""

    kind = "video"

    def __init__(self, feed: CameraFeed):
        super().__init__()
        self.feed = feed
        self.sender = None  # set once added: the RTP timestamp offset is read from it
        self.rtp_offset: int | None = None
        self._event = asyncio.Event()
        self._seen = 0
        self._last_pts: int | None = None
        feed.waiters.add(self._event)

    async def recv(self) -> av.VideoFrame:
        self._learn_offset()
        while self.feed.latest is None or self.feed.latest[0] == self._seen:
            if self.readyState != "live":
                raise MediaStreamError
            self._event.clear()
            await self._event.wait()
        self._seen, image, ts = self.feed.latest
        if self._last_pts is not None and ts <= self._last_pts:
            ts = self._last_pts + MEDIA_TS_STEP  # RTP time must move forward
        if isinstance(image, LazyFrame):
            image = image.image()
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = ts, TIME_BASE
        self._last_pts = ts
        return frame

    def _learn_offset(self) -> None:
        """RTP timestamp = random origin + pts: the sender's last RTP timestamp is our last pts'."""
        if self.rtp_offset is not None or self._last_pts is None or self.sender is None:
            return
        last_rtp = getattr(self.sender, "_RTCRtpSender__rtp_timestamp", 0)  # aiortc 1.16 keeps it there
        if last_rtp:
            self.rtp_offset = (last_rtp - self._last_pts) % 2**32

    def stop(self) -> None:
        self.feed.waiters.discard(self._event)
        self._event.set()
        super().stop()


@dataclass
class Peer:
    """One peer connection of one session camera."""

    id: str
    kind: str  # "whep" (viewer) or "whip" (publisher)
    session_id: str
    camera: str
    pc: RTCPeerConnection
    created: float
    view: str = "wide"  # a viewer's: the camera's processed frames or its virtual PTZ
    track: FeedTrack | None = None  # a viewer's
    source: LiveSource | None = None  # a publisher's
    reader: asyncio.Task | None = None


class MediaError(HTTPException):
    """A signalling request the media plane refuses (always a 4xx, with what to do)."""


def check_offer(text: str, *, want: str) -> None:
    """Refuse an offer that is not SDP, has no video, or (egress) no codec we can send.

    ``want`` is ``"send"`` (WHEP: we send video) or ``"receive"`` (WHIP).
    """
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() != "v=0" or not any(line.startswith("m=") for line in lines):
        raise MediaError(400, "malformed SDP offer: send the browser's RTCPeerConnection offer "
                              "(starts with 'v=0', has m= lines) as the body, Content-Type: application/sdp")
    try:
        description = SessionDescription.parse(text)
    except Exception:  # aiortc's parser raises assorted errors on bad input
        raise MediaError(400, "malformed SDP offer: it cannot be parsed") from None
    videos = [m for m in description.media if m.kind == "video"]
    if not videos:
        raise MediaError(400, "the SDP offer has no video m-line: add a video transceiver "
                              "(recvonly for WHEP, sendonly for WHIP)")
    if not all(m.dtls is not None and m.dtls.fingerprints for m in videos):
        raise MediaError(400, "the SDP offer has no DTLS fingerprint (a=fingerprint): the media could not "
                              "be authenticated; send the browser's offer unmodified")
    codecs = {codec.mimeType.split("/")[-1].upper() for m in videos for codec in m.rtp.codecs}
    if not codecs & set(SENDABLE_CODECS):
        raise MediaError(406, f"the offer's video codecs {sorted(codecs) or '(none)'} include none this server "
                         f"can {want}: offer {' or '.join(SENDABLE_CODECS)}")


class MediaPlane:
    """Feeds per session camera, peers and their caps; owned by the app (``app.state.media``)."""

    def __init__(self, settings: MediaSettings, session_alive: Callable[[str], bool]):
        self.settings = settings
        self.session_alive = session_alive  # which sessions still run: the reaper ends the others' peers
        self.feeds: dict[tuple[str, str, str], CameraFeed] = {}  # (session, camera, view)
        self.peers: dict[str, Peer] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._reaper: asyncio.Task | None = None
        if settings.ice_hosts is not None:
            use_ice_hosts(settings.ice_hosts)
        aiortc.rtcrtpreceiver.JitterBuffer = MarkerJitterBuffer  # what each new receiver builds

    async def start(self) -> None:
        """Bind to the running loop (frames put before are dropped) and start the reaper."""
        self.loop = asyncio.get_running_loop()
        self._reaper = asyncio.create_task(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await asyncio.gather(*(self.close(peer_id) for peer_id in list(self.peers)))

    # --- the processing threads' side ----------------------------------------------------
    def put(self, session_id: str, camera: str, image: np.ndarray, ts: int,
            ptz: Callable[[], np.ndarray] | None = None) -> None:
        """A processed frame of a session camera (any thread; returns at once); ``ptz`` renders the
        camera's virtual PTZ viewport of it, called only if someone watches that view."""
        feed = self.feeds.get((session_id, camera, "wide"))
        if feed is None:
            if self.loop is None:
                return
            with self._lock:
                feed = self.feeds.setdefault((session_id, camera, "wide"), CameraFeed(self.loop))
        feed.put(image, ts)
        ptz_feed = self.feeds.get((session_id, camera, "ptz"))  # made by the first PTZ viewer
        if ptz is not None and ptz_feed is not None:
            ptz_feed.put(LazyFrame(ptz), ts)

    # --- peers ---------------------------------------------------------------------------
    def _check_caps(self, session_id: str) -> None:
        if len(self.peers) >= self.settings.max_peers:
            raise MediaError(429, f"this instance serves its maximum of {self.settings.max_peers} WebRTC peer "
                                  "connections (SPOTON_WEBRTC_MAX_PEERS): close one or try later")
        if sum(p.session_id == session_id for p in self.peers.values()) >= self.settings.max_peers_per_session:
            raise MediaError(429, f"session {session_id} has its maximum of {self.settings.max_peers_per_session} "
                                  "WebRTC peer connections (SPOTON_WEBRTC_MAX_PEERS_PER_SESSION): close one")

    def _new_peer(self, kind: str, session_id: str, camera: str) -> Peer:
        self._check_caps(session_id)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: nothing to reach offline
        peer = Peer(f"{kind}-{uuid.uuid4().hex[:16]}", kind, session_id, camera, pc, time.monotonic())
        self.peers[peer.id] = peer

        @pc.on("connectionstatechange")
        async def _changed() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(peer.id)

        return peer

    async def _answer(self, peer: Peer, offer: str) -> str:
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            if peer.track is not None:
                peer.track.sender = peer.pc.addTrack(peer.track)
            await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            await self.close(peer.id)
            raise MediaError(400, f"the SDP offer cannot be answered ({exc}): send an unmodified "
                                  "browser offer") from None
        except BaseException:
            await self.close(peer.id)
            raise
        return peer.pc.localDescription.sdp

    async def egress(self, session_id: str, camera: str, offer: str, view: str = "wide") -> tuple[Peer, str]:
        """A viewer of a session camera's view (``VIEWS``): its peer and the SDP answer."""
        check_offer(offer, want="send")
        peer = self._new_peer("whep", session_id, camera)
        peer.view = view
        with self._lock:
            feed = self.feeds.setdefault((session_id, camera, view), CameraFeed(self.loop))
        peer.track = FeedTrack(feed)
        return peer, await self._answer(peer, offer)

    async def ingest(self, session_id: str, camera: str, source, offer: str) -> tuple[Peer, str]:
        """A publisher feeding ``source`` (a ``webrtc`` LiveSource): its peer and the SDP answer."""
        check_offer(offer, want="receive")
        if any(p.kind == "whip" and (p.session_id, p.camera) == (session_id, camera) for p in self.peers.values()):
            raise MediaError(409, f"camera {camera} of session {session_id} already has a publisher: "
                                  "DELETE its WHIP resource first")
        peer = self._new_peer("whip", session_id, camera)
        peer.source = source

        @peer.pc.on("track")
        def _track(track) -> None:
            if track.kind == "video" and peer.reader is None:
                peer.reader = asyncio.create_task(_publish_frames(track, source))

        return peer, await self._answer(peer, offer)

    async def close(self, peer_id: str) -> bool:
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return False
        if peer.track is not None:
            peer.track.stop()
        if peer.reader is not None:
            peer.reader.cancel()
        if peer.source is not None and peer.source.state == "running":
            peer.source.state = "reconnecting"  # the session says it waits for a publisher again
        await peer.pc.close()
        return True

    async def _reap_forever(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reap()
            except Exception:  # the reaper must outlive one bad peer
                log.exception("media plane reaper")

    async def reap(self) -> None:
        """Close peers of ended sessions and peers that never connected; forget ended sessions' feeds."""
        now = time.monotonic()
        for peer in list(self.peers.values()):
            ended = not self.session_alive(peer.session_id)
            stale = (peer.pc.connectionState != "connected"
                     and now - peer.created > self.settings.connect_timeout_s)
            if ended or stale:
                await self.close(peer.id)
        with self._lock:
            for key in [k for k in self.feeds if not self.session_alive(k[0])]:
                del self.feeds[key]


async def _publish_frames(track, source) -> None:
    """A WHIP track's frames into the camera's source slot (latest-frame: the slot drops stale ones)."""
    index = 0
    try:
        while True:
            frame = await track.recv()
            now = time.monotonic()
            image = frame.to_ndarray(format="bgr24")
            source.publish(VideoFrame(index=index, ts=now - (source.started_monotonic or now), image=image))
            index += 1
    except MediaStreamError:
        return


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, handing a frame over as soon as its last packet is in.

    aiortc (1.16) sees a frame as complete only when a packet of the *next* frame arrives, so every
    WHIP frame waited one frame interval before its decode (33 ms at 30 fps, measured by
    ``bench/glass_to_glass.py --stages``). A video frame's last packet carries the RTP marker bit
    (RFC 7741 for VP8, RFC 6184 for H.264): when the packets from the buffer's origin are all there,
    of one timestamp, up to a marked one, that frame goes to the decoder now. Everything else
    (reordering, loss, PLI) is aiortc's.
    """

    def add(self, packet) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is None and self._is_video and self._origin is not None:
            frame = self._marked_frame()
        return pli_flag, frame

    def _marked_frame(self) -> JitterFrame | None:
        packets = []
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                return None  # a gap, or the frame at the origin ended unmarked: aiortc's rule decides
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=packet.timestamp)
        return None


def use_ice_hosts(hosts: tuple[str, ...]) -> None:
    """Offer host candidates on these addresses only (aioice has no option for it; it asks this function)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
        h for h in hosts if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]


# --- routes --------------------------------------------------------------------------------
def _plane(request: Request) -> MediaPlane:
    return request.app.state.media


async def _offer(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/sdp":
        raise MediaError(415, f"Content-Type {content_type or '(none)'!r}: send the SDP offer as "
                              "application/sdp")
    body = await request.body()
    if len(body) > MAX_SDP_BYTES:
        raise MediaError(413, f"SDP offer of {len(body)} bytes is over the {MAX_SDP_BYTES}-byte limit")
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise MediaError(400, "malformed SDP offer: not UTF-8 text") from None


def _session_camera(request: Request, session_id: str, camera: str):
    session = request.app.state.sessions.get(session_id)
    if session is None:
        raise MediaError(404, f"no session {session_id} on this instance: list them with GET {API}/sessions "
                              "(a session's media is served by the instance that runs it)")
    if camera not in session.sources:
        raise MediaError(404, f"session {session_id} has no camera {camera!r}; its cameras: "
                              f"{sorted(session.sources)}")
    return session


def _created(peer: Peer, answer: str, route: str) -> Response:
    location = f"{API}/sessions/{peer.session_id}/cameras/{peer.camera}/{route}/{peer.id}"
    return Response(answer, status_code=201, media_type="application/sdp", headers={"Location": location})


@router.post("/sessions/{session_id}/cameras/{camera}/whep", status_code=201,
             response_class=Response, responses={201: {"content": {"application/sdp": {}}}})
async def whep(session_id: str, camera: str, request: Request,
               _: ViewerByHeaderOrQuery,
               view: str = Query("wide", json_schema_extra={"enum": list(VIEWS)},  # our own 422 names them
                                 description="wide: the processed frames; ptz: the virtual PTZ's "
                                             "viewport (boxes: the tick's ptz.view)")) -> Response:
    """Watch a session camera's processed frames, or its virtual PTZ, over WebRTC (body: an SDP offer)."""
    if view not in VIEWS:
        raise MediaError(422, f"view {view!r} is not one of {list(VIEWS)}: omit it for the camera's processed "
                              "frames, or ask ?view=ptz for its virtual PTZ")
    _session_camera(request, session_id, camera)
    offer = await _offer(request)
    peer, answer = await _plane(request).egress(session_id, camera, offer, view)
    return _created(peer, answer, "whep")


@router.post("/sessions/{session_id}/cameras/{camera}/whip", status_code=201,
             response_class=Response, responses={201: {"content": {"application/sdp": {}}}})
async def whip(session_id: str, camera: str, request: Request, _: Operator) -> Response:
    """Publish a browser's video into a session camera of kind ``webrtc`` (body: an SDP offer)."""
    session = _session_camera(request, session_id, camera)
    source = session.sources[camera]
    if source.spec.kind != "webrtc":
        raise MediaError(409, f"camera {camera!r} of session {session_id} reads a {source.spec.kind} source: "
                              "create the session with {\"kind\": \"webrtc\", \"uri\": \"browser\"} for it")
    offer = await _offer(request)
    peer, answer = await _plane(request).ingest(session_id, camera, source, offer)
    return _created(peer, answer, "whip")


def _peer(request: Request, session_id: str, camera: str, kind: str, peer_id: str) -> Peer:
    peer = _plane(request).peers.get(peer_id)
    if peer is None or (peer.kind, peer.session_id, peer.camera) != (kind, session_id, camera):
        raise MediaError(404, f"no {kind.upper()} resource {peer_id} for camera {camera} of session "
                              f"{session_id} (closed, or never created)")
    return peer


@router.get("/sessions/{session_id}/cameras/{camera}/whep/{peer_id}")
def whep_state(session_id: str, camera: str, peer_id: str, request: Request, _: ViewerByHeaderOrQuery) -> dict:
    """The viewer's connection state and RTP timestamp offset (null until the first frames went out)."""
    peer = _peer(request, session_id, camera, "whep", peer_id)
    return {"id": peer.id, "view": peer.view, "state": peer.pc.connectionState, "clock_hz": MEDIA_CLOCK_HZ,
            "rtp_timestamp_offset": peer.track.rtp_offset}


async def _delete(request: Request, session_id: str, camera: str, kind: str, peer_id: str) -> Response:
    await _plane(request).close(_peer(request, session_id, camera, kind, peer_id).id)
    return Response(status_code=200)


@router.delete("/sessions/{session_id}/cameras/{camera}/whep/{peer_id}")
async def whep_delete(session_id: str, camera: str, peer_id: str, request: Request,
                      _: ViewerByHeaderOrQuery) -> Response:
    """Stop watching: closes the peer connection."""
    return await _delete(request, session_id, camera, "whep", peer_id)


@router.delete("/sessions/{session_id}/cameras/{camera}/whip/{peer_id}")
async def whip_delete(session_id: str, camera: str, peer_id: str, request: Request, _: Operator) -> Response:
    """Stop publishing: closes the peer connection (the camera waits for a new publisher)."""
    return await _delete(request, session_id, camera, "whip", peer_id)
