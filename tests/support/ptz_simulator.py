"""A PTZ camera simulator on loopback: a minimal ONVIF SOAP service whose pan/tilt/zoom moves a
viewport over a wide video (the sample), served as an HTTP MJPEG camera.

- ``POST /onvif/device_service``: GetServices, GetCapabilities, GetSystemDateAndTime (what the
  ONVIF client needs to find the other services).
- ``POST /onvif/media_service``: GetProfiles (one profile with a PTZ configuration), GetStreamUri,
  GetSnapshotUri.
- ``POST /onvif/ptz_service``: ContinuousMove, Stop, GotoPreset, SetPreset, GetPresets, GetStatus.
- ``GET /stream.mjpg``: the viewport, rendered at the video's rate; ``GET /snapshot.jpg``: one frame.

Every SOAP call but GetSystemDateAndTime needs a WS-Security UsernameToken (digest or text) of
the simulator's user; a wrong one gets a ``ter:NotAuthorized`` fault. The PTZ state is a
:class:`spoton.follow.ptz.VirtualPtz` on the simulator's clock, and the video frame shown is the
one of the clock's time (``world_frame``), so a test or bench can drive time by hand (a manual
clock) and get a deterministic closed loop. Presets: the token is the preset's name.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

import cv2
import numpy as np
from lxml import etree

from spoton.follow.ptz import PtzError, PtzGeometry, VirtualPtz, VirtualPtzConfig

NS = {"env": "http://www.w3.org/2003/05/soap-envelope", "tds": "http://www.onvif.org/ver10/device/wsdl",
      "trt": "http://www.onvif.org/ver10/media/wsdl", "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
      "tt": "http://www.onvif.org/ver10/schema", "ter": "http://www.onvif.org/ver10/error",
      "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
      "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"}
PROFILE = "profile_1"
BOUNDARY = "spotonptz"


class ManualClock:
    """A clock set by hand (seconds): drives the simulator's PTZ motion and video frame deterministically."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class WorldVideo:
    """The wide picture: frames of a video by index, read forward (reopened to go back), looped."""

    def __init__(self, path: Path):
        self.path = path
        capture = cv2.VideoCapture(str(path))
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        capture.release()
        self._capture: cv2.VideoCapture | None = None
        self._index = -1
        self._frame: np.ndarray | None = None
        self._lock = threading.Lock()

    def frame(self, index: int) -> np.ndarray:
        index %= self.frame_count
        with self._lock:
            if self._capture is None or index < self._index:
                if self._capture is not None:
                    self._capture.release()
                self._capture, self._index = cv2.VideoCapture(str(self.path)), -1
            while self._index < index:
                ok, frame = self._capture.read()
                if not ok:
                    raise RuntimeError(f"cannot read frame {self._index + 1} of {self.path.name}")
                self._frame, self._index = frame, self._index + 1
            return self._frame

    def close(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None


class _Fault(Exception):
    def __init__(self, subcode: str, reason: str, http_status: int = 400):
        super().__init__(reason)
        self.subcode, self.reason, self.http_status = subcode, reason, http_status


class PtzCameraSimulator:
    """``http://127.0.0.1:{port}``: the ONVIF services and the MJPEG camera; see the module docstring."""

    def __init__(self, video: Path, *, user: str, password: str, clock: Callable[[], float] = time.monotonic,
                 max_zoom: float = 4.0, ptz_config: VirtualPtzConfig = VirtualPtzConfig(), port: int = 0):
        self.world = WorldVideo(video)
        self.user, self.password = user, password
        self.clock = clock
        self.geometry = PtzGeometry(self.world.size, max_zoom)
        self.ptz = VirtualPtz(self.geometry, ptz_config, clock)
        self.started_at = clock()
        self.requests: list[str] = []  # SOAP operations received, in order
        self._port = port
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def world_frame_index(self) -> int:
        return int(round((self.clock() - self.started_at) * self.world.fps)) % self.world.frame_count

    def render(self) -> tuple[int, np.ndarray]:
        """The world frame of now and what the camera shows of it."""
        index = self.world_frame_index()
        return index, self.geometry.render(self.world.frame(index), self.ptz.position)

    def jpeg(self) -> bytes:
        ok, data = cv2.imencode(".jpg", self.render()[1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        return data.tobytes()

    # --- SOAP ----------------------------------------------------------------------------
    def _check_auth(self, envelope: etree._Element) -> None:
        token = envelope.find(".//wsse:UsernameToken", NS)
        if token is None:
            raise _Fault("ter:NotAuthorized", "sender not authorized: WS-Security UsernameToken required", 401)
        user = token.findtext("wsse:Username", namespaces=NS)
        password = token.find("wsse:Password", NS)
        given = "" if password is None else (password.text or "")
        if password is not None and password.get("Type", "").endswith("#PasswordDigest"):
            nonce = base64.b64decode(token.findtext("wsse:Nonce", "", NS))
            created = token.findtext("wsu:Created", "", NS)
            expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + self.password.encode()).digest())
            ok = given.encode() == expected
        else:
            ok = given == self.password
        if user != self.user or not ok:
            raise _Fault("ter:NotAuthorized", "sender not authorized: wrong user name or password", 401)

    def handle_soap(self, service: str, body: bytes) -> tuple[int, bytes]:
        try:
            envelope = etree.fromstring(body)
            request = envelope.find("env:Body", NS)[0]
            operation = etree.QName(request).localname
            self.requests.append(operation)
            if operation != "GetSystemDateAndTime":
                self._check_auth(envelope)
            handler = getattr(self, f"_{service}_{operation}", None)
            if handler is None:
                raise _Fault("ter:ActionNotSupported", f"{operation} is not supported by the {service} service")
            return 200, _envelope(handler(request))
        except _Fault as fault:
            return fault.http_status, _envelope(_fault_xml(fault.subcode, fault.reason))
        except PtzError as exc:
            return 400, _envelope(_fault_xml("ter:InvalidArgVal", str(exc)))
        except (etree.XMLSyntaxError, TypeError, IndexError) as exc:
            return 400, _envelope(_fault_xml("ter:InvalidArgs", f"malformed request: {exc}"))

    def _device_GetSystemDateAndTime(self, request) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        return (f"<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
                f"<tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime><tt:Time><tt:Hour>{now.hour}</tt:Hour>"
                f"<tt:Minute>{now.minute}</tt:Minute><tt:Second>{now.second}</tt:Second></tt:Time><tt:Date>"
                f"<tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date>"
                "</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")

    def _device_GetServices(self, request) -> str:
        services = "".join(
            f"<tds:Service><tds:Namespace>{NS[prefix]}</tds:Namespace><tds:XAddr>{self.base}/onvif/{name}_service"
            f"</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>0</tt:Minor></tds:Version></tds:Service>"
            for prefix, name in (("tds", "device"), ("trt", "media"), ("tptz", "ptz")))
        return f"<tds:GetServicesResponse>{services}</tds:GetServicesResponse>"

    def _device_GetCapabilities(self, request) -> str:
        return (f"<tds:GetCapabilitiesResponse><tds:Capabilities>"
                f"<tt:Device><tt:XAddr>{self.base}/onvif/device_service</tt:XAddr></tt:Device>"
                f"<tt:Media><tt:XAddr>{self.base}/onvif/media_service</tt:XAddr></tt:Media>"
                f"<tt:PTZ><tt:XAddr>{self.base}/onvif/ptz_service</tt:XAddr></tt:PTZ>"
                "</tds:Capabilities></tds:GetCapabilitiesResponse>")

    def _media_GetProfiles(self, request) -> str:
        return (f'<trt:GetProfilesResponse><trt:Profiles token="{PROFILE}" fixed="true"><tt:Name>main</tt:Name>'
                '<tt:PTZConfiguration token="ptz_1"><tt:Name>ptz</tt:Name><tt:UseCount>1</tt:UseCount>'
                "<tt:NodeToken>node_1</tt:NodeToken></tt:PTZConfiguration></trt:Profiles></trt:GetProfilesResponse>")

    def _media_uri(self, element: str, path: str) -> str:
        return (f"<trt:{element}Response><trt:MediaUri><tt:Uri>{self.base}{path}</tt:Uri>"
                "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false"
                f"</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:{element}Response>")

    def _media_GetStreamUri(self, request) -> str:
        return self._media_uri("GetStreamUri", "/stream.mjpg")

    def _media_GetSnapshotUri(self, request) -> str:
        return self._media_uri("GetSnapshotUri", "/snapshot.jpg")

    @staticmethod
    def _profile(request) -> None:
        if request.findtext("tptz:ProfileToken", namespaces=NS) != PROFILE:
            raise _Fault("ter:NoProfile", f"no profile {request.findtext('tptz:ProfileToken', namespaces=NS)!r}")

    def _ptz_ContinuousMove(self, request) -> str:
        self._profile(request)
        pan_tilt = request.find("tptz:Velocity/tt:PanTilt", NS)
        zoom = request.find("tptz:Velocity/tt:Zoom", NS)
        velocity = [0.0 if pan_tilt is None else float(pan_tilt.get("x", 0)),
                    0.0 if pan_tilt is None else float(pan_tilt.get("y", 0)),
                    0.0 if zoom is None else float(zoom.get("x", 0))]
        self.ptz.continuous_move(*velocity)
        return "<tptz:ContinuousMoveResponse/>"

    def _ptz_Stop(self, request) -> str:
        self._profile(request)
        self.ptz.stop()
        return "<tptz:StopResponse/>"

    def _ptz_GotoPreset(self, request) -> str:
        self._profile(request)
        token = request.findtext("tptz:PresetToken", namespaces=NS)
        if token not in self.ptz.presets():
            raise _Fault("ter:NoToken", f"no preset token {token!r}")
        self.ptz.goto_preset(token)
        return "<tptz:GotoPresetResponse/>"

    def _ptz_SetPreset(self, request) -> str:
        self._profile(request)
        name = request.findtext("tptz:PresetName", namespaces=NS) or request.findtext("tptz:PresetToken",
                                                                                        namespaces=NS)
        self.ptz.save_preset(name)
        return f"<tptz:SetPresetResponse><tptz:PresetToken>{escape(name)}</tptz:PresetToken></tptz:SetPresetResponse>"

    def _ptz_GetPresets(self, request) -> str:
        self._profile(request)
        presets = "".join(f'<tptz:Preset token="{escape(name)}"><tt:Name>{escape(name)}</tt:Name></tptz:Preset>'
                          for name in self.ptz.presets())
        return f"<tptz:GetPresetsResponse>{presets}</tptz:GetPresetsResponse>"

    def _ptz_GetStatus(self, request) -> str:
        self._profile(request)
        status = self.ptz.status()
        pan, tilt, zoom = status.position.pan, status.position.tilt, status.position.zoom
        vp, vt, vz = self.ptz.velocity
        pan_tilt_moving = "MOVING" if (vp or vt) else "IDLE"
        zoom_moving = "MOVING" if vz else "IDLE"
        utc = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (f'<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position><tt:PanTilt x="{pan:.6f}" y="{tilt:.6f}"/>'
                f'<tt:Zoom x="{zoom:.6f}"/></tt:Position><tt:MoveStatus><tt:PanTilt>{pan_tilt_moving}</tt:PanTilt>'
                f"<tt:Zoom>{zoom_moving}</tt:Zoom></tt:MoveStatus><tt:UtcTime>{utc}</tt:UtcTime></tptz:PTZStatus>"
                "</tptz:GetStatusResponse>")

    # --- HTTP ----------------------------------------------------------------------------
    def _handler(self):
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                service = {"/onvif/device_service": "device", "/onvif/media_service": "media",
                           "/onvif/ptz_service": "ptz"}.get(self.path)
                if service is None:
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                status, body = sim.handle_soap(service, self.rfile.read(length))
                self.send_response(status)
                self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/snapshot.jpg":
                    jpeg = sim.jpeg()
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(jpeg)))
                    self.end_headers()
                    self.wfile.write(jpeg)
                    return
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                try:
                    while sim.httpd is not None:
                        jpeg = sim.jpeg()
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                        time.sleep(1.0 / sim.world.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def start(self) -> "PtzCameraSimulator":
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler())
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._thread.join(5)
        self.world.close()

    def __enter__(self) -> "PtzCameraSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _envelope(body: str) -> bytes:
    namespaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items() if prefix not in ("wsse", "wsu"))
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {namespaces}><env:Body>{body}</env:Body>'
            "</env:Envelope>").encode()


def _fault_xml(subcode: str, reason: str) -> str:
    return (f"<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>{subcode}</env:Value>"
            f'</env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason>'
            "</env:Fault>")

